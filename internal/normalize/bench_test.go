package normalize

import "testing"

func BenchmarkNameTerms(b *testing.B) {
	for _, name := range []string{"Zhang San", "北京字节跳动科技有限公司", "华为Huawei技术有限公司 Huawei Technologies Co., Ltd."} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NameTerms(name)
			}
		})
	}
}

func BenchmarkPhone(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Phone("+86 138-0013-8000")
	}
}

package customercsv

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	csv := "姓名,手机,邮箱,标签,负责人,备注\n" +
		"张三,13800138000；13900139000,a@x.cn,VIP、华东区,boss@example.com,'=1+1\n" +
		"李四,,,,,\n" +
		"王五,138,,,ghost@example.com,\n" +
		"a,b,c\n"
	owners := func(email string) (string, error) {
		if email == "boss@example.com" {
			return "u-1", nil
		}
		return "", errors.New("no such user")
	}
	res, err := Parse(strings.NewReader(csv), "auto", owners)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 2 || len(res.Errors) != 2 {
		t.Fatalf("rows %d errors %v", len(res.Rows), res.Errors)
	}
	r := res.Rows[0].Fields
	if *r.Name != "张三" || len(*r.Phones) != 2 || (*r.Tags)[1] != "华东区" || *r.OwnerID != "u-1" || *r.Notes != "=1+1" {
		t.Fatalf("row 2: %+v", r)
	}
	if res.Rows[1].Fields.Phones != nil || res.Rows[1].Line != 3 {
		t.Fatalf("row 3: %+v", res.Rows[1])
	}
	if res.Errors[0].Line != 4 || res.Errors[0].Msg != "owner: no such user" || strings.Contains(res.Errors[0].Msg, "ghost") {
		t.Fatalf("owner error: %+v", res.Errors[0])
	}
	if res.Errors[1].Line != 5 {
		t.Fatalf("field count error: %+v", res.Errors[1])
	}
	if _, err := Parse(strings.NewReader("foo,bar\n1,2\n"), "auto", nil); err == nil {
		t.Fatal("unknown header accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name,phone\nA,1\n"))
	f.Add([]byte("姓名,负责人\n张三,x@y.cn\n"))
	f.Add([]byte("name\n\"unterminated\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := Parse(strings.NewReader(string(b)), "auto", func(string) (string, error) { return "", errors.New("no") })
		if err != nil {
			return
		}
		for _, e := range res.Errors {
			if e.Line < 1 {
				t.Fatalf("error without a line: %+v", e)
			}
		}
		for _, r := range res.Rows {
			if r.Line < 2 || r.Fields.Name == nil {
				t.Fatalf("bad row %+v", r)
			}
		}
	})
}

package csvio

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSafeCell(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"formula", "=1+1", "'=1+1"},
		{"hyperlink formula", `=HYPERLINK("http://evil","x")`, `'=HYPERLINK("http://evil","x")`},
		{"dde", "=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"plus phone", "+86 138 0013 8000", "'+86 138 0013 8000"},
		{"minus number", "-5", "'-5"},
		{"at function", "@SUM(A1:A9)", "'@SUM(A1:A9)"},
		{"tab", "\t=1", "'\t=1"},
		{"leading tab", "\tfoo", "'\tfoo"},
		{"carriage return", "\rfoo", "'\rfoo"},
		{"after spaces", "   =1+1", "'   =1+1"},
		{"after newline", "\n-1", "'\n-1"},
		{"after ideographic space", "\u3000=1", "'\u3000=1"},
		{"after zero-width space", "\u200b=1", "'\u200b=1"},
		{"after BOM", "\ufeff@x", "'\ufeff@x"},
		{"full-width equals", "＝1+1", "'＝1+1"},
		{"full-width plus", "＋86", "'＋86"},
		{"full-width minus", "－5", "'－5"},
		{"full-width at", "＠SUM(A1)", "'＠SUM(A1)"},
		{"small equals", "﹦1", "'﹦1"},
		{"minus sign", "−5", "'−5"},
		{"plain", "张三", "张三"},
		{"email", "a@b.cn", "a@b.cn"},
		{"inner equals", "a=b", "a=b"},
		{"digits", "13800138000", "13800138000"},
		{"empty", "", ""},
		{"only spaces", "   ", "   "},
		{"already quoted", "'=1", "'=1"},
		{"invalid utf-8", "\xff=1", "\xff=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SafeCell(tt.in); got != tt.want {
				t.Errorf("SafeCell(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name    string
		bom     bool
		records [][]string
		want    string
	}{
		{"bom", true, [][]string{{"姓名", "电话"}, {"张三", "+86 138"}}, "\xef\xbb\xbf姓名,电话\n张三,'+86 138\n"},
		{"no bom", false, [][]string{{"name"}, {"=1+1"}}, "name\n'=1+1\n"},
		{"quoting", false, [][]string{{"a,b", `say "hi"`, "line\nbreak", " lead"}}, "\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",\" lead\"\n"},
		{"bom only", true, nil, "\xef\xbb\xbf"},
		{"nothing", false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, tt.bom)
			for _, rec := range tt.records {
				if err := w.Write(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil { // a second Flush writes nothing
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("output = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriterDoesNotModifyRecord(t *testing.T) {
	rec := []string{"=1", "-2"}
	w := NewWriter(&bytes.Buffer{}, false)
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec, []string{"=1", "-2"}) {
		t.Fatalf("record modified: %q", rec)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestWriterError(t *testing.T) {
	w := NewWriter(errWriter{}, true)
	if err := w.Write([]string{"x"}); err == nil {
		t.Error("Write: BOM write error not reported")
	}
	w = NewWriter(errWriter{}, false)
	if err := w.Write([]string{"x"}); err != nil {
		t.Fatal(err) // buffered
	}
	if err := w.Flush(); err == nil {
		t.Error("Flush: write error not reported")
	}
}

func TestRoundTrip(t *testing.T) {
	header := []string{"客户名称", "手机号码", "邮箱", "地址", "备注", "标签"}
	records := [][]string{
		{"北京示例科技有限公司", "13800138000", "info@example.cn", "北京市海淀区\n中关村大街1号", `他说："你好"`, "重点,华北"},
		{"张三", "+86 139 0013 9000", "", "  ", "=SUM(A1:A3)", "-"},
		{"O'Brien", "@home", "x@y.z", "a\r\nb", "＝1", "tag"},
	}
	// What the reader returns: formula-like values keep the ' prefix, values
	// are trimmed, and CRLF inside a quoted cell reads back as LF.
	want := []map[string]string{
		{"name": "北京示例科技有限公司", "phone": "13800138000", "email": "info@example.cn", "address": "北京市海淀区\n中关村大街1号", "notes": `他说："你好"`, "tags": "重点,华北"},
		{"name": "张三", "phone": "'+86 139 0013 9000", "email": "", "address": "", "notes": "'=SUM(A1:A3)", "tags": "'-"},
		{"name": "O'Brien", "phone": "'@home", "email": "x@y.z", "address": "a\nb", "notes": "'＝1", "tags": "tag"},
	}
	for _, bom := range []bool{true, false} {
		name := "without bom"
		if bom {
			name = "with bom"
		}
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, bom)
			for _, rec := range append([][]string{header}, records...) {
				if err := w.Write(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := bytes.HasPrefix(buf.Bytes(), bomUTF8); got != bom {
				t.Fatalf("BOM present = %v, want %v", got, bom)
			}
			r, res := mustRead(t, buf.Bytes(), "", nil)
			if len(res.errs) > 0 {
				t.Fatalf("errs: %v", res.errs)
			}
			if got := strings.Join(r.Columns(), ","); got != "name,phone,email,address,notes,tags" {
				t.Fatalf("Columns() = %s", got)
			}
			if len(res.rows) != len(want) {
				t.Fatalf("got %d rows", len(res.rows))
			}
			wantLines := []int{2, 4, 5}
			for i, row := range res.rows {
				if !reflect.DeepEqual(row.Values, want[i]) {
					t.Errorf("row %d = %q, want %q", i, row.Values, want[i])
				}
				if row.Line != wantLines[i] {
					t.Errorf("row %d line = %d, want %d", i, row.Line, wantLines[i])
				}
			}
		})
	}
}

func TestUnsafeCellUndoesSafeCell(t *testing.T) {
	for _, s := range []string{"+8613800138000", "=1+1", "-5", "@SUM(A1)", "plain", "'quoted already", "", "'", "''=x", "张三"} {
		if got := UnsafeCell(SafeCell(s)); got != s {
			t.Errorf("UnsafeCell(SafeCell(%q)) = %q", s, got)
		}
	}
	// A quote that protects nothing stays.
	if got := UnsafeCell("'hello"); got != "'hello" {
		t.Errorf("got %q", got)
	}
}

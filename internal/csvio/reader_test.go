package csvio

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

var update = flag.Bool("update", false, "rewrite generated files in testdata")

// gbkSource is the text of testdata/gbk.csv before GBK encoding.
const gbkSource = "客户名称,客户类型,联系电话,电子邮箱,联系地址,所属行业,客户级别,客户来源,客户状态,标签,负责人,备注\r\n" +
	"北京示例科技有限公司,企业,010-12345678,info@example.cn,北京市海淀区中关村大街1号,软件,A,展会,跟进中,重点;华北,王经理,\"年度合同，续签\"\r\n" +
	"张三,个人,13800138000,zhangsan@example.cn,上海市浦东新区,金融,B,转介绍,新客户,,李四,\r\n"

func encodeWith(t testing.TB, enc encoding.Encoding, s string) []byte {
	t.Helper()
	b, err := enc.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

// TestGBKTestdata keeps testdata/gbk.csv equal to gbkSource encoded as GBK.
// Run with -update to regenerate it.
func TestGBKTestdata(t *testing.T) {
	want := encodeWith(t, simplifiedchinese.GBK, gbkSource)
	path := filepath.Join("testdata", "gbk.csv")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale; run go test -run TestGBKTestdata -update", path)
	}
	if bytes.Contains(got, []byte("客户")) {
		t.Fatal("gbk.csv contains UTF-8 text")
	}
}

type result struct {
	rows []Row
	errs []error
}

// readAll reads until io.EOF or a fatal error, which it returns.
func readAll(t testing.TB, r *Reader) (result, error) {
	t.Helper()
	var res result
	for i := 0; ; i++ {
		if i > 10_000_000 {
			t.Fatal("Next did not reach io.EOF")
		}
		row, err := r.Next()
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			var re *RowError
			if !errors.As(err, &re) {
				return res, err
			}
			res.errs = append(res.errs, err)
			continue
		}
		res.rows = append(res.rows, row)
	}
}

func mustRead(t *testing.T, data []byte, enc string, aliases map[string]string) (*Reader, result) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), enc, aliases)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	res, err := readAll(t, r)
	if err != nil {
		t.Fatalf("fatal error: %v", err)
	}
	return r, res
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodings(t *testing.T) {
	gbkRows := []Row{
		{Line: 2, Values: map[string]string{
			"name": "北京示例科技有限公司", "kind": "企业", "phone": "010-12345678",
			"email": "info@example.cn", "address": "北京市海淀区中关村大街1号", "industry": "软件",
			"level": "A", "source": "展会", "status": "跟进中", "tags": "重点;华北",
			"owner": "王经理", "notes": "年度合同，续签",
		}},
		{Line: 3, Values: map[string]string{
			"name": "张三", "kind": "个人", "phone": "13800138000",
			"email": "zhangsan@example.cn", "address": "上海市浦东新区", "industry": "金融",
			"level": "B", "source": "转介绍", "status": "新客户", "tags": "",
			"owner": "李四", "notes": "",
		}},
	}
	gbkCols := []string{"name", "kind", "phone", "email", "address", "industry", "level", "source", "status", "tags", "owner", "notes"}
	// 㐀 (U+3400) and 😀 are outside GBK: GB18030 encodes them in four bytes.
	gb18030Text := "姓名,备注\n㐀先生,笑😀€\n"

	tests := []struct {
		name     string
		data     []byte
		encoding string
		wantEnc  string
		wantCols []string
		wantRows []Row
	}{
		{
			name: "utf-8 without BOM", data: readFile(t, "utf8.csv"), wantEnc: "utf-8",
			wantCols: []string{"name", "phone", "email", "notes"},
			wantRows: []Row{
				{Line: 2, Values: map[string]string{"name": "Alice", "phone": "+86 138 0013 8000", "email": "alice@example.com", "notes": "first"}},
				{Line: 3, Values: map[string]string{"name": "Bob", "phone": "13900139000", "email": "bob@example.com", "notes": "multi\nline"}},
			},
		},
		{
			name: "utf-8 with BOM", data: readFile(t, "utf8_bom.csv"), wantEnc: "utf-8",
			wantCols: []string{"name", "phone", "email", "notes"},
			wantRows: []Row{
				{Line: 2, Values: map[string]string{"name": "张三", "phone": "13800138000", "email": "zhang@example.com", "notes": "VIP客户"}},
				{Line: 3, Values: map[string]string{"name": "李四", "phone": "13900139000", "email": "li@example.com", "notes": "说明，含逗号"}},
			},
		},
		{
			name: "utf-8 with BOM, explicit", data: readFile(t, "utf8_bom.csv"), encoding: "utf-8", wantEnc: "utf-8",
			wantCols: []string{"name", "phone", "email", "notes"},
			wantRows: []Row{
				{Line: 2, Values: map[string]string{"name": "张三", "phone": "13800138000", "email": "zhang@example.com", "notes": "VIP客户"}},
				{Line: 3, Values: map[string]string{"name": "李四", "phone": "13900139000", "email": "li@example.com", "notes": "说明，含逗号"}},
			},
		},
		{
			name: "gbk file auto-detected", data: readFile(t, "gbk.csv"), wantEnc: "gb18030",
			wantCols: gbkCols, wantRows: gbkRows,
		},
		{
			name: "gbk generated auto-detected", data: encodeWith(t, simplifiedchinese.GBK, gbkSource), encoding: "auto",
			wantEnc: "gb18030", wantCols: gbkCols, wantRows: gbkRows,
		},
		{
			name: "gbk forced", data: encodeWith(t, simplifiedchinese.GBK, gbkSource), encoding: "gbk",
			wantEnc: "gb18030", wantCols: gbkCols, wantRows: gbkRows,
		},
		{
			name: "gbk forced, name in upper case", data: encodeWith(t, simplifiedchinese.GBK, gbkSource), encoding: " GBK ",
			wantEnc: "gb18030", wantCols: gbkCols, wantRows: gbkRows,
		},
		{
			name: "gb18030 four-byte sequences auto", data: encodeWith(t, simplifiedchinese.GB18030, gb18030Text),
			wantEnc: "gb18030", wantCols: []string{"name", "notes"},
			wantRows: []Row{{Line: 2, Values: map[string]string{"name": "㐀先生", "notes": "笑😀€"}}},
		},
		{
			name: "gb18030 forced", data: encodeWith(t, simplifiedchinese.GB18030, gb18030Text), encoding: "gb18030",
			wantEnc: "gb18030", wantCols: []string{"name", "notes"},
			wantRows: []Row{{Line: 2, Values: map[string]string{"name": "㐀先生", "notes": "笑😀€"}}},
		},
		{
			name: "utf-8 forced", data: []byte("name\n张三\n"), encoding: "utf-8",
			wantEnc: "utf-8", wantCols: []string{"name"},
			wantRows: []Row{{Line: 2, Values: map[string]string{"name": "张三"}}},
		},
		{
			name: "utf8 spelling accepted", data: []byte("name\nx\n"), encoding: "UTF8",
			wantEnc: "utf-8", wantCols: []string{"name"},
			wantRows: []Row{{Line: 2, Values: map[string]string{"name": "x"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, res := mustRead(t, tt.data, tt.encoding, nil)
			if len(res.errs) > 0 {
				t.Fatalf("row errors: %v", res.errs)
			}
			if got := r.Encoding(); got != tt.wantEnc {
				t.Errorf("Encoding() = %q, want %q", got, tt.wantEnc)
			}
			if got := r.Columns(); !reflect.DeepEqual(got, tt.wantCols) {
				t.Errorf("Columns() = %q, want %q", got, tt.wantCols)
			}
			if !reflect.DeepEqual(res.rows, tt.wantRows) {
				t.Errorf("rows =\n%#v\nwant\n%#v", res.rows, tt.wantRows)
			}
		})
	}
}

func TestEncodingErrors(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		encoding string
		want     string
	}{
		{"utf-16 LE BOM", []byte("\xff\xfen\x00a\x00m\x00e\x00\n\x00"), "", "UTF-16 files are not supported; save as UTF-8 CSV"},
		{"utf-16 BE BOM", []byte("\xfe\xff\x00n\x00a\x00m\x00e\x00\n"), "auto", "UTF-16 files are not supported; save as UTF-8 CSV"},
		{"unknown encoding", []byte("name\nx\n"), "latin1", `unknown encoding "latin1" (allowed: auto, utf-8, gbk, gb18030)`},
		{"big5 not allowed", []byte("name\nx\n"), "big5", "allowed: auto, utf-8, gbk, gb18030"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tt.data), tt.encoding, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestAutoDetectBoundary(t *testing.T) {
	// A UTF-8 character cut by the 64 KiB sniff window must not make the
	// file look like GB18030.
	var b bytes.Buffer
	b.WriteString("name,notes\n")
	lines := 1
	for b.Len() < sniffSize-10 {
		b.WriteString("x,y\n")
		lines++
	}
	// 中 (3 bytes) starts one byte before the end of the window.
	b.WriteString(strings.Repeat("p", sniffSize-2-b.Len()) + ",")
	if b.Len() != sniffSize-1 {
		t.Fatalf("setup: len %d", b.Len())
	}
	b.WriteString("中文\n")
	lines++
	r, res := mustRead(t, b.Bytes(), "", nil)
	if r.Encoding() != "utf-8" {
		t.Fatalf("Encoding() = %q, want utf-8", r.Encoding())
	}
	if len(res.errs) != 0 || len(res.rows) != lines-1 {
		t.Fatalf("got %d rows, errs %v", len(res.rows), res.errs)
	}
	if last := res.rows[len(res.rows)-1]; last.Line != lines || last.Values["notes"] != "中文" {
		t.Fatalf("last row = %+v", last)
	}

	for _, cut := range []int{1, 2, 3} {
		// A 4-byte sequence cut after 1, 2 or 3 bytes.
		prefix := bytes.Repeat([]byte("a"), sniffSize-cut)
		ok := validUTF8Prefix(append(prefix, []byte("😀")[:cut]...), false)
		if !ok {
			t.Errorf("cut %d: incomplete trailing rune rejected", cut)
		}
		if validUTF8Prefix(append(prefix, []byte("😀")[:cut]...), true) {
			t.Errorf("cut %d at EOF: incomplete trailing rune accepted", cut)
		}
	}
	if validUTF8Prefix([]byte("ab\xff"), false) {
		t.Error("invalid trailing byte accepted")
	}
}

func TestAutoDetectedUTF8ThenGBK(t *testing.T) {
	// The first 64 KiB are ASCII, so the file is read as UTF-8; a GBK row
	// later is reported as a row error rather than imported as garbage.
	var b bytes.Buffer
	b.WriteString("name\n")
	n := 1
	for b.Len() < sniffSize+100 {
		b.WriteString("ascii\n")
		n++
	}
	b.Write(encodeWith(t, simplifiedchinese.GBK, "张三\n"))
	n++
	r, res := mustRead(t, b.Bytes(), "", nil)
	if r.Encoding() != "utf-8" {
		t.Fatalf("Encoding() = %q", r.Encoding())
	}
	if len(res.errs) != 1 {
		t.Fatalf("errs = %v", res.errs)
	}
	var re *RowError
	if !errors.As(res.errs[0], &re) || re.Line != n || re.Column != "name" {
		t.Fatalf("err = %#v, want line %d column name", res.errs[0], n)
	}
}

func TestHeaderMapping(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		aliases map[string]string
		want    []string
	}{
		{"canonical", "name,kind,phone,email,address,id_number,industry,level,source,status,tags,owner,notes", nil,
			[]string{"name", "kind", "phone", "email", "address", "id_number", "industry", "level", "source", "status", "tags", "owner", "notes"}},
		{"english variants and case", "Customer Name,Mobile,E-Mail,ID Number,Remarks,Tag,TYPE", nil,
			[]string{"name", "phone", "email", "id_number", "notes", "tags", "kind"}},
		{"company telephone note id", "company,telephone,note,id", nil,
			[]string{"name", "phone", "notes", "id_number"}},
		{"separators", "customer_name,e_mail,ID-Number", nil,
			[]string{"name", "email", "id_number"}},
		{"collapsed spaces", "  customer   name  ,id   number", nil,
			[]string{"name", "id_number"}},
		{"chinese set 1", "姓名,类型,电话,邮箱,地址,身份证号,行业,级别,来源,状态,标签,负责人,备注", nil,
			[]string{"name", "kind", "phone", "email", "address", "id_number", "industry", "level", "source", "status", "tags", "owner", "notes"}},
		{"chinese set 2", "客户名称,客户类型,手机,电子邮箱,联系地址,身份证号码,所属行业,客户级别,客户来源,客户状态,所有者,说明", nil,
			[]string{"name", "kind", "phone", "email", "address", "id_number", "industry", "level", "source", "status", "owner", "notes"}},
		{"chinese set 3", "客户名,手机号,电子邮件,证件号码,等级", nil,
			[]string{"name", "phone", "email", "id_number", "level"}},
		{"chinese set 4", "名称,手机号码", nil, []string{"name", "phone"}},
		{"chinese set 5", "公司名称,联系电话", nil, []string{"name", "phone"}},
		{"required markers and full width", "*姓名,ｅｍａｉｌ,手机号码*", nil, []string{"name", "email", "phone"}},
		{"whitespace and BOM in cells", " 姓名 ,\t邮箱\u3000,\ufeffnotes", nil, []string{"name", "email", "notes"}},
		{"caller alias", "Cust,Mobile No.", map[string]string{"cust": "name", "mobile no.": "phone"},
			[]string{"name", "phone"}},
		{"caller alias overrides built-in", "姓名,电话,手机", map[string]string{"电话": "notes"},
			[]string{"name", "notes", "phone"}},
		{"caller alias matched case-insensitively", "NAME,Internal Code", map[string]string{"internal code": "ID_NUMBER"},
			[]string{"name", "id_number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tt.header+"\n"), "", tt.aliases)
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			if got := r.Columns(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Columns() = %q, want %q", got, tt.want)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("Next() = %v, want io.EOF", err)
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		aliases map[string]string
		want    []string
	}{
		{"empty file", "", nil, []string{"file is empty"}},
		{"only BOM", "\xef\xbb\xbf", nil, []string{"file is empty"}},
		{"only blank lines", "\n\n\r\n", nil, []string{"file is empty"}},
		{"unknown column", "name,Favourite Colour\nx,y\n", nil,
			[]string{`line 1: unknown column "Favourite Colour" (known: name, kind, phone, email, address, id_number, industry, level, source, status, tags, owner, notes)`}},
		{"unknown chinese column", "姓名,爱好\n", nil, []string{`line 1: unknown column "爱好"`}},
		{"header after blank lines", "\n\nname,bogus\n", nil, []string{`line 3: unknown column "bogus"`}},
		{"long header truncated", "name," + strings.Repeat("h", 500) + "\n", nil,
			[]string{`line 1: unknown column "` + strings.Repeat("h", 64) + `…"`}},
		{"duplicate canonical", "name,phone,手机\n", nil,
			[]string{`line 1: duplicate column "phone"`, `"phone"`, `"手机"`}},
		{"duplicate same text", "name,name\n", nil, []string{`duplicate column "name"`}},
		{"duplicate via caller alias", "name,Boss,负责人\n", map[string]string{"boss": "owner"},
			[]string{`duplicate column "owner"`}},
		{"missing name", "phone,email\n1,2\n", nil, []string{`line 1: required column "name" is missing`}},
		{"empty header cell", "name,,phone\n", nil, []string{"line 1: column 2 has an empty header"}},
		{"malformed header", "name,\"pho\"ne\n", nil, []string{"line 1: malformed header"}},
		{"bad alias target", "name\n", map[string]string{"x": "favourite"}, []string{`alias "x" maps to unknown column "favourite"`}},
		{"empty alias text", "name\n", map[string]string{" ": "name"}, []string{"empty header text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tt.data), "", tt.aliases)
			if err == nil {
				t.Fatalf("NewReader succeeded with columns %q", r.Columns())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want containing %q", err, w)
				}
			}
		})
	}
}

func TestLineNumbersMultiline(t *testing.T) {
	// Record 2 spans lines 2-3; the next record starts on line 4; line 5 is
	// blank; the last record starts on line 6.
	_, res := mustRead(t, readFile(t, "multiline.csv"), "", nil)
	if len(res.errs) > 0 {
		t.Fatalf("errs: %v", res.errs)
	}
	want := []Row{
		{Line: 2, Values: map[string]string{"name": "张三", "notes": "first line\nsecond line"}},
		{Line: 4, Values: map[string]string{"name": "李四", "notes": "ok"}},
		{Line: 6, Values: map[string]string{"name": "王五", "notes": `a "quoted" word`}},
	}
	if !reflect.DeepEqual(res.rows, want) {
		t.Fatalf("rows =\n%#v\nwant\n%#v", res.rows, want)
	}
}

type wantErr struct {
	line   int
	column string
	msg    string // substring of Msg
}

func TestRowErrors(t *testing.T) {
	big := strings.Repeat("x", MaxCellBytes+1)
	tests := []struct {
		name     string
		data     string
		encoding string
		wantRows []int // lines of good rows
		wantErrs []wantErr
	}{
		{
			name:     "wrong field count",
			data:     "name,phone\na,1\nb\nc,3,extra\nd,4\n",
			wantRows: []int{2, 5},
			wantErrs: []wantErr{{3, "", "record has 1 fields, header has 2"}, {4, "", "record has 3 fields, header has 2"}},
		},
		{
			name:     "bare quote",
			data:     "name,phone\na,1\nb\"x,2\nc,3\n",
			wantRows: []int{2, 4},
			wantErrs: []wantErr{{3, "", `bare "`}},
		},
		{
			name:     "extraneous quote after quoted field",
			data:     "name,phone\n\"a\"b,1\nc,3\n",
			wantRows: []int{3},
			wantErrs: []wantErr{{2, "", `extraneous or missing "`}},
		},
		{
			name:     "unterminated quote then EOF",
			data:     "name,phone\na,1\n\"b,2\nc,3\n",
			wantRows: []int{2},
			wantErrs: []wantErr{{3, "", `extraneous or missing "`}},
		},
		{
			name:     "error after multi-line record",
			data:     "name,notes\na,\"1\n2\"\nb\"x,2\nc,3\n",
			wantRows: []int{2, 5},
			wantErrs: []wantErr{{4, "", `bare "`}},
		},
		{
			name:     "oversized cell",
			data:     "name,notes\na," + big + "\nb,ok\n",
			wantRows: []int{3},
			wantErrs: []wantErr{{2, "notes", "value is 10001 bytes, limit is 10000"}},
		},
		{
			name:     "cell at the limit after trimming",
			data:     "name,notes\na,  " + big[1:] + "  \n",
			wantRows: []int{2},
		},
		{
			name:     "invalid utf-8 explicit",
			data:     "name,notes\na,\xff\xfe\xfd\nb,ok\n",
			encoding: "utf-8",
			wantRows: []int{3},
			wantErrs: []wantErr{{2, "notes", "not valid UTF-8"}},
		},
		{
			name:     "undecodable gb18030",
			data:     "name,notes\na,\xff\nb,ok\n",
			encoding: "gbk",
			wantRows: []int{3},
			wantErrs: []wantErr{{2, "notes", "not valid GBK/GB18030"}},
		},
		{
			name:     "blank lines and blank records skipped",
			data:     "name,phone\n\n\na,1\r\n\r\n,\n  ,\t\nb,2\n\n",
			wantRows: []int{4, 8},
		},
		{
			name:     "crlf line endings",
			data:     "name,phone\r\na,1\r\nb,2\r\n",
			wantRows: []int{2, 3},
		},
		{
			name:     "no trailing newline",
			data:     "name,phone\na,1\nb,2",
			wantRows: []int{2, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := mustRead(t, []byte(tt.data), tt.encoding, nil)
			var lines []int
			for _, r := range res.rows {
				lines = append(lines, r.Line)
			}
			if !reflect.DeepEqual(lines, tt.wantRows) {
				t.Errorf("row lines = %v, want %v", lines, tt.wantRows)
			}
			if len(res.errs) != len(tt.wantErrs) {
				t.Fatalf("errs = %v, want %d", res.errs, len(tt.wantErrs))
			}
			for i, w := range tt.wantErrs {
				var re *RowError
				if !errors.As(res.errs[i], &re) {
					t.Fatalf("err %d = %T, want *RowError", i, res.errs[i])
				}
				if re.Line != w.line || re.Column != w.column || !strings.Contains(re.Msg, w.msg) {
					t.Errorf("err %d = %+v, want line %d column %q msg containing %q", i, re, w.line, w.column, w.msg)
				}
			}
		})
	}
}

func TestRowValuesTrimmed(t *testing.T) {
	_, res := mustRead(t, []byte("name,phone,notes\n  张三\u3000, 138 ,\" quoted \"\n"), "", nil)
	want := map[string]string{"name": "张三", "phone": "138", "notes": "quoted"}
	if len(res.rows) != 1 || !reflect.DeepEqual(res.rows[0].Values, want) {
		t.Fatalf("rows = %#v", res.rows)
	}
}

func TestRowErrorString(t *testing.T) {
	tests := []struct {
		err  RowError
		want string
	}{
		{RowError{Line: 7, Column: "phone", Msg: "bad"}, "line 7: phone: bad"},
		{RowError{Line: 7, Msg: "bad"}, "line 7: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTooManyRows(t *testing.T) {
	old := maxRows
	maxRows = 3
	t.Cleanup(func() { maxRows = old })

	r, err := NewReader(strings.NewReader("name\na\nb\nc\nd\ne\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := readAll(t, r)
	if !errors.Is(err, ErrTooManyRows) {
		t.Fatalf("err = %v, want ErrTooManyRows", err)
	}
	if !strings.Contains(err.Error(), "line 5") {
		t.Errorf("err = %q, want line 5", err)
	}
	if len(res.rows) != 3 {
		t.Errorf("got %d rows before the limit, want 3", len(res.rows))
	}
	if _, err2 := r.Next(); !errors.Is(err2, ErrTooManyRows) {
		t.Errorf("fatal error not sticky: %v", err2)
	}
}

type failingReader struct{ data io.Reader }

var errDisk = errors.New("disk on fire")

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.data.Read(p)
	if err == io.EOF {
		return n, errDisk
	}
	return n, err
}

func TestReadErrorIsFatal(t *testing.T) {
	_, err := NewReader(&failingReader{strings.NewReader("name\na\n")}, "", nil)
	if !errors.Is(err, errDisk) {
		t.Fatalf("err = %v, want errDisk", err)
	}
	// Error after the sniff window: surfaces from Next.
	big := "name\n" + strings.Repeat("a\n", sniffSize)
	r, err := NewReader(&failingReader{strings.NewReader(big)}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, r); !errors.Is(err, errDisk) {
		t.Fatalf("err = %v, want errDisk", err)
	}
	if _, err := r.Next(); !errors.Is(err, errDisk) {
		t.Fatalf("fatal error not sticky: %v", err)
	}
}

// TestErrorsDoNotLeakValues feeds bad rows containing distinctive values and
// checks that no error message repeats them.
func TestErrorsDoNotLeakValues(t *testing.T) {
	secrets := []string{"SECRET-VALUE-123", "13812345678", "secret@example.com", "机密张三", "110101199001011234"}
	bigSecret := "SECRET-VALUE-123" + strings.Repeat("S", MaxCellBytes)
	inputs := []struct {
		name     string
		data     []byte
		encoding string
	}{
		{"field count", []byte("name,phone\nSECRET-VALUE-123,13812345678,机密张三\n"), ""},
		{"bare quote", []byte("name,phone\nSECRET\"-VALUE-123,13812345678\n"), ""},
		{"bare quote 2", []byte("name,phone\n机密张三,SECRET-VALUE-123\"13812345678\n"), ""},
		{"quote", []byte("name,email\n\"SECRET-VALUE-123\"secret@example.com,x\n"), ""},
		{"unterminated", []byte("name,email\n\"SECRET-VALUE-123,secret@example.com\n"), ""},
		{"oversized", []byte("name,notes\n机密张三," + bigSecret + "\n"), ""},
		{"invalid utf-8", []byte("name,id\nSECRET-VALUE-123\xff,110101199001011234\xfe\n"), "utf-8"},
		{"invalid gbk", []byte("name,id\nSECRET-VALUE-123\xff,110101199001011234\n"), "gbk"},
		{"utf-8 then gbk", append([]byte("name,phone\nSECRET-VALUE-123,1\n"),
			encodeWith(t, simplifiedchinese.GBK, "机密张三,13812345678\n")...), "utf-8"},
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(in.data), in.encoding, nil)
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			res, err := readAll(t, r)
			if err != nil {
				res.errs = append(res.errs, err)
			}
			if len(res.errs) == 0 {
				t.Fatal("expected at least one error")
			}
			for _, e := range res.errs {
				msg := e.Error()
				for _, s := range append(secrets, "SECRET", "机密") {
					if strings.Contains(msg, s) {
						t.Errorf("error %q contains cell value %q", msg, s)
					}
				}
			}
		})
	}
}

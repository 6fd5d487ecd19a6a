package csvio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

var fuzzEncodings = []string{"", "utf-8", "gbk", "gb18030"}

// rowErrorMsg lists every shape a RowError.Msg may take. Keeping messages to
// fixed templates is what guarantees that no cell value can leak into them.
var rowErrorMsg = regexp.MustCompile(`^(` +
	`record has \d+ fields, header has \d+` +
	`|value is not valid UTF-8 \(save the file as UTF-8 CSV or choose encoding gbk\)` +
	`|value contains bytes that are not valid GBK/GB18030 \(wrong encoding\?\)` +
	`|value is \d+ bytes, limit is \d+` +
	`|(bare " in unquoted field \(quote the whole cell and double inner quotes\)` +
	`|extraneous or missing " in quoted field` +
	`|wrong number of fields|malformed CSV) \(at (line \d+, )?column \d+\)` +
	`)$`)

func FuzzReader(f *testing.F) {
	for _, name := range []string{"utf8.csv", "utf8_bom.csv", "gbk.csv", "multiline.csv"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for i := range fuzzEncodings {
			f.Add(data, uint8(i))
		}
	}
	gb, _ := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte("姓名,备注\n㐀,😀\n"))
	f.Add(gb, uint8(0))
	for _, s := range []string{
		"", "\xef\xbb\xbf", "\xff\xfe", "name", "name\n", "name,name\n", "phone\n1\n",
		"name,phone\na,1\nb\nc,3,4\n", "name\n\"a\nb\n", "name\n\"a\"b\n", "name\na\"b\n",
		"name,notes\na,\"x\ny\"\n\nb,c\n", "name\n\xff\xfe\n", "name\n\x81\n", "name\n\x81\x30\x81\n",
		"\n\n\"name\"\r\n\r\n a \r\n", "name\r\r\n\"\r\"\n", "name\n,\n \t\n",
	} {
		for i := range fuzzEncodings {
			f.Add([]byte(s), uint8(i))
		}
	}

	f.Fuzz(func(t *testing.T, data []byte, encIdx uint8) {
		enc := fuzzEncodings[int(encIdx)%len(fuzzEncodings)]
		r, err := NewReader(bytes.NewReader(data), enc, nil)
		if err != nil {
			var re *RowError
			if errors.As(err, &re) || err.Error() == "" {
				t.Fatalf("bad header error %T %q", err, err)
			}
			return
		}
		cols := r.Columns()
		seen := map[string]bool{}
		for _, c := range cols {
			if !isCanonical(c) || seen[c] {
				t.Fatalf("bad columns %q", cols)
			}
			seen[c] = true
		}
		if !seen["name"] {
			t.Fatalf("no name column in %q", cols)
		}
		lastLine := 0
		// Every record consumes at least one byte, so len(data)+1 calls
		// must reach io.EOF.
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("no io.EOF after %d calls", i)
			}
			row, err := r.Next()
			if err == io.EOF {
				break
			}
			line := row.Line
			if err != nil {
				var re *RowError
				if !errors.As(err, &re) {
					t.Fatalf("Next error %T %q is not a *RowError", err, err)
				}
				if re.Line < 1 || re.Line != row.Line {
					t.Fatalf("RowError line %d, row line %d", re.Line, row.Line)
				}
				if re.Column != "" && !seen[re.Column] {
					t.Fatalf("RowError column %q not in %q", re.Column, cols)
				}
				if !rowErrorMsg.MatchString(re.Msg) {
					t.Fatalf("unexpected RowError message %q", re.Msg)
				}
				if row.Values != nil {
					t.Fatal("values returned with an error")
				}
			} else {
				if len(row.Values) != len(cols) {
					t.Fatalf("row has %d values, %d columns", len(row.Values), len(cols))
				}
				blank := true
				for c, v := range row.Values {
					if !seen[c] || len(v) > MaxCellBytes || strings.TrimSpace(v) != v || !utf8.ValidString(v) {
						t.Fatalf("bad value in column %q (%d bytes)", c, len(v))
					}
					if enc != "utf-8" && strings.ContainsRune(v, unicode.ReplacementChar) && r.Encoding() == "gb18030" {
						t.Fatalf("undecodable bytes accepted in column %q", c)
					}
					blank = blank && v == ""
				}
				if blank {
					t.Fatal("blank record not skipped")
				}
			}
			if line <= lastLine {
				t.Fatalf("line %d after line %d", line, lastLine)
			}
			lastLine = line
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("Next after io.EOF = %v", err)
		}
	})
}

func FuzzSafeCell(f *testing.F) {
	for _, s := range []string{
		"", "=1+1", "+86 138 0013 8000", "-5", "@SUM(A1)", "\t", "\r", " =1", "\u3000＋1",
		"＝", "＠", "－", "张三", "a=b", "'=1", "\ufeff=1", "\xff", "\u200b\u200b-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := SafeCell(s)
		if out != s && out != "'"+s {
			t.Fatalf("SafeCell(%q) = %q: not the input or the input with a ' prefix", s, out)
		}
		if SafeCell(out) != out {
			t.Fatalf("SafeCell not idempotent on %q", s)
		}
		// Past leading whitespace and invisible characters, the output must
		// not start with a formula trigger.
		for _, r := range out {
			if isFormulaTrigger(r) {
				t.Fatalf("SafeCell(%q) = %q starts with trigger %q", s, out, r)
			}
			if !unicode.IsSpace(r) && !unicode.Is(unicode.Cf, r) {
				break
			}
		}
		if out == s && s != "" {
			first, _ := utf8.DecodeRuneInString(s)
			if strings.ContainsRune("=+-@\t\r＝＋－＠", first) {
				t.Fatalf("SafeCell(%q) left a trigger unprefixed", s)
			}
		}
	})
}

// FuzzRoundTrip checks that what Writer writes, Reader reads back.
func FuzzRoundTrip(f *testing.F) {
	f.Add("张三", "备注")
	f.Add("=1+1", "a\nb")
	f.Add(" x ", `"q"`)
	f.Add("a\r\nb", "\r")
	f.Add("", "-")
	f.Fuzz(func(t *testing.T, name, notes string) {
		if !utf8.ValidString(name) || !utf8.ValidString(notes) {
			t.Skip()
		}
		var buf bytes.Buffer
		w := NewWriter(&buf, true)
		for _, rec := range [][]string{{"姓名", "备注"}, {name, notes}, {"end", "end"}} {
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(buf.Bytes()), "", nil)
		if err != nil {
			t.Fatalf("NewReader: %v", err)
		}
		if r.Encoding() != "utf-8" {
			t.Fatalf("Encoding() = %q", r.Encoding())
		}
		expect := func(s string) string {
			return strings.TrimSpace(strings.ReplaceAll(SafeCell(s), "\r\n", "\n"))
		}
		wantName, wantNotes := expect(name), expect(notes)
		row, err := r.Next()
		switch {
		case len(wantName) > MaxCellBytes || len(wantNotes) > MaxCellBytes:
			var re *RowError
			if !errors.As(err, &re) {
				t.Fatalf("oversized: err = %v", err)
			}
			row, err = r.Next()
		case wantName == "" && wantNotes == "":
			// blank record: skipped
		default:
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if row.Values["name"] != wantName || row.Values["notes"] != wantNotes {
				t.Fatalf("read back %q, want name %q notes %q", row.Values, wantName, wantNotes)
			}
			row, err = r.Next()
		}
		if err != nil || row.Values["name"] != "end" {
			t.Fatalf("last row = %+v, %v", row, err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("want io.EOF, got %v", err)
		}
	})
}

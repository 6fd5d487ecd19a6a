package exportfile

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"filippo.io/age"
	"github.com/xuri/excelize/v2"
)

var testWM = Watermark{ExportID: "0190d5c4-0000-7000-8000-000000000001", RequestedBy: "Wang Fang <wang@example.com>",
	ApprovedBy: "Li Na <li@example.com>", At: time.Date(2026, 3, 2, 1, 30, 0, 0, time.UTC)}

const wantText = "Custos export 0190d5c4-0000-7000-8000-000000000001 · requested by Wang Fang <wang@example.com> · approved by Li Na <li@example.com> · 2026-03-02T01:30:00Z"

var columns = []string{"name", "phone", "notes"}

func encrypt(t *testing.T, r age.Recipient, plaintext []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plaintext); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decrypt(ct []byte, id age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ct), id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestPasswordKeyOpensWithAgeScryptIdentity(t *testing.T) {
	UseCheapScryptForTests(t)
	const pw = "correct horse battery staple"
	k, err := DerivePasswordKey(pw)
	if err != nil {
		t.Fatal(err)
	}
	if k.WorkFactor() != 10 {
		t.Fatalf("work factor %d, want the test's 10", k.WorkFactor())
	}
	// The key survives its sealed form: what is stored is what encrypts.
	text, err := k.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var back PasswordKey
	if err := back.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	if back != k {
		t.Fatal("password key changed in its text form")
	}
	ct := encrypt(t, back.Recipient(), []byte("秘密 rows"))
	if !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n-> scrypt ")) {
		t.Fatalf("not a standard age scrypt file: %q", ct[:min(len(ct), 60)])
	}
	if bytes.Contains(ct, []byte("秘密")) {
		t.Fatal("plaintext in the file")
	}
	right, _ := age.NewScryptIdentity(pw)
	got, err := decrypt(ct, right)
	if err != nil || string(got) != "秘密 rows" {
		t.Fatalf("right password: %q, %v", got, err)
	}
	wrong, _ := age.NewScryptIdentity(pw + "!")
	if _, err := decrypt(ct, wrong); err == nil {
		t.Fatal("a wrong password opened the file")
	}
	other, _ := age.GenerateX25519Identity()
	if _, err := decrypt(ct, other); err == nil {
		t.Fatal("an X25519 identity opened a password file")
	}
	// Two files from one password have different salts.
	k2, _ := DerivePasswordKey(pw)
	if k2 == k {
		t.Fatal("two derivations gave the same salt and key")
	}
}

func TestProductionWorkFactorIsAges(t *testing.T) {
	if DefaultWorkFactor != 18 || currentWorkFactor() != 18 {
		t.Fatalf("work factor %d (default %d), want age's 18", currentWorkFactor(), DefaultWorkFactor)
	}
	func() {
		tt := &fakeT{}
		UseCheapScryptForTests(tt)
		if currentWorkFactor() != 10 {
			t.Fatal("test hook did not lower the work factor")
		}
		tt.cleanup()
	}()
	if currentWorkFactor() != 18 {
		t.Fatal("test hook did not restore the work factor")
	}
}

type fakeT struct{ fns []func() }

func (f *fakeT) Helper()           {}
func (f *fakeT) Cleanup(fn func()) { f.fns = append(f.fns, fn) }
func (f *fakeT) cleanup() {
	for _, fn := range f.fns {
		fn()
	}
}

func TestPasswordKeyNeverPrints(t *testing.T) {
	UseCheapScryptForTests(t)
	k, err := DerivePasswordKey("a long export password")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := k.MarshalText()
	secret := strings.Split(string(text), ":")[3]
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, k)
		if strings.Contains(out, secret) || !strings.Contains(out, "redacted") {
			t.Errorf("%s prints %q", verb, out)
		}
	}
	k.Erase()
	if !k.IsZero() {
		t.Fatal("erase left the key")
	}
	if _, err := k.Recipient().Wrap(make([]byte, 16)); err == nil {
		t.Fatal("an erased key wrapped a file key")
	}
	if _, err := DerivePasswordKey(""); err == nil {
		t.Fatal("empty password accepted")
	}
}

func TestPasswordKeyTextRejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "v1", "v2:10:AAAA:BBBB", "v1:0:AAAAAAAAAAAAAAAAAAAAAA:" + strings.Repeat("A", 43),
		"v1:31:AAAAAAAAAAAAAAAAAAAAAA:" + strings.Repeat("A", 43), "v1:10:AAAA:" + strings.Repeat("A", 43),
		"v1:10:AAAAAAAAAAAAAAAAAAAAAA:AAAA", "v1:x:AAAAAAAAAAAAAAAAAAAAAA:" + strings.Repeat("A", 43)} {
		var k PasswordKey
		if err := k.UnmarshalText([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzPasswordKeyText(f *testing.F) {
	f.Add("v1:10:AAAAAAAAAAAAAAAAAAAAAA:" + strings.Repeat("A", 43))
	f.Add("v1:18::")
	f.Fuzz(func(t *testing.T, s string) {
		var k PasswordKey
		if err := k.UnmarshalText([]byte(s)); err != nil {
			return
		}
		out, err := k.MarshalText()
		if err != nil {
			t.Fatalf("accepted %q but cannot write it back: %v", s, err)
		}
		var again PasswordKey
		if err := again.UnmarshalText(out); err != nil || again != k {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}

func TestRecipientOpensOnlyWithItsIdentity(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	r, err := ParseRecipient(" " + id.Recipient().String() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	ct := encrypt(t, r, []byte("rows"))
	if got, err := decrypt(ct, id); err != nil || string(got) != "rows" {
		t.Fatalf("right identity: %q %v", got, err)
	}
	if _, err := decrypt(ct, other); err == nil {
		t.Fatal("another identity opened the file")
	}
	pw, _ := age.NewScryptIdentity("whatever password")
	if _, err := decrypt(ct, pw); err == nil {
		t.Fatal("a password opened a recipient file")
	}
	for _, bad := range []string{"", "age1", "age1qqqq", "AGE-SECRET-KEY-1QQQQ", "ssh-ed25519 AAAA", id.Recipient().String() + "x"} {
		if _, err := ParseRecipient(bad); err == nil {
			t.Errorf("recipient %q accepted", bad)
		}
	}
}

func TestCSVCarriesTheWatermark(t *testing.T) {
	var buf bytes.Buffer
	w, err := New(CSV, &buf, testWM, columns)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]string{{"张三", "+8613800138000", "=HYPERLINK(\"x\")"}, {"Acme, Inc.", "", "two\nlines"}} {
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if want := "\ufeff# " + wantText + "\n"; !strings.HasPrefix(out, want) {
		t.Fatalf("first line:\n%q\nwant\n%q", strings.SplitN(out, "\n", 2)[0], want)
	}
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\ufeff")))
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{columns, {"张三", "'+8613800138000", "'=HYPERLINK(\"x\")"}, {"Acme, Inc.", "", "two\nlines"}}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Fatalf("records %q, want %q", recs, want)
	}
}

func TestWatermarkLabelsCannotBreakTheLine(t *testing.T) {
	wm := testWM
	wm.RequestedBy = "Evil\",=cmd|' /C calc'!A0\r\nsecond line\u200b;x"
	wm.ApprovedBy = strings.Repeat("长", 500)
	text := wm.Text()
	if strings.ContainsAny(text, "\"\r\n,;\u200b") {
		t.Fatalf("watermark keeps a breaking character: %q", text)
	}
	if !strings.Contains(text, "requested by Evil =cmd|' /C calc'!A0 second line x · approved by ") || !strings.Contains(text, "…") {
		t.Fatalf("watermark %q", text)
	}
	var buf bytes.Buffer
	cw, err := NewCSV(&buf, wm, columns)
	if err != nil || cw.Close() != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if !strings.HasPrefix(lines[0], "\ufeff# Custos export ") || lines[1] != strings.Join(columns, ",") {
		t.Fatalf("CSV head %q", lines[:2])
	}
	hf := headerText(strings.Repeat("&", 300) + text)
	if n := len(utf16.Encode([]rune(hf))); n > excelize.MaxFieldLength-2 {
		t.Fatalf("header of %d UTF-16 units", n)
	}
	if n := len(hf) - len(strings.TrimRight(hf, "&")); n%2 == 1 {
		t.Fatal("header ends on half of an escaped &")
	}
}

func TestXLSXCarriesTheWatermark(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var buf bytes.Buffer
	wm := testWM
	wm.ApprovedBy = "R&D <rd@example.com>"
	w, err := New(XLSX, &buf, wm, columns)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]string{{"张三", "+8613800138000", "=1+1"}, {"李四", "", ""}} {
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(os.Getenv("TMPDIR")); len(ents) != 0 {
		t.Fatalf("temporary files written: %v", ents)
	}
	f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text := wm.Text()
	hf, err := f.GetHeaderFooter(SheetName)
	if err != nil {
		t.Fatal(err)
	}
	esc := "&C" + strings.ReplaceAll(text, "&", "&&")
	if hf == nil || hf.OddHeader != esc || hf.OddFooter != esc {
		t.Fatalf("header/footer %+v, want %q", hf, esc)
	}
	rows, err := f.GetRows(SheetName)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{text}, columns, {"张三", "+8613800138000", "=1+1"}, {"李四"}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rows %q, want %q", rows, want)
	}
	if formula, _ := f.GetCellFormula(SheetName, "C3"); formula != "" {
		t.Fatalf("a cell became a formula: %q", formula)
	}
	props, err := f.GetDocProps()
	if err != nil || props.Description != text {
		t.Fatalf("document properties %+v %v", props, err)
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := New("pdf", io.Discard, testWM, columns); err == nil {
		t.Fatal("pdf accepted")
	}
}

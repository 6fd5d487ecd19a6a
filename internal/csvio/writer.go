package csvio

import (
	"encoding/csv"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Writer writes CSV for exports that people open in a spreadsheet. Every
// cell is passed through SafeCell. Records end with "\n", which Excel
// accepts; line breaks inside cells are kept as they are. It is not safe for
// concurrent use.
type Writer struct {
	w       io.Writer
	csv     *csv.Writer
	bom     bool // a BOM is still to be written
	scratch []string
}

// NewWriter writes UTF-8 CSV with a leading BOM (so Excel opens Chinese text
// correctly) when bom is true. The BOM is written with the first record, or
// by Flush when no record was written.
func NewWriter(w io.Writer, bom bool) *Writer {
	return &Writer{w: w, csv: csv.NewWriter(w), bom: bom}
}

// Write writes one record, each cell passed through SafeCell. The caller's
// slice is not modified. Output is buffered; call Flush when done.
func (w *Writer) Write(record []string) error {
	if err := w.writeBOM(); err != nil {
		return err
	}
	w.scratch = w.scratch[:0]
	for _, cell := range record {
		w.scratch = append(w.scratch, SafeCell(cell))
	}
	return w.csv.Write(w.scratch)
}

// Flush writes any buffered data to the underlying writer and returns the
// first error that occurred while writing, if any.
func (w *Writer) Flush() error {
	if err := w.writeBOM(); err != nil {
		return err
	}
	w.csv.Flush()
	return w.csv.Error()
}

func (w *Writer) writeBOM() error {
	if !w.bom {
		return nil
	}
	// Nothing has gone through w.csv yet, so writing straight to w keeps the
	// BOM first.
	if _, err := w.w.Write(bomUTF8); err != nil {
		return err
	}
	w.bom = false
	return nil
}

// SafeCell neutralizes spreadsheet formula injection (OWASP CSV injection):
// if the cell begins with '=', '+', '-', '@', '\t' or '\r' (also after
// leading whitespace, and full-width ＝ ＋ － ＠), prefix it with a single
// quote '. Other cells are returned unchanged.
//
// A few look-alike characters that spreadsheets may fold to a trigger (the
// small form variants ﹦ ﹢ ﹣ ﹫ and the minus sign −) are treated the
// same way, and invisible format characters such as a zero-width space or
// a BOM count as leading whitespace.
func SafeCell(s string) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case isFormulaTrigger(r):
			return "'" + s
		case unicode.IsSpace(r) || unicode.Is(unicode.Cf, r):
			i += size
		default:
			return s
		}
	}
	return s
}

func isFormulaTrigger(r rune) bool {
	switch r {
	case '=', '+', '-', '@', '\t', '\r',
		'＝', '＋', '－', '＠', // full-width forms
		'﹦', '﹢', '﹣', '﹫', // small form variants
		'−': // U+2212 MINUS SIGN
		return true
	}
	return false
}

// UnsafeCell undoes SafeCell when reading back a file Custos (or a careful
// spreadsheet) exported: a leading quote that protects a formula trigger is
// removed, so "'+8613800138000" imports as the phone it is. Any other cell is
// returned unchanged.
func UnsafeCell(s string) string {
	if rest, ok := strings.CutPrefix(s, "'"); ok && SafeCell(rest) == s {
		return rest
	}
	return s
}

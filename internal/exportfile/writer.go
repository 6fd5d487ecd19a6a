package exportfile

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/custos/custos/internal/csvio"
)

// The file formats.
const (
	CSV  = "csv"
	XLSX = "xlsx"
)

// Formats lists the formats, for validation and messages.
var Formats = []string{CSV, XLSX}

// MaxXLSXRows is the most data rows an XLSX export holds: a worksheet has
// 1,048,576 rows, two of which are the watermark and the header.
const MaxXLSXRows = excelize.TotalRows - 2

// Watermark names an export and the people responsible for it. It is
// written into the file: the first row of a CSV, the first row and the page
// header and footer of an XLSX.
type Watermark struct {
	ExportID    string
	RequestedBy string // the requester's name and email (or the operator)
	ApprovedBy  string // the approver's name and email
	At          time.Time
}

// maxLabel bounds each person's label, so the text fits an XLSX header.
const maxLabel = 64

// Text is the watermark as one line:
//
//	Custos export <id> · requested by <who> · approved by <who> · <RFC3339 time>
func (w Watermark) Text() string {
	return "Custos export " + clean(w.ExportID, 40) + " · requested by " + clean(w.RequestedBy, maxLabel) +
		" · approved by " + clean(w.ApprovedBy, maxLabel) + " · " + w.At.UTC().Format(time.RFC3339)
}

// clean makes a label safe for a one-cell CSV line and an XLSX header: no
// control characters, no CSV quote or separator, at most n runes.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == ',' || r == ';':
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return s
}

// Writer writes the rows of one export. Close finishes the file (it does
// not close the destination).
type Writer interface {
	Write(row []string) error
	Close() error
}

// New returns a writer of format (CSV or XLSX) into dst: the watermark
// first, then the columns, then the rows written.
func New(format string, dst io.Writer, wm Watermark, columns []string) (Writer, error) {
	switch format {
	case CSV:
		return NewCSV(dst, wm, columns)
	case XLSX:
		return NewXLSX(dst, wm, columns)
	}
	return nil, fmt.Errorf("exportfile: unknown format %q (csv or xlsx)", format)
}

// csvWriter writes UTF-8 CSV with a BOM, cells guarded against formula
// injection (internal/csvio).
type csvWriter struct{ w *csvio.Writer }

// NewCSV writes a CSV whose first line is the watermark as a comment
// ("# Custos export ..."), then the header row.
func NewCSV(dst io.Writer, wm Watermark, columns []string) (Writer, error) {
	w := &csvWriter{w: csvio.NewWriter(dst, true)}
	// One cell that needs no quoting (clean removed quotes and commas) and
	// starts with '#': a comment to CSV readers that know them, a visible
	// first line in a spreadsheet.
	if err := w.w.Write([]string{"# " + wm.Text()}); err != nil {
		return nil, err
	}
	if err := w.w.Write(columns); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *csvWriter) Write(row []string) error { return w.w.Write(row) }
func (w *csvWriter) Close() error             { return w.w.Flush() }

// noTempDir is given to excelize as its temporary directory. It does not
// exist: writing a workbook needs no temporary file, and if some code path
// ever tried to spill one, it fails rather than put plaintext on disk.
const noTempDir = "/nonexistent/custos-exports-never-touch-disk"

type xlsxWriter struct {
	f     *excelize.File
	dst   io.Writer
	sheet string
	row   int
	cells []any
}

// SheetName is the worksheet of an XLSX export.
const SheetName = "Customers"

// NewXLSX writes a workbook with one worksheet: the watermark in the first
// row, in the page header and footer (so it is printed on every page) and
// in the document properties; the header row; then the rows. The workbook
// is assembled in memory and written to dst by Close.
func NewXLSX(dst io.Writer, wm Watermark, columns []string) (Writer, error) {
	f := excelize.NewFile(excelize.Options{TmpDir: noTempDir})
	text := wm.Text()
	hf := headerText(text)
	err := errors.Join(
		f.SetSheetName("Sheet1", SheetName),
		f.SetHeaderFooter(SheetName, &excelize.HeaderFooterOptions{OddHeader: "&C" + hf, OddFooter: "&C" + hf}),
		f.SetDocProps(&excelize.DocProperties{Creator: "Custos", Title: "Custos export " + clean(wm.ExportID, 40), Description: text}),
	)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("exportfile: xlsx: %w", err)
	}
	w := &xlsxWriter{f: f, dst: dst, sheet: SheetName}
	if err := w.put([]string{text}); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := w.put(columns); err != nil {
		_ = f.Close()
		return nil, err
	}
	return w, nil
}

// headerText escapes text for an XLSX header or footer ('&' starts a code
// there) and fits it, with the "&C" before it, in the 255 characters a
// header may hold.
func headerText(text string) string {
	s := strings.ReplaceAll(text, "&", "&&")
	for len(utf16.Encode([]rune(s))) > excelize.MaxFieldLength-2 {
		r := []rune(s)
		s = string(r[:len(r)-1])
	}
	// Never end on half of an escaped "&&".
	if n := len(s) - len(strings.TrimRight(s, "&")); n%2 == 1 {
		s = s[:len(s)-1]
	}
	return s
}

func (w *xlsxWriter) put(row []string) error {
	if w.row >= excelize.TotalRows {
		return fmt.Errorf("exportfile: an XLSX worksheet holds at most %d rows; export as CSV", MaxXLSXRows)
	}
	w.row++
	w.cells = w.cells[:0]
	for _, c := range row {
		w.cells = append(w.cells, c)
	}
	cell, err := excelize.CoordinatesToCellName(1, w.row)
	if err != nil {
		return err
	}
	// Strings are stored as strings: a cell beginning with '=' is text in
	// a workbook, never a formula.
	if err := w.f.SetSheetRow(w.sheet, cell, &w.cells); err != nil {
		return fmt.Errorf("exportfile: xlsx row %d: %w", w.row, err)
	}
	return nil
}

func (w *xlsxWriter) Write(row []string) error { return w.put(row) }

func (w *xlsxWriter) Close() error {
	defer func() { _ = w.f.Close() }()
	if _, err := w.f.WriteTo(w.dst); err != nil {
		return fmt.Errorf("exportfile: xlsx: %w", err)
	}
	return nil
}

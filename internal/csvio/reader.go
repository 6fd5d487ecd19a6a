package csvio

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

const (
	// MaxRows is the maximum number of data records (after the header) that a
	// Reader accepts; reading past it is a fatal error wrapping ErrTooManyRows.
	MaxRows = 1_000_000
	// MaxCellBytes is the maximum size of one value, in bytes of UTF-8 after
	// trimming; a larger value is a *RowError.
	MaxCellBytes = 10_000

	// sniffSize is how much of the file "auto" inspects.
	sniffSize = 64 << 10
	// maxHeaderQuote bounds how much of a header cell is quoted in errors.
	maxHeaderQuote = 64
)

// maxRows is a variable so tests can lower it.
var maxRows = MaxRows

// ErrTooManyRows is wrapped by the error Next returns when a file has more
// than MaxRows data records.
var ErrTooManyRows = errors.New("too many rows")

// Encoding names accepted by NewReader.
const (
	EncodingAuto    = "auto"
	EncodingUTF8    = "utf-8"
	EncodingGBK     = "gbk"
	EncodingGB18030 = "gb18030"
)

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// Row is one data record.
type Row struct {
	// Line is the 1-based line in the file where the record starts (the
	// header is normally line 1).
	Line int
	// Values maps each canonical column of the file to its value, trimmed of
	// surrounding whitespace. It is nil when Next returns an error.
	Values map[string]string
}

// RowError describes a problem with one record. It never contains a cell
// value.
type RowError struct {
	Line   int    // 1-based line where the record starts
	Column string // canonical column, or "" when the error concerns the whole record
	Msg    string // description of the problem
}

func (e *RowError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Reader reads customer records from a CSV file. It is not safe for
// concurrent use.
type Reader struct {
	csv      *csv.Reader
	encoding string   // effective encoding: "utf-8" or "gb18030"
	columns  []string // canonical column of each field, in file order
	rows     int      // data records read so far
	lastOff  int64    // csv.InputOffset after the previous record
	done     bool     // io.EOF reached or csv cannot continue
	err      error    // sticky fatal error
}

// NewReader reads the header of a CSV file and returns a Reader positioned at
// the first data record.
//
// Encoding names accepted by NewReader: "auto" (default when ""), "utf-8",
// "gbk", "gb18030". "auto" inspects the first 64 KiB: a UTF-8 byte order mark
// or valid UTF-8 selects UTF-8, a UTF-16 byte order mark is rejected, and
// anything else is decoded as GB18030 (a superset of GBK). "gbk" and
// "gb18030" both use the GB18030 decoder. When the effective encoding is
// UTF-8 (explicit or detected), a record containing invalid UTF-8 is a
// *RowError; with GB18030, a record containing bytes that cannot be decoded
// is a *RowError.
//
// aliases maps header text to a canonical column name and overrides the
// built-in aliases; matching ignores case, width and separators like the
// built-in table. Header problems (empty file, unknown, duplicated or
// missing columns, malformed header) are returned as errors from NewReader.
func NewReader(r io.Reader, encoding string, aliases map[string]string) (*Reader, error) {
	index, err := buildIndex(aliases)
	if err != nil {
		return nil, err
	}

	br := bufio.NewReaderSize(r, sniffSize)
	peek, err := br.Peek(sniffSize)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, fmt.Errorf("read CSV file: %w", err)
	}
	atEOF := len(peek) < sniffSize

	if bytes.HasPrefix(peek, bomUTF16LE) || bytes.HasPrefix(peek, bomUTF16BE) {
		return nil, errors.New("UTF-16 files are not supported; save as UTF-8 CSV")
	}

	enc := strings.ToLower(strings.TrimSpace(encoding))
	switch enc {
	case "", EncodingAuto:
		switch {
		case bytes.HasPrefix(peek, bomUTF8):
			enc = EncodingUTF8
		case validUTF8Prefix(peek, atEOF):
			enc = EncodingUTF8
		default:
			enc = EncodingGB18030
		}
	case EncodingUTF8, "utf8":
		enc = EncodingUTF8
	case EncodingGBK, EncodingGB18030:
		enc = EncodingGB18030
	default:
		return nil, fmt.Errorf("unknown encoding %q (allowed: auto, utf-8, gbk, gb18030)", truncate(encoding))
	}

	var src io.Reader = br
	if enc == EncodingUTF8 {
		if bytes.HasPrefix(peek, bomUTF8) {
			_, _ = br.Discard(len(bomUTF8))
		}
	} else {
		src = transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder())
	}

	cr := csv.NewReader(src)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = false
	cr.ReuseRecord = true

	rd := &Reader{csv: cr, encoding: enc}
	if err := rd.readHeader(index); err != nil {
		return nil, err
	}
	return rd, nil
}

// buildIndex merges the caller's aliases over the built-in ones.
func buildIndex(aliases map[string]string) (map[string]string, error) {
	if len(aliases) == 0 {
		return aliasIndex, nil
	}
	m := make(map[string]string, len(aliasIndex)+len(aliases))
	for k, v := range aliasIndex {
		m[k] = v
	}
	for text, col := range aliases {
		c := strings.ToLower(strings.TrimSpace(col))
		if !isCanonical(c) {
			return nil, fmt.Errorf("alias %q maps to unknown column %q (known: %s)",
				truncate(text), truncate(col), strings.Join(canonicalColumns, ", "))
		}
		k := normalizeHeader(text)
		if k == "" {
			return nil, fmt.Errorf("alias for column %q has empty header text", c)
		}
		m[k] = c
	}
	return m, nil
}

// validUTF8Prefix reports whether b is valid UTF-8, allowing an incomplete
// multi-byte sequence at the end when more data follows.
func validUTF8Prefix(b []byte, atEOF bool) bool {
	if !atEOF {
		for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
			if utf8.RuneStart(b[len(b)-i]) {
				if !utf8.FullRune(b[len(b)-i:]) {
					b = b[:len(b)-i]
				}
				break
			}
		}
	}
	return utf8.Valid(b)
}

func (r *Reader) readHeader(index map[string]string) error {
	rec, err := r.csv.Read()
	if err == io.EOF {
		return errors.New("file is empty")
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("line %d: malformed header: %s", pe.StartLine, parseErrorMsg(pe))
		}
		return fmt.Errorf("read CSV header: %w", err)
	}
	line, _ := r.csv.FieldPos(0)
	r.lastOff = r.csv.InputOffset()

	cols := make([]string, len(rec))
	seen := make(map[string]string, len(rec))
	for i, cell := range rec {
		text := cleanHeaderCell(cell)
		if text == "" {
			return fmt.Errorf("line %d: column %d has an empty header", line, i+1)
		}
		if r.encoding == EncodingUTF8 && !utf8.ValidString(text) {
			return fmt.Errorf("line %d: column %d header is not valid UTF-8 (wrong encoding?)", line, i+1)
		}
		col, ok := index[normalizeHeader(text)]
		if !ok {
			return fmt.Errorf("line %d: unknown column %q (known: %s)",
				line, truncate(text), strings.Join(canonicalColumns, ", "))
		}
		if prev, dup := seen[col]; dup {
			return fmt.Errorf("line %d: duplicate column %q (headers %q and %q)",
				line, col, truncate(prev), truncate(text))
		}
		seen[col] = text
		cols[i] = col
	}
	if _, ok := seen["name"]; !ok {
		return fmt.Errorf("line %d: required column %q is missing", line, "name")
	}
	r.columns = cols
	return nil
}

// Encoding returns the effective encoding: "utf-8" or "gb18030".
func (r *Reader) Encoding() string { return r.encoding }

// Columns returns the canonical column names in file order.
func (r *Reader) Columns() []string {
	return append([]string(nil), r.columns...)
}

// Next returns the next data record. It returns io.EOF after the last one.
// A *RowError concerns only that record and the caller may call Next again;
// any other error is fatal and is returned by every later call. Records whose
// cells are all blank are skipped.
func (r *Reader) Next() (Row, error) {
	for {
		if r.err != nil {
			return Row{}, r.err
		}
		if r.done {
			return Row{}, io.EOF
		}
		row, skip, err := r.next()
		if skip {
			continue
		}
		return row, err
	}
}

func (r *Reader) next() (row Row, skip bool, err error) {
	rec, err := r.csv.Read()
	off := r.csv.InputOffset()
	progressed := off > r.lastOff
	r.lastOff = off
	if err == io.EOF {
		r.done = true
		return Row{}, false, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			r.err = fmt.Errorf("read CSV: %w", err)
			return Row{}, false, r.err
		}
		if !progressed {
			// encoding/csv cannot move past this point; stop rather than loop.
			r.done = true
		}
		line := max(pe.StartLine, 1)
		if err := r.count(line); err != nil {
			return Row{}, false, err
		}
		return Row{Line: line}, false, &RowError{Line: line, Msg: parseErrorMsg(pe)}
	}

	line, _ := r.csv.FieldPos(0)
	if line < 1 {
		line = 1
	}
	if err := r.count(line); err != nil {
		return Row{}, false, err
	}
	if allBlank(rec) {
		return Row{}, true, nil
	}
	if len(rec) != len(r.columns) {
		return Row{Line: line}, false, &RowError{Line: line,
			Msg: fmt.Sprintf("record has %d fields, header has %d", len(rec), len(r.columns))}
	}
	values := make(map[string]string, len(rec))
	for i, field := range rec {
		col := r.columns[i]
		switch {
		case r.encoding == EncodingUTF8 && !utf8.ValidString(field):
			return Row{Line: line}, false, &RowError{Line: line, Column: col,
				Msg: "value is not valid UTF-8 (save the file as UTF-8 CSV or choose encoding gbk)"}
		case r.encoding != EncodingUTF8 && strings.ContainsRune(field, utf8.RuneError):
			return Row{Line: line}, false, &RowError{Line: line, Column: col,
				Msg: "value contains bytes that are not valid GBK/GB18030 (wrong encoding?)"}
		}
		v := strings.TrimSpace(field)
		if len(v) > MaxCellBytes {
			return Row{Line: line}, false, &RowError{Line: line, Column: col,
				Msg: fmt.Sprintf("value is %d bytes, limit is %d", len(v), MaxCellBytes)}
		}
		values[col] = v
	}
	return Row{Line: line, Values: values}, false, nil
}

// count enforces the row limit; line is the start of the record just read.
func (r *Reader) count(line int) error {
	r.rows++
	if r.rows > maxRows {
		r.err = fmt.Errorf("line %d: %w: limit is %d data rows", line, ErrTooManyRows, maxRows)
		return r.err
	}
	return nil
}

func allBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// parseErrorMsg describes a csv.ParseError without quoting input.
func parseErrorMsg(pe *csv.ParseError) string {
	var what string
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		what = `bare " in unquoted field (quote the whole cell and double inner quotes)`
	case errors.Is(pe.Err, csv.ErrQuote):
		what = `extraneous or missing " in quoted field`
	case errors.Is(pe.Err, csv.ErrFieldCount):
		what = "wrong number of fields"
	default:
		what = "malformed CSV"
	}
	if pe.Line != pe.StartLine {
		return fmt.Sprintf("%s (at line %d, column %d)", what, pe.Line, pe.Column)
	}
	return fmt.Sprintf("%s (at column %d)", what, pe.Column)
}

// truncate shortens header text or other non-personal input quoted in
// errors, so a pathological header cannot produce a huge message.
func truncate(s string) string {
	if len(s) <= maxHeaderQuote {
		return s
	}
	cut := maxHeaderQuote
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

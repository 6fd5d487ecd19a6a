package backup

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/custos/custos/internal/store"
)

// The logical format of a backup's data (before compression and
// encryption), the same whichever engine wrote or reads it. Documented in
// docs/design/backup.md:
//
//	stream  = magic { section } 'Z'
//	magic   = "CUSTOSBK" 0x01
//	section = 'T' str(table) uvarint(ncols) { str(column) type } kind
//	          { record } 'E'
//	kind    = 'R' (rows to upsert) | 'D' (keys to delete)
//	record  = 'C'                    clear the table first (full copies)
//	        | 'X' varint(seq)        delete rows with seq <= value (pruned audit)
//	        | 'G' value              delete the rows of a group (a customer's
//	                                 blind-index terms) before writing it anew
//	        | 'r' { value }          a row (all columns) or a key (key columns)
//	value   = 0x00 (NULL) | 0x01 varint | 0x02 str (text) | 0x03 str (blob)
//	str     = uvarint(length) bytes
//	type    = 'i' | 't' | 'b'
//
// Upsert sections come in catalog (foreign-key) order, delete sections
// after them in reverse order, so a restore never breaks a reference.
const streamMagic = "CUSTOSBK\x01"

// Limits that keep a damaged or hostile stream from allocating without
// bound (the stream is authenticated, so they guard against our own bugs).
const (
	maxValueLen = 1 << 30
	maxColumns  = 1024
	maxNameLen  = 256
)

// Section kinds.
const (
	sectionRows    = 'R'
	sectionDeletes = 'D'
)

type streamWriter struct {
	w   *bufio.Writer
	buf []byte
}

func newStreamWriter(w io.Writer) (*streamWriter, error) {
	sw := &streamWriter{w: bufio.NewWriterSize(w, 256<<10)}
	_, err := sw.w.WriteString(streamMagic)
	return sw, err
}

func (sw *streamWriter) str(b []byte) {
	sw.buf = binary.AppendUvarint(sw.buf, uint64(len(b)))
	sw.buf = append(sw.buf, b...)
}

func (sw *streamWriter) flush() error {
	_, err := sw.w.Write(sw.buf)
	sw.buf = sw.buf[:0]
	return err
}

func (sw *streamWriter) begin(t store.TableInfo, kind byte) error {
	sw.buf = append(sw.buf, 'T')
	sw.str([]byte(t.Name))
	cols := t.Columns
	if kind == sectionDeletes {
		cols = keyColumns(t)
	}
	sw.buf = binary.AppendUvarint(sw.buf, uint64(len(cols)))
	for _, c := range cols {
		sw.str([]byte(c.Name))
		sw.buf = append(sw.buf, byte(c.Type))
	}
	sw.buf = append(sw.buf, kind)
	return sw.flush()
}

func (sw *streamWriter) clear() error {
	sw.buf = append(sw.buf, 'C')
	return sw.flush()
}

func (sw *streamWriter) trim(seq int64) error {
	sw.buf = append(sw.buf, 'X')
	sw.buf = binary.AppendVarint(sw.buf, seq)
	return sw.flush()
}

func (sw *streamWriter) group(v any) error {
	sw.buf = append(sw.buf, 'G')
	var err error
	if sw.buf, err = appendValue(sw.buf, v); err != nil {
		return err
	}
	return sw.flush()
}

func (sw *streamWriter) record(vals []any) error {
	sw.buf = append(sw.buf, 'r')
	for _, v := range vals {
		var err error
		sw.buf, err = appendValue(sw.buf, v)
		if err != nil {
			return err
		}
	}
	return sw.flush()
}

func (sw *streamWriter) end() error {
	sw.buf = append(sw.buf, 'E')
	return sw.flush()
}

func (sw *streamWriter) close() error {
	sw.buf = append(sw.buf, 'Z')
	if err := sw.flush(); err != nil {
		return err
	}
	return sw.w.Flush()
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, 0), nil
	case int64:
		return binary.AppendVarint(append(b, 1), x), nil
	case string:
		b = binary.AppendUvarint(append(b, 2), uint64(len(x)))
		return append(b, x...), nil
	case []byte:
		b = binary.AppendUvarint(append(b, 3), uint64(len(x)))
		return append(b, x...), nil
	}
	return b, fmt.Errorf("backup: cannot encode a %T", v)
}

func keyColumns(t store.TableInfo) []store.Column {
	cols := make([]store.Column, len(t.KeyIndex))
	for i, k := range t.KeyIndex {
		cols[i] = t.Columns[k]
	}
	return cols
}

// streamReader decodes a stream.
type streamReader struct {
	r *bufio.Reader
}

// section is the header of a section being read.
type section struct {
	Table   string
	Columns []store.Column
	Kind    byte
}

// event is one decoded item of a stream.
type event struct {
	Op     byte // 'T' (Section set), 'C', 'X' (Seq), 'r' (Values), 'E', 'Z'
	Sec    section
	Seq    int64
	Values []any
}

var errStream = errors.New("backup data is malformed")

func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }

// readErr keeps the underlying reader's error (a damaged or foreign
// chunk) and calls a plain end of data what it is.
func readErr(err error) error {
	if isEOF(err) {
		return fmt.Errorf("%w: it ends early", errStream)
	}
	return err
}

func newStreamReader(r io.Reader) (*streamReader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(streamMagic))
	if _, err := io.ReadFull(br, magic); err != nil && !isEOF(err) {
		return nil, err // the chunk reader's own error (damage, a wrong key)
	} else if err != nil || string(magic) != streamMagic {
		return nil, fmt.Errorf("%w: not a Custos backup stream", errStream)
	}
	return &streamReader{r: br}, nil
}

func (sr *streamReader) str(limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(sr.r)
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: a value of %d bytes", errStream, n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(sr.r, b)
	return b, err
}

// next reads the next item. ncols is the current section's width (values
// per record).
func (sr *streamReader) next(ncols int, ev *event) error {
	op, err := sr.r.ReadByte()
	if err != nil {
		return readErr(err)
	}
	ev.Op = op
	switch op {
	case 'T':
		name, err := sr.str(maxNameLen)
		if err != nil {
			return readErr(err)
		}
		n, err := binary.ReadUvarint(sr.r)
		if err != nil || n == 0 || n > maxColumns {
			return fmt.Errorf("%w: bad column count", errStream)
		}
		ev.Sec = section{Table: string(name)}
		for range n {
			cn, err := sr.str(maxNameLen)
			if err != nil {
				return readErr(err)
			}
			ct, err := sr.r.ReadByte()
			if err != nil {
				return readErr(err)
			}
			if ct != 'i' && ct != 't' && ct != 'b' {
				return fmt.Errorf("%w: bad column type", errStream)
			}
			ev.Sec.Columns = append(ev.Sec.Columns, store.Column{Name: string(cn), Type: store.ColumnType(ct)})
		}
		if ev.Sec.Kind, err = sr.r.ReadByte(); err != nil || (ev.Sec.Kind != sectionRows && ev.Sec.Kind != sectionDeletes) {
			return fmt.Errorf("%w: bad section kind", errStream)
		}
	case 'C', 'E', 'Z':
	case 'X':
		if ev.Seq, err = binary.ReadVarint(sr.r); err != nil {
			return readErr(err)
		}
	case 'r', 'G':
		if ncols <= 0 {
			return fmt.Errorf("%w: a record outside a section", errStream)
		}
		n := ncols
		if op == 'G' {
			n = 1
		}
		ev.Values = ev.Values[:0]
		for range n {
			tag, err := sr.r.ReadByte()
			if err != nil {
				return readErr(err)
			}
			switch tag {
			case 0:
				ev.Values = append(ev.Values, nil)
			case 1:
				n, err := binary.ReadVarint(sr.r)
				if err != nil {
					return readErr(err)
				}
				ev.Values = append(ev.Values, n)
			case 2, 3:
				b, err := sr.str(maxValueLen)
				if err != nil {
					return readErr(err)
				}
				if tag == 2 {
					ev.Values = append(ev.Values, string(b))
				} else {
					ev.Values = append(ev.Values, b)
				}
			default:
				return fmt.Errorf("%w: bad value tag %d", errStream, tag)
			}
		}
	default:
		return fmt.Errorf("%w: unknown record %q", errStream, op)
	}
	return nil
}

// --- content hashes ---

// tableHash is an order-independent hash of a set of rows: the sum,
// modulo 2^256, of the SHA-256 of each row's canonical encoding (columns
// by name, values by logical type). Being a sum, the same rows give the
// same hash whichever engine stored them and in whatever order they were
// read. It detects accidental differences (a lost, extra or altered row);
// the backup's authenticity rests on the signed manifest and AEAD chunks.
type tableHash struct {
	sum   [4]uint64
	order []int // column positions sorted by name
	names []string
	buf   []byte
	label string
}

func newTableHash(label, table string, cols []store.Column) *tableHash {
	h := &tableHash{label: label + "\x00" + table + "\x00"}
	h.order = make([]int, len(cols))
	for i := range cols {
		h.order[i] = i
	}
	sort.Slice(h.order, func(a, b int) bool { return cols[h.order[a]].Name < cols[h.order[b]].Name })
	for _, i := range h.order {
		h.names = append(h.names, cols[i].Name)
	}
	return h
}

func (h *tableHash) add(vals []any) error {
	h.buf = append(h.buf[:0], h.label...)
	for j, i := range h.order {
		h.buf = append(h.buf, h.names[j]...)
		h.buf = append(h.buf, 0)
		var err error
		if h.buf, err = appendValue(h.buf, vals[i]); err != nil {
			return err
		}
	}
	d := sha256.Sum256(h.buf)
	var carry uint64
	for k := range 4 {
		x := binary.LittleEndian.Uint64(d[k*8:])
		s := h.sum[k] + x
		c1 := uint64(0)
		if s < h.sum[k] {
			c1 = 1
		}
		s2 := s + carry
		if s2 < s {
			c1 = 1
		}
		h.sum[k], carry = s2, c1
	}
	return nil
}

func (h *tableHash) hex() string {
	var b [32]byte
	for k := range 4 {
		binary.LittleEndian.PutUint64(b[k*8:], h.sum[k])
	}
	return hex.EncodeToString(b[:])
}

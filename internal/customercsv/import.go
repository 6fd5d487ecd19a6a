// Package customercsv maps customers to and from CSV files: Parse turns a
// file (see internal/csvio) into the rows the guarded path imports, with
// per-line errors that never quote a value; Columns and Record lay out an
// export so that it imports back. The command line and the API share it.
package customercsv

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/csvio"
)

// OwnerResolver maps an owner email from the file to a user id.
type OwnerResolver func(email string) (string, error)

// Result is a parsed file.
type Result struct {
	Encoding string
	Columns  []string
	Rows     []crm.ImportRow
	Errors   []crm.RowError // rows that could not be parsed
}

// splitMulti splits a cell holding several phones, emails or tags, separated
// by ; , 、 / or newlines (ASCII or full-width).
func splitMulti(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case ';', '；', ',', '，', '、', '\n', '\r', '/', '|':
			return true
		}
		return false
	})
	out := make([]string, 0, len(f))
	for _, x := range f {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// Parse reads the whole file. A header problem is an error; a bad row is
// listed in Result.Errors with its line number.
func Parse(r io.Reader, encoding string, owners OwnerResolver) (Result, error) {
	cr, err := csvio.NewReader(r, encoding, nil)
	if err != nil {
		return Result{}, err
	}
	res := Result{Encoding: cr.Encoding(), Columns: cr.Columns()}
	ownerCache := map[string]string{}
	for {
		row, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *csvio.RowError
		if errors.As(err, &re) {
			res.Errors = append(res.Errors, crm.RowError{Line: re.Line, Msg: strings.TrimPrefix(re.Error(), fmt.Sprintf("line %d: ", re.Line))})
			continue
		}
		if err != nil {
			return res, err
		}
		ir, rerr := toRow(row, owners, ownerCache)
		if rerr != nil {
			res.Errors = append(res.Errors, *rerr)
			continue
		}
		res.Rows = append(res.Rows, ir)
	}
	return res, nil
}

func toRow(row csvio.Row, owners OwnerResolver, cache map[string]string) (crm.ImportRow, *crm.RowError) {
	var f crm.CustomerFields
	str := func(col string) *string {
		v, ok := row.Values[col]
		if !ok || v == "" {
			return nil
		}
		v = csvio.UnsafeCell(v)
		return &v
	}
	list := func(col string) *[]string {
		v, ok := row.Values[col]
		if !ok || v == "" {
			return nil
		}
		v = csvio.UnsafeCell(v)
		l := splitMulti(v)
		return &l
	}
	f.Name = str("name")
	if f.Name == nil {
		empty := ""
		f.Name = &empty // reported by validation as "is required"-like error
	}
	f.Kind, f.Address, f.IDNumber, f.Notes = str("kind"), str("address"), str("id_number"), str("notes")
	f.Industry, f.Level, f.Source, f.Status = str("industry"), str("level"), str("source"), str("status")
	f.Phones, f.Emails, f.Tags = list("phone"), list("email"), list("tags")
	if o := str("owner"); o != nil {
		id, ok := cache[*o]
		if !ok {
			if owners == nil {
				return crm.ImportRow{}, &crm.RowError{Line: row.Line, Msg: "owner: owners cannot be set by this import"}
			}
			var err error
			if id, err = owners(*o); err != nil {
				return crm.ImportRow{}, &crm.RowError{Line: row.Line, Msg: "owner: no such user"}
			}
			cache[*o] = id
		}
		f.OwnerID = &id
	}
	return crm.ImportRow{Line: row.Line, Fields: f}, nil
}

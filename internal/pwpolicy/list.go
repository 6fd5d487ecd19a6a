package pwpolicy

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
)

// listGz is the list of common and breached passwords: canonical entries
// (see canon), sorted bytewise, deduplicated, one a line, gzip-compressed.
// gen/gen.go builds it; README.md says from what.
//
//go:embed data/common-passwords.txt.gz
var listGz []byte

// list is the decompressed list: all entries in one string, each followed by
// a newline, and the offset at which each starts. This costs the text plus 4
// bytes an entry, about 3 MB, instead of a string header per entry.
type list struct {
	text  string
	start []uint32
}

var loadList = sync.OnceValue(func() *list {
	l, err := parseList(listGz)
	if err != nil {
		panic("pwpolicy: embedded password list: " + err.Error())
	}
	return l
})

// parseList decompresses and indexes a list in the form gen/gen.go writes.
func parseList(gz []byte) (*list, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	// The gzip trailer ends with the uncompressed size: reading straight
	// into a buffer of that size saves the copies of io.ReadAll.
	var sb strings.Builder
	if n := len(gz); n >= 4 {
		if size := binary.LittleEndian.Uint32(gz[n-4:]); size <= 64<<20 {
			sb.Grow(int(size))
		}
	}
	if _, err := io.Copy(&sb, zr); err != nil {
		return nil, err
	}
	text := sb.String()
	l := &list{text: text, start: make([]uint32, 0, strings.Count(text, "\n"))}
	for off := 0; off < len(text); {
		l.start = append(l.start, uint32(off))
		i := strings.IndexByte(text[off:], '\n')
		if i < 0 {
			return nil, errors.New("no final newline")
		}
		off += i + 1
	}
	return l, nil
}

func (l *list) len() int { return len(l.start) }

// at returns entry i, without its newline.
func (l *list) at(i int) string {
	end := len(l.text)
	if i+1 < len(l.start) {
		end = int(l.start[i+1])
	}
	return l.text[l.start[i] : end-1]
}

func (l *list) contains(s string) bool {
	lo, hi := 0, l.len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.at(m) < s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < l.len() && l.at(lo) == s
}

// Common reports whether pw (compared case-insensitively, after trimming
// surrounding white space and NFC normalization) is in the embedded list of
// common and breached passwords. The list is loaded on first use.
func Common(pw string) bool {
	return common(canon(pw))
}

func common(c string) bool {
	return c != "" && loadList().contains(c)
}

// ListSize is the number of entries in the embedded list.
func ListSize() int { return loadList().len() }

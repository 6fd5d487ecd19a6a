//go:build ignore

// Command gen builds data/common-passwords.txt.gz, the list of common and
// breached passwords that package pwpolicy embeds.
//
// It reads the raw lists named on the command line (plain text, one password
// a line, or the same gzip-compressed when the name ends in .gz) and keeps,
// from each file, its first -top lines (the lists are ordered most common
// first) and every later line of at least -minlen runes (the only ones that
// can match a password long enough to pass the length rule). Each kept line
// is put in the form pwpolicy compares (trimmed, lowercased, NFC); lines that
// are empty, not valid UTF-8 or longer than 1024 bytes are dropped. The result
// is deduplicated, sorted bytewise, written one a line with a final newline,
// and gzip-compressed at the best level with an empty, zero-time header so
// the same input gives the same bytes.
//
// Usage, from the repository root (see internal/pwpolicy/README.md for where
// the raw files come from):
//
//	go run ./internal/pwpolicy/gen/gen.go -o internal/pwpolicy/data/common-passwords.txt.gz \
//		-top 100000 -minlen 10 10_million_password_list_top_1M.txt passwords.txt.gz
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// canon must stay identical to pwpolicy's canon: the package's tests check
// that every embedded entry is already in this form.
func canon(s string) string {
	return norm.NFC.String(strings.ToLower(strings.TrimSpace(s)))
}

func main() {
	out := flag.String("o", "", "output .gz file (required)")
	top := flag.Int("top", 100000, "keep the first `N` lines of each file whatever their length")
	minLen := flag.Int("minlen", 10, "after the first -top lines, keep only entries of at least `N` runes")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: go run gen.go -o OUT.gz [-top N] [-minlen N] FILE...")
		os.Exit(2)
	}

	set := make(map[string]struct{})
	for _, name := range flag.Args() {
		kept, dropped, err := readList(name, *top, *minLen, set)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "%s: kept %d lines, dropped %d invalid\n", name, kept, dropped)
	}

	list := make([]string, 0, len(set))
	for s := range set {
		list = append(list, s)
	}
	slices.Sort(list)

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		panic(err)
	}
	for _, s := range list {
		zw.Write([]byte(s))
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%s: %d entries, %d bytes\n", *out, len(list), buf.Len())
}

func readList(name string, top, minLen int, set map[string]struct{}) (kept, dropped int, err error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		defer zr.Close()
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 0; sc.Scan(); line++ {
		raw := sc.Text()
		if !utf8.ValidString(raw) {
			dropped++
			continue
		}
		s := canon(raw)
		if s == "" || len(s) > 1024 {
			dropped++
			continue
		}
		if line >= top && utf8.RuneCountInString(s) < minLen {
			continue
		}
		set[s] = struct{}{}
		kept++
	}
	if err := sc.Err(); err != nil {
		return kept, dropped, fmt.Errorf("%s: %w", name, err)
	}
	return kept, dropped, nil
}

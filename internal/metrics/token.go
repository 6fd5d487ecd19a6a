package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
)

// MinTokenLength is the shortest scrape token accepted.
const MinTokenLength = 16

// Token is the bearer token a scraper presents for /metrics on the main
// address. Only its SHA-256 is kept; it prints as "[redacted]".
type Token struct{ sum [32]byte }

// NewToken checks and keeps a token (surrounding white space removed).
func NewToken(s string) (*Token, error) {
	s = strings.TrimSpace(s)
	if len(s) < MinTokenLength {
		return nil, fmt.Errorf("the metrics token must be at least %d characters (e.g. openssl rand -hex 32)", MinTokenLength)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return nil, errors.New("the metrics token must not contain spaces or control characters")
		}
	}
	return &Token{sum: sha256.Sum256([]byte(s))}, nil
}

// ReadTokenFile reads a token from a file that only its owner (and group)
// may read: a token readable by every local user protects nothing.
func ReadTokenFile(path string) (*Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metrics token file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("metrics token file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("metrics token file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("metrics token file %s has mode %04o; other users must not have access (chmod 600 or 640)", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("metrics token file: %w", err)
	}
	if len(b) > 4096 {
		return nil, fmt.Errorf("metrics token file %s is too long for a token", path)
	}
	return NewToken(string(b))
}

// Allows reports whether r carries the token as "Authorization: Bearer".
// The comparison takes the same time whatever the presented value is: both
// sides are SHA-256 digests compared in constant time.
func (t *Token) Allows(r *http.Request) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
}

func (t *Token) String() string { return "[redacted]" }

// LogValue keeps the token out of logs.
func (t *Token) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Format prints "[redacted]" for every verb.
func (t *Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[redacted]") }

// Protect serves h only to requests that carry tok; others get 401. With a
// nil tok it returns h unchanged.
func Protect(tok *Token, h http.Handler) http.Handler {
	if tok == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tok.Allows(r) {
			Unauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Unauthorized answers a scrape without the right token.
func Unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="custos metrics"`)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, "a bearer token is required\n")
}

// ListenerHandler serves /metrics (GET and HEAD) with h and answers 404 to anything
// else: the handler of a separate metrics listener.
func ListenerHandler(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return mux
}

// Package keys holds Custos's key hierarchy:
//
//	root key (provider: local file; KMS later)
//	  └─ master key (random, wrapped by the root key, stored in the keyring table)
//	       ├─ index key (random, wrapped by the master key): blind indexes
//	       └─ data keys, one per customer or user (wrapped by the master key)
//
// Rotating the root key re-wraps one value; rotating the master key re-wraps
// data keys without re-encrypting data. Unwrapped data keys are kept in a
// bounded in-memory cache.
package keys

import (
	"context"

	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/custos/custos/internal/seal"
)

// RootProvider wraps and unwraps the master key. The local file provider is
// the embedded default; KMS providers implement the same interface.
type RootProvider interface {
	// ID names the root key without revealing it (e.g. "file:3f2a...").
	ID() string
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Unwrap(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
}

// ErrNoRootKey is returned when the root key file does not exist.
var ErrNoRootKey = errors.New("root key file not found")

const rootFileHeader = "custos-root-key-v1 "

// LocalFile is a root key kept in a file (mode 0600) outside the database.
type LocalFile struct {
	path string
	key  seal.Key
	id   string
}

var _ RootProvider = (*LocalFile)(nil)

// CreateLocalFile writes a new random root key to path. It refuses to
// overwrite an existing file.
func CreateLocalFile(path string) (*LocalFile, error) {
	k, err := seal.RandomKey(1)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("root key file %s already exists; refusing to overwrite it", path)
		}
		return nil, fmt.Errorf("create root key file: %w", err)
	}
	line := rootFileHeader + base64.StdEncoding.EncodeToString(k.Bytes()) + "\n"
	if _, err := f.WriteString(line); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write root key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sync root key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return newLocalFile(path, k), nil
}

// OpenLocalFile reads the root key from path. It refuses a file that other
// users can read.
func OpenLocalFile(path string) (*LocalFile, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoRootKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("root key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("root key file %s has mode %04o; it must be readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("root key file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if !strings.HasPrefix(s, rootFileHeader) {
		return nil, fmt.Errorf("root key file %s is not a Custos root key", path)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, rootFileHeader))
	if err != nil || len(raw) != seal.KeySize {
		return nil, fmt.Errorf("root key file %s is damaged", path)
	}
	k, err := seal.NewKey(1, raw)
	if err != nil {
		return nil, err
	}
	return newLocalFile(path, k), nil
}

func newLocalFile(path string, k seal.Key) *LocalFile {
	sum := sha256.Sum256(append([]byte("custos root key id\x00"), k.Bytes()...))
	return &LocalFile{path: path, key: k, id: "file:" + hex.EncodeToString(sum[:6])}
}

// ID implements RootProvider.
func (l *LocalFile) ID() string { return l.id }

func (l *LocalFile) String() string { return "keys.LocalFile{" + l.path + ", redacted}" }

// Wrap implements RootProvider.
func (l *LocalFile) Wrap(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	return seal.GCM{}.Seal(l.key, seal.AAD{Table: "root", Record: string(aad), Field: "wrap"}, plaintext)
}

// Unwrap implements RootProvider.
func (l *LocalFile) Unwrap(_ context.Context, ct, aad []byte) ([]byte, error) {
	return seal.GCM{}.Open(l.key, seal.AAD{Table: "root", Record: string(aad), Field: "wrap"}, ct)
}

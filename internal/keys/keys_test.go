package keys_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/store"
)

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestRootKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "root.key")
	if _, err := keys.OpenLocalFile(p); !errors.Is(err, keys.ErrNoRootKey) {
		t.Fatalf("missing: %v", err)
	}
	k, err := keys.CreateLocalFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if _, err := keys.CreateLocalFile(p); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("overwrite: %v", err)
	}
	k2, err := keys.OpenLocalFile(p)
	if err != nil || k2.ID() != k.ID() {
		t.Fatalf("reopen: %v", err)
	}
	ct, _ := k.Wrap(context.Background(), []byte("secret"), []byte("aad"))
	if pt, err := k2.Unwrap(context.Background(), ct, []byte("aad")); err != nil || string(pt) != "secret" {
		t.Fatal("unwrap")
	}
	if _, err := k2.Unwrap(context.Background(), ct, []byte("other")); err == nil {
		t.Fatal("unwrap with other aad")
	}
	for name, content := range map[string]string{"garbage": "hello", "short": "custos-root-key-v1 AAAA", "notbase64": "custos-root-key-v1 ***"} {
		bad := filepath.Join(dir, name)
		_ = os.WriteFile(bad, []byte(content), 0o600)
		if _, err := keys.OpenLocalFile(bad); err == nil {
			t.Fatalf("%s accepted", name)
		}
	}
	_ = os.Chmod(p, 0o640)
	if _, err := keys.OpenLocalFile(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable: %v", err)
	}
	if s := k.String(); strings.Contains(s, "custos-root-key") || !strings.Contains(s, "redacted") {
		t.Fatal(s)
	}
}

func TestKeyringLifecycle(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	root, err := keys.CreateLocalFile(filepath.Join(t.TempDir(), "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Open(ctx, db, root, keys.Options{}); !errors.Is(err, keys.ErrNotInitialized) {
		t.Fatalf("open empty: %v", err)
	}
	kr, err := keys.Initialize(ctx, db, root, keys.Options{CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Initialize(ctx, db, root, keys.Options{}); err == nil {
		t.Fatal("second Initialize replaced keys")
	}
	// Data keys: created in a transaction, unwrapped after a restart.
	var subjects = []string{"c1", "c2", "c3"}
	created := map[string][]byte{}
	if err := db.Write(ctx, func(tx *store.Tx) error {
		for _, s := range subjects {
			k, err := kr.NewDataKey(ctx, tx, s)
			if err != nil {
				return err
			}
			created[s] = k.Bytes()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	kr2, err := keys.Open(ctx, db, root, keys.Options{CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if string(kr2.Indexer().Term("x")) != string(kr.Indexer().Term("x")) {
		t.Fatal("index key changed across open")
	}
	err = db.Read(ctx, func(tx *store.Tx) error {
		for round := 0; round < 2; round++ {
			for _, s := range subjects {
				k, err := kr2.DataKey(ctx, tx, s, 1)
				if err != nil {
					return err
				}
				if string(k.Bytes()) != string(created[s]) {
					t.Fatalf("data key %s differs", s)
				}
			}
		}
		// The cache is bounded (2): cycling 3 subjects twice unwraps 6 times.
		if n := kr2.Unwraps(); n != 6 {
			t.Fatalf("unwraps %d, want 6 with a cache of 2", n)
		}
		if _, err := kr2.DataKey(ctx, tx, "c3", 1); err != nil || kr2.Unwraps() != 6 {
			t.Fatalf("cached key unwrapped again: %d", kr2.Unwraps())
		}
		if _, err := kr2.DataKey(ctx, tx, "nobody", 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown subject: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another installation's root key does not open this database.
	other, _ := keys.CreateLocalFile(filepath.Join(t.TempDir(), "other.key"))
	if _, err := keys.Open(ctx, db, other, keys.Options{}); !errors.Is(err, keys.ErrWrongRootKey) {
		t.Fatalf("wrong root: %v", err)
	}
}

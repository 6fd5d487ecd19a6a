package passkey_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/passkey"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends runs fn on a migrated SQLite and a migrated PostgreSQL database.
func backends(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	open := func(t *testing.T, dsn string) *store.DB {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	t.Run("sqlite", func(t *testing.T) { fn(t, open(t, filepath.Join(t.TempDir(), "custos.db"))) })
	t.Run("postgres", func(t *testing.T) { fn(t, open(t, pgtest.Shared(t).NewDatabase(t))) })
}

// addUser stores a user (its sealed fields are placeholders: passkeys never
// read them).
func addUser(t *testing.T, db *store.DB) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7()).String()
	bidx := make([]byte, 16)
	_, _ = rand.Read(bidx)
	now := time.Now().UTC()
	err := db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.EnsureRole(ctx, store.Role{Name: "sales", Permissions: ""}); err != nil {
			return err
		}
		return tx.InsertUser(ctx, store.User{ID: id, EmailBidx: bidx, Email: []byte("sealed"), Name: []byte("sealed"), Role: "sales",
			PasswordHash: "x", KeyVersion: 1, CreatedAt: now, UpdatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func reasons(t *testing.T, db *store.DB) []string {
	t.Helper()
	ctx := context.Background()
	var evs []store.AuditEvent
	err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		evs, err = tx.AuditEvents(ctx, 0, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Action+" "+e.Outcome+" "+e.Reason)
	}
	return out
}

func TestNew(t *testing.T) {
	for _, c := range []struct{ rpID, origin, err string }{
		{"localhost", "http://localhost:8080", ""},
		{"example.com", "https://crm.example.com", ""},
		{"example.com", "https://example.com/", ""},
		{"example.com", "https://evil.com", "not \"example.com\""},
		{"example.com", "https://notexample.com", "not \"example.com\""},
		{"example.com", "http://example.com", "only on localhost"},
		{"example.com", "https://example.com/app", "scheme and host"},
		{"example.com", "example.com", "scheme and host"},
	} {
		_, err := passkey.New(nil, c.rpID, c.origin, "Custos", nil)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("New(%q, %q): %v, want %q", c.rpID, c.origin, err, c.err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"", "Passkey"},
		{"  Laptop  ", "Laptop"},
		{"工作电脑", "工作电脑"},
		{strings.Repeat("é", passkey.MaxNameLen), strings.Repeat("é", passkey.MaxNameLen)},
		{strings.Repeat("é", passkey.MaxNameLen+1), ""},
		{"a\nb", ""},
		{"evil\u202etxt.exe", ""},
	} {
		got, err := passkey.CheckName(c.in)
		if c.out == "" {
			if !errors.Is(err, passkey.ErrInvalid) {
				t.Errorf("CheckName(%q) = %q, %v; want ErrInvalid", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.out {
			t.Errorf("CheckName(%q) = %q, %v; want %q", c.in, got, err, c.out)
		}
	}
}

// TestCeremonies checks what can be checked without an authenticator (the
// browser test covers the rest): options, single use, expiry, kind and user
// binding, and the audit of each refusal.
func TestCeremonies(t *testing.T) {
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
		svc, err := passkey.New(db, "localhost", "http://localhost:8080", "Custos", clk.now)
		if err != nil {
			t.Fatal(err)
		}
		ada, bob := addUser(t, db), addUser(t, db)
		ev := audit.Event{Actor: "user:" + ada}

		if _, _, err := svc.BeginRegistration(ctx, uuid.NewString(), "x@example.com", "X"); !errors.Is(err, passkey.ErrNotFound) {
			t.Fatalf("registration for an unknown user: %v", err)
		}
		options, token, err := svc.BeginRegistration(ctx, ada, "ada@example.com", "Ada")
		if err != nil {
			t.Fatal(err)
		}
		var creation struct {
			PublicKey struct {
				RP   struct{ ID, Name string }
				User struct {
					ID          string `json:"id"`
					Name        string `json:"name"`
					DisplayName string `json:"displayName"`
				}
				AuthenticatorSelection struct {
					ResidentKey      string `json:"residentKey"`
					UserVerification string `json:"userVerification"`
				} `json:"authenticatorSelection"`
				Exclude []any `json:"excludeCredentials"`
			} `json:"publicKey"`
		}
		if err := json.Unmarshal(options, &creation); err != nil {
			t.Fatal(err)
		}
		pk := creation.PublicKey
		if pk.RP.ID != "localhost" || pk.RP.Name != "Custos" || pk.User.ID != base64.RawURLEncoding.EncodeToString([]byte(ada)) ||
			pk.User.Name != "ada@example.com" || pk.User.DisplayName != "Ada" || pk.AuthenticatorSelection.ResidentKey != "required" ||
			pk.AuthenticatorSelection.UserVerification != "preferred" || pk.Exclude != nil {
			t.Fatalf("creation options %s", options)
		}

		// A bad name is refused before the ceremony is used up.
		if _, err := svc.FinishRegistration(ctx, ev, ada, token, "a\x00b", []byte(`{}`)); !errors.Is(err, passkey.ErrInvalid) {
			t.Fatalf("bad name: %v", err)
		}
		// Another user cannot finish it, and that uses it up.
		if _, err := svc.FinishRegistration(ctx, ev, bob, token, "", []byte(`{}`)); !errors.Is(err, passkey.ErrRejected) {
			t.Fatalf("another user's ceremony: %v", err)
		}
		if _, err := svc.FinishRegistration(ctx, ev, ada, token, "", []byte(`{}`)); !errors.Is(err, passkey.ErrRejected) {
			t.Fatalf("used ceremony: %v", err)
		}

		// A response that does not parse.
		_, token, err = svc.BeginRegistration(ctx, ada, "ada@example.com", "Ada")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.FinishRegistration(ctx, ev, ada, token, "", []byte(`{"id":"AAAA","type":"public-key"}`)); !errors.Is(err, passkey.ErrRejected) {
			t.Fatalf("garbage response: %v", err)
		}

		// A login ceremony is not a registration one, nor a second factor.
		_, loginToken, err := svc.BeginLogin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.FinishRegistration(ctx, ev, ada, loginToken, "", []byte(`{}`)); !errors.Is(err, passkey.ErrRejected) {
			t.Fatalf("login ceremony used to register: %v", err)
		}

		// Expiry, by the injected clock.
		_, token, err = svc.BeginRegistration(ctx, ada, "ada@example.com", "Ada")
		if err != nil {
			t.Fatal(err)
		}
		clk.add(passkey.CeremonyTTL)
		if _, err := svc.FinishRegistration(ctx, ev, ada, token, "", []byte(`{}`)); !errors.Is(err, passkey.ErrRejected) {
			t.Fatalf("expired ceremony: %v", err)
		}
		// Expired ceremonies are purged when another begins.
		_, stale, err := svc.BeginLogin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clk.add(passkey.CeremonyTTL + time.Second)
		if _, _, err := svc.BeginLogin(ctx); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(stale))
		err = db.Write(ctx, func(tx *store.Tx) error { _, err := tx.TakePasskeySession(ctx, sum[:]); return err })
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired ceremony still stored: %v", err)
		}
		for _, tok := range []string{"", "nope", strings.Repeat("a", 200)} {
			if _, err := svc.FinishLogin(ctx, audit.Event{Actor: "anonymous"}, tok, []byte(`{}`)); !errors.Is(err, passkey.ErrRejected) {
				t.Fatalf("login with token %q: %v", tok, err)
			}
		}

		if _, _, err := svc.BeginSecondFactor(ctx, ada); !errors.Is(err, passkey.ErrNotFound) {
			t.Fatalf("second factor without passkeys: %v", err)
		}
		for _, id := range []string{"", "not base64!", "AAAA"} {
			if err := svc.Remove(ctx, ev, ada, id); !errors.Is(err, passkey.ErrNotFound) {
				t.Fatalf("remove %q: %v", id, err)
			}
		}
		if ps, err := svc.List(ctx, ada); err != nil || len(ps) != 0 {
			t.Fatalf("list: %v %v", ps, err)
		}

		want := []string{
			"passkey.register denied ceremony of another kind or user",
			"passkey.register denied unknown or used ceremony",
			"passkey.register denied verification failed: Parse error for Registration",
			"passkey.register denied ceremony of another kind or user",
			"passkey.register denied ceremony expired",
			"auth.passkey denied no ceremony",
			"auth.passkey denied unknown or used ceremony",
			"auth.passkey denied no ceremony",
		}
		if got := reasons(t, db); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestStore checks the passkey queries on both engines.
func TestStore(t *testing.T) {
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ada, bob := addUser(t, db), addUser(t, db)
		t0 := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
		write := func(fn func(tx *store.Tx) error) error { return db.Write(ctx, fn) }
		for i, id := range [][]byte{{1, 2, 3}, {0, 255}} {
			p := store.Passkey{ID: id, UserID: ada, Name: "k", Credential: []byte(`{}`), CreatedAt: t0.Add(time.Duration(i) * time.Second)}
			if err := write(func(tx *store.Tx) error { return tx.InsertPasskey(ctx, p) }); err != nil {
				t.Fatal(err)
			}
		}
		dup := store.Passkey{ID: []byte{1, 2, 3}, UserID: bob, Name: "k", Credential: []byte(`{}`), CreatedAt: t0}
		if err := write(func(tx *store.Tx) error { return tx.InsertPasskey(ctx, dup) }); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate credential id: %v", err)
		}
		var ps []store.Passkey
		var n int
		_ = db.Read(ctx, func(tx *store.Tx) error {
			ps, _ = tx.UserPasskeys(ctx, ada)
			n, _ = tx.CountUserPasskeys(ctx, ada)
			return nil
		})
		if len(ps) != 2 || n != 2 || string(ps[0].ID) != "\x01\x02\x03" || !ps[1].CreatedAt.Equal(t0.Add(time.Second)) || ps[0].LastUsedAt != nil {
			t.Fatalf("listed %+v (%d)", ps, n)
		}
		use := func(prev, next int64) error {
			return write(func(tx *store.Tx) error {
				return tx.RecordPasskeyUse(ctx, []byte{1, 2, 3}, []byte(`{"n":1}`), prev, next, t0.Add(time.Hour))
			})
		}
		if err := use(0, 5); err != nil {
			t.Fatal(err)
		}
		if err := use(0, 6); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("use from a stale counter: %v", err)
		}
		var p store.Passkey
		_ = db.Read(ctx, func(tx *store.Tx) error {
			var err error
			p, err = tx.GetPasskey(ctx, []byte{1, 2, 3})
			return err
		})
		if p.SignCount != 5 || p.LastUsedAt == nil || !p.LastUsedAt.Equal(t0.Add(time.Hour)) || string(p.Credential) != `{"n":1}` {
			t.Fatalf("after use: %+v", p)
		}
		if err := write(func(tx *store.Tx) error { return tx.DeletePasskey(ctx, bob, []byte{1, 2, 3}) }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete another user's passkey: %v", err)
		}
		if err := write(func(tx *store.Tx) error { return tx.DeletePasskey(ctx, ada, []byte{1, 2, 3}) }); err != nil {
			t.Fatal(err)
		}
		if err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.GetPasskey(ctx, []byte{1, 2, 3}); return err }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted passkey: %v", err)
		}

		s := store.PasskeySession{IDHash: []byte("h"), Kind: "login", Data: []byte(`{}`), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		if err := write(func(tx *store.Tx) error { return tx.InsertPasskeySession(ctx, s) }); err != nil {
			t.Fatal(err)
		}
		var got store.PasskeySession
		if err := write(func(tx *store.Tx) error {
			var err error
			got, err = tx.TakePasskeySession(ctx, []byte("h"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got.UserID != "" || got.Kind != "login" || !got.ExpiresAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("session %+v", got)
		}
		if err := write(func(tx *store.Tx) error { _, err := tx.TakePasskeySession(ctx, []byte("h")); return err }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session taken twice: %v", err)
		}
	})
}

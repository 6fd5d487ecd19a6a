package auth_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)} }

var ev = audit.Event{Actor: "test"}

func setup(t *testing.T, c *clock) (*auth.Service, *store.DB) {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	root, _ := keys.CreateLocalFile(filepath.Join(t.TempDir(), "root.key"))
	kr, err := keys.Initialize(ctx, db, root, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *store.Tx) error { return tx.EnsureRole(ctx, store.Role{Name: "sales", Permissions: "read"}) }); err != nil {
		t.Fatal(err)
	}
	return auth.New(db, kr, auth.Settings{DelayBase: time.Millisecond}, c.now), db
}

func TestPasswordHash(t *testing.T) {
	h, err := auth.HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash %q does not carry the production parameters", h)
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		if ok, err := auth.VerifyPassword(h, pw); err != nil || ok != want {
			t.Fatalf("%q: %v %v", pw, ok, err)
		}
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAA", "$argon2id$v=19$m=x$a$b"} {
		if _, err := auth.VerifyPassword(bad, "x"); err == nil {
			t.Fatalf("accepted hash %q", bad)
		}
	}
	a, _ := auth.GeneratePassword()
	b, _ := auth.GeneratePassword()
	if len(a) != 20 || a == b || auth.CheckPasswordPolicy(a, "", "") != nil {
		t.Fatalf("generated %q %q", a, b)
	}
}

func TestSessionsExpire(t *testing.T) {
	c := newClock()
	s, _ := setup(t, c)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, ev, auth.NewUser{Email: "Li@Example.com", Name: "李雷", Role: "sales", Password: "correct horse battery"})
	if err != nil || u.Email != "li@example.com" {
		t.Fatalf("%+v %v", u, err)
	}
	login := func() string {
		res, err := s.Login(ctx, ev, "LI@example.com", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		return res.Token
	}
	// Idle timeout: 30 minutes without a request ends the session.
	tok := login()
	c.add(29 * time.Minute)
	if _, _, err := s.Session(ctx, tok); err != nil {
		t.Fatalf("within idle: %v", err)
	}
	c.add(29 * time.Minute) // activity at 29 min refreshed the idle timer
	if _, _, err := s.Session(ctx, tok); err != nil {
		t.Fatalf("activity did not refresh: %v", err)
	}
	c.add(31 * time.Minute)
	if _, _, err := s.Session(ctx, tok); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("idle session still valid: %v", err)
	}
	// Absolute lifetime: 12 hours even when active.
	tok = login()
	for i := 0; i < 25; i++ {
		c.add(29 * time.Minute)
		_, _, err := s.Session(ctx, tok)
		if i < 24 && err != nil {
			t.Fatalf("active session ended at step %d: %v", i, err)
		}
		if i == 24 && !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatal("session outlived its 12 hours")
		}
	}
	// Wrong password and unknown user: same error.
	_, e1 := s.Login(ctx, ev, "li@example.com", "wrong password")
	_, e2 := s.Login(ctx, ev, "ghost@example.com", "wrong password")
	_, e3 := s.Login(ctx, ev, "not an email", "wrong password")
	if !errors.Is(e1, auth.ErrBadCredentials) || e1.Error() != e2.Error() || e2.Error() != e3.Error() {
		t.Fatalf("login errors differ: %v / %v / %v", e1, e2, e3)
	}
	// Logout ends the session.
	tok = login()
	if err := s.Logout(ctx, ev, tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Session(ctx, tok); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatal("session survived logout")
	}
}

func TestTokens(t *testing.T) {
	c := newClock()
	s, _ := setup(t, c)
	ctx := context.Background()
	u, _ := s.CreateUser(ctx, ev, auth.NewUser{Email: "t@example.com", Name: "T", Role: "sales", Password: "correct horse battery"})
	secret, tok, err := s.CreateToken(ctx, ev, u.ID, "ci", time.Hour)
	if err != nil || !strings.HasPrefix(secret, auth.TokenPrefix) {
		t.Fatal(err)
	}
	if id, err := s.ResolveToken(ctx, secret); err != nil || id.User.ID != u.ID || id.Actor() != "token:"+tok.ID {
		t.Fatalf("resolve: %v", err)
	}
	c.add(61 * time.Minute)
	if _, err := s.ResolveToken(ctx, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatal("expired token accepted")
	}
	for _, bad := range []struct {
		name string
		ttl  time.Duration
	}{{"", time.Hour}, {strings.Repeat("x", 101), time.Hour}, {"ok", -time.Hour}, {"ok", 400 * 24 * time.Hour}} {
		if _, _, err := s.CreateToken(ctx, ev, u.ID, bad.name, bad.ttl); !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("%q %v accepted: %v", bad.name, bad.ttl, err)
		}
	}
	secret, tok, _ = s.CreateToken(ctx, ev, u.ID, "ci2", 0)
	if err := s.RevokeToken(ctx, ev, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveToken(ctx, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatal("revoked token accepted")
	}
	for _, junk := range []string{"", "cst_", "nope", "cst_" + strings.Repeat("a", 200)} {
		if _, err := s.ResolveToken(ctx, junk); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("%q: %v", junk, err)
		}
	}
}

func TestLockout(t *testing.T) {
	c := newClock()
	s, _ := setup(t, c)
	ctx := context.Background()
	u, _ := s.CreateUser(ctx, ev, auth.NewUser{Email: "victim@example.com", Name: "V", Role: "sales", Password: "correct horse battery"})
	from := func(ip string) audit.Event { e := ev; e.IP = ip; return e }
	attempt := func(email, pw, ip string) error {
		_, err := s.Login(ctx, from(ip), email, pw)
		return err
	}
	// Four failures: still answered 401; the fifth locks the account.
	for i := 1; i <= 5; i++ {
		if err := attempt("victim@example.com", "wrong password!", "10.0.0.1"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	var le *auth.LockedError
	err := attempt("victim@example.com", "correct horse battery", "10.0.0.2")
	if !errors.As(err, &le) || le.RetryAfter <= 14*time.Minute || le.RetryAfter > 15*time.Minute {
		t.Fatalf("right password during lock: %v", err)
	}
	// An unknown account locks the same way, with the same errors.
	for i := 1; i <= 5; i++ {
		if err := attempt("nobody@example.com", "wrong password!", "10.0.0.3"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("unknown failure %d: %v", i, err)
		}
	}
	if err := attempt("nobody@example.com", "wrong password!", "10.0.0.4"); !errors.As(err, &le) {
		t.Fatalf("unknown account not locked: %v", err)
	}
	// The lock ends.
	c.add(15*time.Minute + time.Second)
	if err := attempt("victim@example.com", "correct horse battery", "10.0.0.2"); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	// Admin unlock clears a lock at once.
	for range 5 {
		_ = attempt("victim@example.com", "wrong password!", "10.0.0.5")
	}
	if err := attempt("victim@example.com", "correct horse battery", "10.0.0.5"); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("not locked again: %v", err)
	}
	if err := s.Unlock(ctx, ev, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := attempt("victim@example.com", "correct horse battery", "10.0.0.6"); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	// One address spraying many accounts is locked after 20 failures.
	for i := range 20 {
		if err := attempt(fmt.Sprintf("spray%d@example.com", i), "wrong password!", "10.9.9.9"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("spray %d: %v", i, err)
		}
	}
	if err := attempt("victim@example.com", "correct horse battery", "10.9.9.9"); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("address not locked: %v", err)
	}
	if err := attempt("victim@example.com", "correct horse battery", "10.0.0.7"); err != nil {
		t.Fatalf("other address locked too: %v", err)
	}
}

func TestPasswordLifecycle(t *testing.T) {
	c := newClock()
	s, db := setup(t, c)
	ctx := context.Background()
	for _, bad := range []struct{ pw, want string }{
		{"password1234", "too common"},
		{"short", "at least 12"},
		{"wang.wei.2026!!", "name or email"},
		{"王伟的密码很长很长很长很长很长", "name or email"},
	} {
		_, err := s.CreateUser(ctx, ev, auth.NewUser{Email: "wang.wei@example.com", Name: "王伟", Role: "sales", Password: bad.pw})
		if !errors.Is(err, auth.ErrInvalid) || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), bad.pw) {
			t.Fatalf("%q: %v", bad.pw, err)
		}
	}
	u, err := s.CreateUser(ctx, ev, auth.NewUser{Email: "wang.wei@example.com", Name: "王伟", Role: "sales", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := s.Login(ctx, ev, "wang.wei@example.com", "correct horse battery")
	other, _ := s.Login(ctx, ev, "wang.wei@example.com", "correct horse battery")
	if _, _, err := s.ChangePassword(ctx, ev, res.Token, "wrong current pw", "a brand new passphrase"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("wrong current: %v", err)
	}
	if _, _, err := s.ChangePassword(ctx, ev, res.Token, "correct horse battery", "qwertyuiop123"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("common new: %v", err)
	}
	tok, _, err := s.ChangePassword(ctx, ev, res.Token, "correct horse battery", "a brand new passphrase")
	if err != nil {
		t.Fatal(err)
	}
	for name, old := range map[string]string{"this": res.Token, "other": other.Token} {
		if _, _, err := s.Session(ctx, old); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("%s session survived the change: %v", name, err)
		}
	}
	if _, _, err := s.Session(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Admin reset: all sessions end; the next session must change the password.
	if err := s.ResetPassword(ctx, ev, u.ID, "temporary reset passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Session(ctx, tok); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatal("session survived the reset")
	}
	res, err = s.Login(ctx, ev, "wang.wei@example.com", "temporary reset passphrase")
	if err != nil || !res.Identity.MustChangePassword || !res.Identity.Restricted {
		t.Fatalf("after reset: %+v %v", res.Identity, err)
	}
	tok, _, err = s.ChangePassword(ctx, ev, res.Token, "temporary reset passphrase", "my own passphrase again")
	if err != nil {
		t.Fatal(err)
	}
	if id, _, _ := s.Session(ctx, tok); id.Restricted {
		t.Fatal("still restricted after changing the password")
	}
	// Raising the argon2 parameters upgrades the stored hash at the next login.
	auth.UseHashParamsForTests(t, auth.Argon2Params{Memory: 128, Time: 2, Threads: 1})
	if _, err := s.Login(ctx, ev, "wang.wei@example.com", "my own passphrase again"); err != nil {
		t.Fatal(err)
	}
	var hash string
	_ = db.Read(ctx, func(tx *store.Tx) error { row, err := tx.GetUser(ctx, u.ID); hash = row.PasswordHash; return err })
	if !strings.Contains(hash, "$m=128,t=2,p=1$") {
		t.Fatalf("hash not upgraded: %s", hash[:30])
	}
	if ok, _ := auth.VerifyPassword(hash, "my own passphrase again"); !ok {
		t.Fatal("upgraded hash does not verify")
	}
}

// Step-up and password change verify the password: guesses there count
// towards the same lock as guesses at login.
func TestStepUpAndPasswordChangeAreThrottled(t *testing.T) {
	c := newClock()
	s, _ := setup(t, c)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, ev, auth.NewUser{Email: "st@example.com", Name: "S", Role: "sales", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Login(ctx, ev, "st@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.Reauthenticate(ctx, ev, res.Token, "guess number one", ""); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("reauth guess %d: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, _, err := s.ChangePassword(ctx, ev, res.Token, "guess number two", "a brand new passphrase"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("change guess %d: %v", i, err)
		}
	}
	if err := s.Reauthenticate(ctx, ev, res.Token, "correct horse battery", ""); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("right password after 5 guesses: %v", err)
	}
	if _, err := s.Login(ctx, ev, "st@example.com", "correct horse battery"); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("login after 5 step-up guesses: %v", err)
	}
}

// A burst of parallel guesses gets no more checks than the thresholds allow:
// each attempt is counted before its secret is verified.
func TestParallelGuessesAreBounded(t *testing.T) {
	c := newClock()
	s, _ := setup(t, c)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, ev, auth.NewUser{Email: "par@example.com", Name: "P", Role: "sales", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	burst := func(n int, try func() error) (bad, locked int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := try()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, auth.ErrLocked):
					locked++
				case errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrBadCode):
					bad++
				default:
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
		wg.Wait()
		return bad, locked
	}
	e := ev
	e.IP = "10.1.1.1"
	bad, locked := burst(60, func() error { _, err := s.Login(ctx, e, "par@example.com", "wrong password!"); return err })
	if bad > 5 || bad+locked != 60 {
		t.Fatalf("60 parallel wrong passwords: %d checked, %d locked (at most 5 may be checked)", bad, locked)
	}
	t.Logf("60 parallel wrong passwords: %d checked, %d refused as locked", bad, locked)

	// The same for second-factor codes on one challenge.
	c.add(16 * time.Minute) // the lock ends
	res, err := s.Login(ctx, ev, "par@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	en, err := s.StartTOTP(ctx, ev, res.Identity.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(en.Secret, c.now())
	if _, _, _, _, err := s.ConfirmTOTP(ctx, ev, res.Token, code); err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute)
	ch, err := s.Login(ctx, ev, "par@example.com", "correct horse battery")
	if err != nil || ch.Challenge == "" {
		t.Fatalf("challenge: %v", err)
	}
	wrong := "000000"
	if cur, _ := totp.GenerateCode(en.Secret, c.now()); cur == wrong {
		wrong = "111111"
	}
	bad, locked = burst(40, func() error {
		_, err := s.CompleteMFA(ctx, ev, ch.Challenge, wrong)
		if errors.Is(err, auth.ErrUnauthenticated) { // the challenge's five attempts are used up
			return auth.ErrLocked
		}
		return err
	})
	if bad > 5 {
		t.Fatalf("40 parallel wrong codes: %d checked (at most 5 may be)", bad)
	}
	t.Logf("40 parallel wrong codes: %d checked, %d refused", bad, locked)
}

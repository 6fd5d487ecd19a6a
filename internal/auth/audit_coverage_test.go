package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/store"
)

// TestAuditCoverage drives the identity actions — logins that succeed and
// fail, logout, second factors, step-up, sessions, tokens and the user
// lifecycle — and checks each left its event with the right outcome and
// reason, that an unknown account is named only by a keyed hash, and that no
// email or name is in the audit table in plaintext.
func TestAuditCoverage(t *testing.T) {
	c := newClock()
	s, db := setup(t, c)
	ctx := context.Background()
	from := func(ip string) audit.Event { e := ev; e.IP = ip; return e }
	if err := s.SetRolePolicy(ctx, ev, store.RolePolicy{Role: "sales"}); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, ev, auth.NewUser{Email: "cover.user@example.com", Name: "覆盖用户", Role: "sales", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	// Logins: right, wrong password, unknown account (an email, and text
	// that is no email at all), locked.
	res, err := s.Login(ctx, from("10.0.0.1"), "cover.user@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, from("10.0.0.1"), "cover.user@example.com", "wrong password!"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, from("10.0.0.2"), "ghost.person@example.com", "wrong password!"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, from("10.0.0.2"), "张三的生日19800101", "wrong password!"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatal(err)
	}
	for range 5 {
		_, _ = s.Login(ctx, from("10.0.0.3"), "locked.person@example.com", "wrong password!")
	}
	if _, err := s.Login(ctx, from("10.0.0.3"), "locked.person@example.com", "wrong password!"); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("not locked: %v", err)
	}
	// Step-up, wrong and right.
	if err := s.Reauthenticate(ctx, ev, res.Token, "wrong password!", ""); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatal(err)
	}
	if err := s.Reauthenticate(ctx, ev, res.Token, "correct horse battery", ""); err != nil {
		t.Fatal(err)
	}
	// Second factor: enrollment with a wrong, then a right code.
	en, err := s.StartTOTP(ctx, ev, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := s.ConfirmTOTP(ctx, ev, res.Token, "000000x"); !errors.Is(err, auth.ErrBadCode) {
		t.Fatalf("wrong enrollment code: %v", err)
	}
	code, _ := totp.GenerateCode(en.Secret, c.now())
	_, _, tok, _, err := s.ConfirmTOTP(ctx, ev, res.Token, code)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(ctx, ev, tok); err != nil {
		t.Fatal(err)
	}
	// Login with the factor: wrong code, right code; a challenge left to expire.
	c.add(time.Minute)
	ch, err := s.Login(ctx, ev, "cover.user@example.com", "correct horse battery")
	if err != nil || ch.Challenge == "" {
		t.Fatalf("challenge: %+v %v", ch, err)
	}
	if _, err := s.CompleteMFA(ctx, ev, ch.Challenge, "00000x"); !errors.Is(err, auth.ErrBadCode) {
		t.Fatalf("wrong code: %v", err)
	}
	code, _ = totp.GenerateCode(en.Secret, c.now())
	done, err := s.CompleteMFA(ctx, ev, ch.Challenge, code)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := s.Login(ctx, ev, "cover.user@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	c.add(6 * time.Minute)
	if _, err := s.CompleteMFA(ctx, ev, stale.Challenge, "123456"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired challenge: %v", err)
	}
	// Sessions, tokens.
	list, err := s.Sessions(ctx, u.ID, done.Token)
	if err != nil || len(list) == 0 {
		t.Fatalf("sessions: %v %v", list, err)
	}
	if err := s.RevokeSession(ctx, ev, u.ID, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAllSessions(ctx, ev, u.ID); err != nil {
		t.Fatal(err)
	}
	_, token, err := s.CreateToken(ctx, ev, u.ID, "laptop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, ev, token.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, ev, u.ID, "second", time.Hour); err != nil {
		t.Fatal(err)
	}
	// User lifecycle.
	if err := s.ResetPassword(ctx, ev, u.ID, "temporary reset passphrase"); err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute)
	ch, err = s.Login(ctx, ev, "cover.user@example.com", "temporary reset passphrase")
	if err != nil {
		t.Fatal(err)
	}
	code, _ = totp.GenerateCode(en.Secret, c.now())
	done, err = s.CompleteMFA(ctx, ev, ch.Challenge, code)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ChangePassword(ctx, ev, done.Token, "temporary reset passphrase", "my very own passphrase"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, ev, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, ev, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenVerifiedSession(ctx, ev, u.ID, auth.MethodPasskey, true); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("passkey login of a disabled user: %v", err)
	}
	if err := s.SetDisabled(ctx, ev, u.ID, false); err != nil {
		t.Fatal(err)
	}

	evs := auditEvents(t, db)
	for _, w := range []struct{ action, outcome, reason, objID string }{
		{"role.policy.update", audit.OK, "", "sales"},
		{"user.create", audit.OK, "", u.ID},
		{"auth.login", audit.OK, "", u.ID},
		{"auth.login", audit.Denied, "bad password", u.ID},
		{"auth.login", audit.Denied, "unknown user", ""},
		{"auth.login", audit.Denied, "locked", ""},
		{"auth.reauthenticate", audit.Denied, "step-up failed", u.ID},
		{"auth.reauthenticate", audit.OK, "", u.ID},
		{"mfa.totp.start", audit.OK, "", u.ID},
		{"mfa.totp.confirm", audit.Denied, "invalid code", u.ID},
		{"mfa.totp.confirm", audit.OK, "", u.ID},
		{"auth.logout", audit.OK, "", ""},
		{"auth.mfa", audit.Denied, "bad second factor", u.ID},
		{"auth.mfa", audit.OK, "", u.ID},
		{"auth.mfa", audit.Denied, "challenge expired", u.ID},
		{"session.revoke", audit.OK, "", u.ID},
		{"session.revoke_all", audit.OK, "", u.ID},
		{"token.create", audit.OK, "", token.ID},
		{"token.revoke", audit.OK, "", token.ID},
		{"user.password.reset", audit.OK, "", u.ID},
		{"user.password.change", audit.OK, "", u.ID},
		{"user.unlock", audit.OK, "", u.ID},
		{"user.disable", audit.OK, "", u.ID},
		{"auth.login", audit.Denied, "user disabled", u.ID},
		{"user.enable", audit.OK, "", u.ID},
	} {
		if !hasEvent(evs, w.action, w.outcome, w.reason, w.objID) {
			t.Errorf("no %s event %s (reason %q) on %q", w.outcome, w.action, w.reason, w.objID)
		}
	}
	// Unknown and locked accounts are named by a keyed hash, one per account.
	hashes := map[string]bool{}
	for _, e := range evs {
		if e.Action == "auth.login" && (e.Reason == "unknown user" || e.Reason == "locked") {
			var d struct {
				EmailHash string `json:"email_hash"`
			}
			if err := json.Unmarshal([]byte(e.Details), &d); err != nil || len(d.EmailHash) < 20 {
				t.Errorf("%s event %d without an account hash: %s", e.Reason, e.Seq, e.Details)
			}
			hashes[d.EmailHash] = true
		}
	}
	if len(hashes) != 3 {
		t.Errorf("%d distinct account hashes, want 3 (ghost, the non-email, locked)", len(hashes))
	}
	// Revocations and the disable say what they ended.
	for action, key := range map[string]string{"token.revoke": "user_id", "session.revoke_all": "sessions_ended", "user.disable": "tokens_revoked"} {
		for _, e := range evs {
			if e.Action == action && !strings.Contains(e.Details, `"`+key+`"`) {
				t.Errorf("%s details lack %s: %s", action, key, e.Details)
			}
		}
	}
	for _, e := range evs {
		row := strings.Join([]string{e.Actor, e.IP, e.UserAgent, e.Action, e.ObjectType, e.ObjectID, e.Outcome, e.Reason, e.RequestID, e.Details}, "\x00")
		for _, v := range []string{"cover.user", "ghost.person", "locked.person", "张三", "19800101", "覆盖用户", "passphrase", "horse"} {
			if strings.Contains(row, v) {
				t.Fatalf("audit event %d (%s) holds %q: %q", e.Seq, e.Action, v, row)
			}
		}
	}
}

func auditEvents(t *testing.T, db *store.DB) []store.AuditEvent {
	t.Helper()
	var evs []store.AuditEvent
	if err := db.Read(context.Background(), func(tx *store.Tx) error {
		var err error
		evs, err = tx.AuditEvents(context.Background(), 0, 100000)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

func hasEvent(evs []store.AuditEvent, action, outcome, reason, objID string) bool {
	for _, e := range evs {
		if e.Action == action && e.Outcome == outcome && (reason == "" || e.Reason == reason) && (objID == "" || e.ObjectID == objID) {
			return true
		}
	}
	return false
}

package crm_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/store"
)

// sinkReceiver is a webhook receiver that checks signatures with the
// secret it is told and records what it got.
type sinkReceiver struct {
	mu     sync.Mutex
	secret string
	got    []monitor.WebhookPayload
	bad    int
}

func (r *sinkReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := monitor.Verify([]byte(r.secret), req.Header.Get("X-Custos-Timestamp"), req.Header.Get("X-Custos-Signature"), body, time.Now(), 5*time.Minute); err != nil {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p monitor.WebhookPayload
	_ = json.Unmarshal(body, &p)
	r.got = append(r.got, p)
}

func (r *sinkReceiver) received() ([]monitor.WebhookPayload, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]monitor.WebhookPayload(nil), r.got...), r.bad
}

func (e *env) auditSince(after int64) []store.AuditEvent {
	e.t.Helper()
	var evs []store.AuditEvent
	if err := e.n.DB.Read(e.ctx, func(tx *store.Tx) (err error) { evs, err = tx.AuditEvents(e.ctx, after, 1000); return }); err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *env) auditHead() int64 {
	evs := e.auditSince(0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

func TestAlertSinkAdministration(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		const secret = "webhook-secret-6c1d9a0b"
		recv := &sinkReceiver{secret: secret}
		srv := httptest.NewServer(recv)
		defer srv.Close()
		sec := e.user("sec@example.com", "security_officer")
		in := crm.AlertSinkInput{Name: "ops", Kind: monitor.KindWebhook, MinSeverity: monitor.High, URL: srv.URL + "/hook?token=url-token-77aa", Secret: secret}

		// Refusals are on record.
		before := e.auditHead()
		if _, err := e.n.CRM.CreateAlertSink(e.ctx, e.s1, in); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("a sales rep created a sink: %v", err)
		}
		if _, err := e.n.CRM.ListAlertSinks(e.ctx, e.s1); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("a sales rep listed sinks: %v", err)
		}
		stale := sec
		stale.Interactive, stale.AuthAt = true, time.Now().Add(-time.Hour)
		if _, err := e.n.CRM.CreateAlertSink(e.ctx, stale, in); !errors.Is(err, access.ErrStepUp) {
			t.Fatalf("a session without a recent authentication created a sink: %v", err)
		}
		denied := 0
		for _, ev := range e.auditSince(before) {
			if ev.Outcome == audit.Denied && strings.HasPrefix(ev.Action, "alert_sink.") {
				denied++
			}
		}
		if denied != 3 {
			t.Fatalf("%d denials recorded, want 3", denied)
		}

		// Bad input is a validation error naming the fields, without values.
		bad := in
		bad.Name, bad.Kind, bad.MinSeverity = "Bad Name!", "pager", "urgent"
		var ve *crm.ValidationError
		if _, err := e.n.CRM.CreateAlertSink(e.ctx, sec, bad); !errors.As(err, &ve) || len(ve.Fields) != 3 {
			t.Fatalf("bad input: %v", err)
		}
		weak := in
		weak.Secret, weak.URL = "short", "http://hooks.example.com/x?token=url-token-77aa"
		if _, err := e.n.CRM.CreateAlertSink(e.ctx, sec, weak); !errors.As(err, &ve) || strings.Contains(ve.Error(), "url-token-77aa") || strings.Contains(ve.Error(), "short") {
			t.Fatalf("weak input: %v", err)
		}

		before = e.auditHead()
		k, err := e.n.CRM.CreateAlertSink(e.ctx, sec, in)
		if err != nil {
			t.Fatal(err)
		}
		if k.Target != strings.TrimSuffix(srv.URL, "/") || !k.Enabled || k.MinSeverity != "high" {
			t.Fatalf("created %+v", k)
		}
		if _, err := e.n.CRM.CreateAlertSink(e.ctx, sec, in); !errors.As(err, &ve) || ve.Fields[0].Field != "name" {
			t.Fatalf("a second sink named ops: %v", err)
		}
		// The secrets are sealed in the database, in no listing or audit event.
		var raw []byte
		if err := e.rawDB().QueryRow(`SELECT config FROM alert_sinks WHERE name = 'ops'`).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		list, err := e.n.CRM.ListAlertSinks(e.ctx, sec)
		if err != nil || len(list) != 1 {
			t.Fatalf("list %+v %v", list, err)
		}
		listed, _ := json.Marshal(list)
		var evs strings.Builder
		for _, ev := range e.auditSince(before) {
			evs.WriteString(ev.Action + " " + ev.Details + "\n")
		}
		for what, text := range map[string]string{"the database": string(raw), "the listing": string(listed), "the audit trail": evs.String(),
			"a printed input": fmt.Sprintf("%v %+v %#v %s", in, in, in, in)} {
			for _, s := range []string{secret, "url-token-77aa", "/hook"} {
				if strings.Contains(text, s) {
					t.Errorf("%s holds %q: %s", what, s, text)
				}
			}
		}
		if !strings.Contains(evs.String(), "alert_sink.create") {
			t.Fatalf("creation not audited:\n%s", evs.String())
		}

		// A test message goes out now, signed, and counts in the status.
		res, err := e.n.CRM.TestAlertSink(e.ctx, sec, "ops")
		if err != nil || !res.OK {
			t.Fatalf("test: %+v %v", res, err)
		}
		got, badSig := recv.received()
		if len(got) != 1 || got[0].Rule != monitor.RuleTest || got[0].ID != res.MessageID || badSig != 0 {
			t.Fatalf("receiver got %+v (%d bad signatures)", got, badSig)
		}

		// An alert raised on the guarded path reaches the sink through the
		// outbox: an administrator granting themselves data access.
		if _, err := e.n.CRM.CreateGrant(e.ctx, e.admin, e.admin.UserID, "export", "quarter-end report", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if k, err := e.n.Notifier.RunOnce(e.ctx); err != nil || k != 1 {
			t.Fatalf("notifier claimed %d: %v", k, err)
		}
		got, _ = recv.received()
		if len(got) != 2 || got[1].Rule != monitor.RuleSelfGrant || got[1].ActorID != e.admin.UserID || got[1].Title.Zh == "" {
			t.Fatalf("receiver got %+v", got)
		}

		// Update without resending the secret keeps it; a new one replaces it.
		off := false
		if k, err = e.n.CRM.UpdateAlertSink(e.ctx, sec, "ops", crm.AlertSinkInput{MinSeverity: monitor.Critical, Enabled: &off}); err != nil || k.Enabled || k.MinSeverity != "critical" {
			t.Fatalf("update: %+v %v", k, err)
		}
		if res, err = e.n.CRM.TestAlertSink(e.ctx, sec, "ops"); err != nil || !res.OK {
			t.Fatalf("test after an update without the secret: %+v %v", res, err)
		}
		if _, err = e.n.CRM.UpdateAlertSink(e.ctx, sec, "ops", crm.AlertSinkInput{Secret: "a brand new secret 0001"}); err != nil {
			t.Fatal(err)
		}
		res, err = e.n.CRM.TestAlertSink(e.ctx, sec, "ops")
		if err != nil || res.OK || !strings.Contains(res.Error, "HTTP 401") || strings.Contains(res.Error, "url-token-77aa") {
			t.Fatalf("test with a secret the receiver does not know: %+v %v", res, err)
		}
		list, _ = e.n.CRM.ListAlertSinks(e.ctx, sec)
		if list[0].ConsecutiveFailures != 1 || list[0].LastError != res.Error || list[0].LastOKAt == nil {
			t.Fatalf("status after a failed test: %+v", list[0])
		}
		if _, err := e.n.CRM.UpdateAlertSink(e.ctx, sec, "ops", crm.AlertSinkInput{Kind: monitor.KindSlack}); !errors.As(err, &ve) {
			t.Fatalf("changing the kind: %v", err)
		}
		if _, err := e.n.CRM.UpdateAlertSink(e.ctx, sec, "nope", crm.AlertSinkInput{MinSeverity: "low"}); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("updating a missing sink: %v", err)
		}
		var changed []string
		for _, ev := range e.auditSince(before) {
			if ev.Action == "alert_sink.update" && ev.Outcome == audit.OK {
				var d struct{ Changed []string }
				_ = json.Unmarshal([]byte(ev.Details), &d)
				changed = append(changed, strings.Join(d.Changed, ","))
				if strings.Contains(ev.Details, "brand new") {
					t.Fatalf("the new secret is in the audit trail: %s", ev.Details)
				}
			}
			if ev.Action == "alert_sink.test" && ev.Outcome == audit.Failed && !strings.Contains(ev.Details, "HTTP 401") {
				t.Fatalf("failed test event %s", ev.Details)
			}
		}
		if strings.Join(changed, " ") != "min_severity,enabled secret" {
			t.Fatalf("updates audited as %q", changed)
		}

		// Delete: gone, its queued deliveries too, and its key destroyed.
		var subject string
		if err := e.rawDB().QueryRow(`SELECT key_subject FROM alert_sinks WHERE name = 'ops'`).Scan(&subject); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.DeleteAlertSink(e.ctx, e.s1, "ops"); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("a sales rep deleted a sink: %v", err)
		}
		if err := e.n.CRM.DeleteAlertSink(e.ctx, sec, "ops"); err != nil {
			t.Fatal(err)
		}
		if list, _ = e.n.CRM.ListAlertSinks(e.ctx, sec); len(list) != 0 {
			t.Fatalf("after delete: %+v", list)
		}
		var wrapped []byte
		if err := e.rawDB().QueryRow(`SELECT wrapped FROM data_keys WHERE subject = '` + subject + `'`).Scan(&wrapped); err != nil || wrapped != nil {
			t.Fatalf("the deleted sink's key: %x %v", wrapped, err)
		}
		if err := e.n.CRM.DeleteAlertSink(e.ctx, sec, "ops"); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("deleting again: %v", err)
		}
		if _, err := e.n.CRM.TestAlertSink(e.ctx, sec, "ops"); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("testing a deleted sink: %v", err)
		}
	})
}

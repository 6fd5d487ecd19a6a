package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/audit/audittest"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/store"
)

// addEvents appends n events to the trail of dir directly (fast), then
// runs a CLI command, whose exit writes a signed checkpoint of the head.
func addEvents(t *testing.T, dir string, n int) int64 {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "custos.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := audit.RecordAlone(ctx, db, time.Now(), audit.Event{Actor: "user:u1", Action: "customer.view", ObjectType: "customer",
			ObjectID: fmt.Sprintf("c%d", i), Outcome: audit.OK, Details: map[string]any{"fields": []string{"phone"}}}); err != nil {
			t.Fatal(err)
		}
	}
	var head store.AuditHead
	_ = db.Read(ctx, func(tx *store.Tx) error { head, err = tx.AuditHead(ctx); return err })
	_ = db.Close()
	custos(t, nil, "", "config", "list", "--data", dir).mustOK(t)
	return head.Seq
}

func dbPath(t *testing.T, dir string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	if len(matches) != 1 {
		t.Fatalf("database files in %s: %v", dir, matches)
	}
	return matches[0]
}

// TestAuditVerifyCommand tampers with a real data directory's trail directly
// in SQLite and checks that `custos audit verify --data DIR` exits non-zero
// naming the right sequence number and kind — and 0 on an untouched trail.
func TestAuditVerifyCommand(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(tm *audittest.Tamperer, last int64) error
		seq    func(last int64) int64
		kind   audit.Kind
	}{
		{"modified", func(tm *audittest.Tamperer, last int64) error { return tm.Modify(last - 10) }, func(l int64) int64 { return l - 10 }, audit.Modified},
		{"deleted", func(tm *audittest.Tamperer, last int64) error { return tm.Delete(last - 10) }, func(l int64) int64 { return l - 10 }, audit.Deleted},
		{"inserted", func(tm *audittest.Tamperer, last int64) error { return tm.Insert(last - 10) }, func(l int64) int64 { return l - 10 }, audit.Inserted},
		{"reordered", func(tm *audittest.Tamperer, last int64) error { return tm.Swap(last - 10) }, func(l int64) int64 { return l - 10 }, audit.Reordered},
		{"truncated", func(tm *audittest.Tamperer, last int64) error { return tm.Truncate(last-3, true) }, func(l int64) int64 { return l - 3 }, audit.Truncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := initDir(t)
			last := addEvents(t, dir, 25)
			r := custos(t, nil, "", "audit", "verify", "--data", dir).mustOK(t)
			if !strings.Contains(r.stdout, "audit trail intact") {
				t.Fatalf("untouched trail: %s", r.stdout)
			}
			t.Logf("untouched: %s", strings.TrimSpace(r.stdout))
			tm, err := audittest.Open(dbPath(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.tamper(tm, last); err != nil {
				t.Fatal(err)
			}
			_ = tm.Close()
			r = custos(t, nil, "", "audit", "verify", "--data", dir)
			want := fmt.Sprintf("seq %d: %s:", c.seq(last), c.kind)
			if r.code == 0 || !strings.Contains(r.stderr, want) {
				t.Fatalf("after tampering (%s): exit %d, stdout %q, stderr %q; want non-zero and %q", c.name, r.code, r.stdout, r.stderr, want)
			}
			t.Logf("%s: exit %d: %s", c.name, r.code, strings.TrimSpace(r.stderr))
			// The JSON report names the same.
			r = custos(t, nil, "", "audit", "verify", "--data", dir, "--json")
			var rep audit.Report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Problem == nil || rep.Problem.Kind != c.kind {
				t.Fatalf("--json: %v %s", err, r.stdout)
			}
		})
	}
}

// TestAuditExportAndQuery exports the trail in each format and queries it.
func TestAuditExportAndQuery(t *testing.T) {
	dir := initDir(t)
	addEvents(t, dir, 5)
	for _, f := range audit.Formats {
		out := filepath.Join(t.TempDir(), "audit."+f)
		custos(t, nil, "", "audit", "export", "--data", dir, "--format", f, "--out", out).mustOK(t)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) < 5 {
			t.Fatalf("%s export: %d lines", f, len(lines))
		}
		var prefix string
		switch f {
		case audit.FormatJSONL:
			prefix = `{"seq":1,`
		case audit.FormatCEF:
			prefix = "CEF:0|Custos|Custos CRM|"
		case audit.FormatSyslog:
			prefix = "<110>1 " // facility 13 (log audit), informational
		}
		if !strings.HasPrefix(lines[0], prefix) {
			t.Fatalf("%s export starts %q, want %q", f, lines[0], prefix)
		}
	}
	r := custos(t, nil, "", "audit", "export", "--data", dir, "--format", "xml")
	if r.code == 0 || !strings.Contains(r.stderr, "unknown format") {
		t.Fatalf("bad format: exit %d %s", r.code, r.stderr)
	}
	r = custos(t, nil, "", "audit", "export", "--data", dir, "--since", "yesterday")
	if r.code == 0 || !strings.Contains(r.stderr, "--since") {
		t.Fatalf("bad time: exit %d %s", r.code, r.stderr)
	}
	r = custos(t, nil, "", "audit", "query", "--data", dir, "--customer-id", "c3").mustOK(t)
	var e audit.Entry
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &e); err != nil || e.ObjectID != "c3" {
		t.Fatalf("query by customer: %v %q", err, r.stdout)
	}
	// Exports and queries are audit events themselves.
	r = custos(t, nil, "", "audit", "query", "--data", dir, "--action", "audit.").mustOK(t)
	if !strings.Contains(r.stdout, `"action":"audit.export"`) || !strings.Contains(r.stdout, `"action":"audit.query"`) {
		t.Fatalf("audit.export and audit.query events missing: %s", r.stdout)
	}
	custos(t, nil, "", "audit", "verify", "--data", dir).mustOK(t)
	r = custos(t, nil, "", "audit", "pubkey", "--data", dir).mustOK(t)
	if !strings.HasPrefix(r.stdout, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("pubkey: %q", r.stdout)
	}
	// An auditor verifies a copy with only the public key.
	pub := filepath.Join(t.TempDir(), "audit.pub")
	if err := os.WriteFile(pub, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "audit", "signing.key")); err != nil {
		t.Fatal(err)
	}
	custos(t, nil, "", "audit", "verify", "--data", dir, "--pubkey", pub).mustOK(t)
	r = custos(t, nil, "", "audit", "verify", "--data", dir)
	if r.code == 0 || !strings.Contains(r.stderr, string(audit.BadCheckpoint)) {
		t.Fatalf("verify without any trusted key: exit %d %s", r.code, r.stderr)
	}
}

// TestAuditUnderKill9: the server is killed with SIGKILL at the moment a
// change has been made in its transaction but its event not yet appended,
// and at the moment both are written but not committed. Afterwards every
// acknowledged customer has its creation event, every creation event has its
// customer, nothing else exists, and the chain verifies.
func TestAuditUnderKill9(t *testing.T) {
	bin := buildFailpointBinary(t)
	for _, point := range []string{"audit.before_append", "audit.appended"} {
		t.Run(point, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			env := append(os.Environ(), "CUSTOS_ADMIN_EMAIL=root@example.com", "CUSTOS_ADMIN_PASSWORD=admin password 123")
			ini := exec.Command(bin, "init", "--data", dir)
			ini.Env = env
			if out, err := ini.CombinedOutput(); err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			c := exec.Command(bin, "token", "create", "--data", dir, "--user", "root@example.com", "--name", "t")
			c.Env = env
			tokOut, err := c.Output()
			if err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSpace(string(tokOut))
			addr := freeAddr(t)
			srv := exec.Command(bin, "serve", "--data", dir, "--addr", addr)
			// The 15th event appended by the server: a few creates in.
			srv.Env = append(env, "CUSTOS_FAILPOINT="+point+"@15")
			var logs bytes.Buffer
			srv.Stdout, srv.Stderr = &logs, &logs
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			base := "http://" + addr
			waitReady(t, base)
			var acked []string
			for i := range 100 {
				req, _ := http.NewRequest("POST", base+"/api/v1/customers", strings.NewReader(fmt.Sprintf(`{"name":"客户%d","phones":["1380013%04d"]}`, i, i)))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					break // killed
				}
				var body struct{ ID string }
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("create %d: %d", i, resp.StatusCode)
				}
				acked = append(acked, body.ID)
			}
			err = srv.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
				t.Fatalf("server was not killed by the failpoint: %v\n%s", err, logs.String())
			}
			if len(acked) == 0 || len(acked) >= 100 {
				t.Fatalf("%d creates acknowledged before the kill", len(acked))
			}
			ctx := context.Background()
			db, err := store.Open(ctx, filepath.Join(dir, "custos.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var customers []string
			created := map[string]bool{}
			err = db.Read(ctx, func(tx *store.Tx) error {
				evs, err := tx.QueryAudit(ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: "customer.create", Limit: 1000})
				for _, e := range evs {
					created[e.ObjectID] = true
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "custos.db")+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			rows, err := raw.Query(`SELECT id FROM customers`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				_ = rows.Scan(&id)
				customers = append(customers, id)
			}
			_ = rows.Close()
			for _, id := range acked {
				if !created[id] {
					t.Errorf("acknowledged customer %s has no creation event", id)
				}
			}
			for _, id := range customers {
				if !created[id] {
					t.Errorf("customer %s exists without its creation event", id)
				}
			}
			if len(created) != len(customers) || len(customers) != len(acked) {
				t.Errorf("%d acknowledged, %d customers stored, %d creation events: want all equal", len(acked), len(customers), len(created))
			}
			t.Logf("killed at %s after %d acknowledged creates: %d customers, %d creation events", point, len(acked), len(customers), len(created))
			out, err := exec.Command(bin, "audit", "verify", "--data", dir).CombinedOutput()
			if err != nil {
				t.Fatalf("verify after the kill: %v\n%s", err, out)
			}
		})
	}
}

// TestAuditHoldsNoPlaintext: a customer is created, changed, viewed,
// searched for by name, exported and revealed with a reason naming them;
// `grep -a` for their name, phones and email over a dump of the audit table,
// the database file and every export format finds nothing, while it does
// find the events themselves.
func TestAuditHoldsNoPlaintext(t *testing.T) {
	grep, err := exec.LookPath("grep")
	if err != nil {
		t.Fatal("grep is needed: ", err)
	}
	dir := initDir(t)
	custos(t, nil, "a very good password\n", "user", "add", "--data", dir, "--email", "support@example.com", "--role", "support", "--name", "Sup").mustOK(t)
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = dir
	n, err := node.Open(ctx, cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	op := operator()
	name, phone, phone2, email := "欧阳锋", "13912345678", "13987654321", "ouyang.feng@example.com"
	c, err := n.CRM.CreateCustomer(ctx, op, crm.CustomerFields{Name: &name, Phones: &[]string{phone}, Emails: &[]string{email}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = n.CRM.UpdateCustomer(ctx, op, c.ID, crm.CustomerFields{Phones: &[]string{phone2}}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := n.CRM.GetCustomer(ctx, op, c.ID); err != nil {
		t.Fatal(err)
	}
	if page, err := n.CRM.ListCustomers(ctx, op, crm.ListQuery{Q: name}); err != nil || len(page.Items) != 1 {
		t.Fatalf("search: %v %v", page, err)
	}
	if _, err := n.CRM.ExportCustomers(ctx, op, crm.ListQuery{Q: phone2}, func(crm.Customer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// Support sees phones masked and reveals one, with a reason.
	u, err := n.Auth.FindUserByEmail(ctx, "support@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sup, err := n.CRM.Principal(ctx, access.Subject{UserID: u.ID, Actor: "user:" + u.ID, Role: u.Role})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.CRM.RevealField(ctx, sup, c.ID, "phone", "call back "+name+" at "+phone2); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	files := []string{cfg.DatabaseDSN()}
	for _, f := range audit.Formats {
		p := filepath.Join(out, "export."+f)
		custos(t, nil, "", "audit", "export", "--data", dir, "--format", f, "--out", p).mustOK(t)
		files = append(files, p)
	}
	// The audit table, every column of every row, as text.
	raw, err := sql.Open("sqlite", "file:"+cfg.DatabaseDSN()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := raw.Query(`SELECT seq, at, actor, ip, user_agent, action, object_type, object_id, outcome, reason, request_id, details, hex(prev_hash), hex(hash) FROM audit_events`)
	if err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	for rows.Next() {
		var cols [14]sql.NullString
		ptrs := make([]any, len(cols))
		for i := range cols {
			ptrs[i] = &cols[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			dump.WriteString(c.String + "\t")
		}
		dump.WriteString("\n")
	}
	_ = rows.Close()
	_ = raw.Close()
	tableDump := filepath.Join(out, "audit_events.tsv")
	if err := os.WriteFile(tableDump, dump.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	files = append(files, tableDump)
	for _, needle := range []string{name, phone, phone2, email, "ouyang"} {
		cmd := exec.Command(grep, append([]string{"-a", "-l", "-F", needle}, files...)...)
		res, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("grep -a %q found it in: %s (%v)", needle, res, err)
		}
	}
	// Not vacuous: the events are there, and their ids.
	for _, needle := range []string{"customer.update", "customer.reveal", c.ID} {
		if err := exec.Command(grep, append([]string{"-a", "-q", "-F", needle}, tableDump, files[1])...).Run(); err != nil {
			t.Errorf("grep -a %q found nothing: the dump or export is empty", needle)
		}
	}
	t.Logf("grep -a for name, phones and email over %d files (audit table dump, database, jsonl, cef, syslog exports): no match", len(files))
}

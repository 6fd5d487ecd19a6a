package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Thresholds set with `custos config set`, detectors run by `custos alerts
// scan`, and the alert workflow through `custos alerts`: list, show, ack,
// resolve (note from stdin), each with clear one-line errors.
func TestAlertsCommands(t *testing.T) {
	dir := initDir(t)
	custos(t, nil, "a very good password\n", "user", "add", "--data", dir, "--email", "li@example.com", "--role", "sales", "--name", "Li").mustOK(t)
	custos(t, nil, "", "config", "set", "--data", dir, "monitor.denials_per_hour", "3").mustOK(t)
	if r := custos(t, nil, "", "config", "set", "--data", dir, "monitor.denials_per_hour", "many"); r.code == 0 || !strings.Contains(r.stderr, "monitor.denials_per_hour: must be a number") {
		t.Fatalf("bad threshold: exit %d %s", r.code, r.stderr)
	}
	if r := custos(t, nil, "", "config", "set", "--data", dir, "monitor.work_hours", "25:00-07:00"); r.code == 0 || !strings.Contains(r.stderr, "HH:MM-HH:MM") {
		t.Fatalf("bad hours: exit %d %s", r.code, r.stderr)
	}
	custos(t, nil, "", "alerts", "scan", "--data", dir).mustOK(t) // the cursor starts here
	// A sales rep is refused three times: exporting and reading alerts.
	for i := 0; i < 2; i++ {
		if r := custos(t, nil, "", "export", "customers", "--data", dir, "--as", "li@example.com"); r.code == 0 {
			t.Fatal("a sales rep exported")
		}
	}
	scan := custos(t, nil, "", "alerts", "scan", "--data", dir).mustOK(t).stdout
	t.Logf("scan: %s", strings.TrimSpace(scan))
	list := func(args ...string) (page struct {
		Items []struct {
			ID, Rule, Severity, Status string
			ActorID                    string `json:"actor_id"`
		}
		Next string
	}) {
		t.Helper()
		out := custos(t, nil, "", append([]string{"alerts", "list", "--data", dir, "--json"}, args...)...).mustOK(t).stdout
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return page
	}
	probing := list("--rule", "access.probing")
	if len(probing.Items) == 0 {
		// Two export refusals are below the threshold of 3: one more.
		if r := custos(t, nil, "", "export", "customers", "--data", dir, "--as", "li@example.com"); r.code == 0 {
			t.Fatal("a sales rep exported")
		}
		custos(t, nil, "", "alerts", "scan", "--data", dir).mustOK(t)
		probing = list("--rule", "access.probing")
	}
	if len(probing.Items) != 1 || probing.Items[0].Status != "open" || probing.Items[0].ActorID == "" {
		t.Fatalf("probing alerts: %+v", probing.Items)
	}
	id := probing.Items[0].ID
	table := custos(t, nil, "", "alerts", "list", "--data", dir, "--status", "open").mustOK(t).stdout
	if !strings.Contains(table, id) || !strings.Contains(table, "access.probing") {
		t.Fatalf("alerts list:\n%s", table)
	}
	if r := custos(t, nil, "", "alerts", "list", "--data", dir, "--status", "closed"); r.code == 0 || !strings.Contains(r.stderr, "status: must be one of open, acknowledged, resolved") {
		t.Fatalf("bad status: exit %d %s", r.code, r.stderr)
	}
	custos(t, nil, "", "alerts", "ack", "--data", dir, id).mustOK(t)
	if r := custos(t, nil, "", "alerts", "ack", "--data", dir, id); r.code == 0 || !strings.Contains(r.stderr, "acknowledged") {
		t.Fatalf("second ack: exit %d %s", r.code, r.stderr)
	}
	if r := custos(t, nil, "", "alerts", "resolve", "--data", dir, id); r.code == 0 || !strings.Contains(r.stderr, "note: is required") {
		t.Fatalf("resolve without a note: exit %d %s", r.code, r.stderr)
	}
	custos(t, nil, "checked with Li's manager: wrong role, fixed\n", "alerts", "resolve", "--data", dir, id, "--note-file", "-").mustOK(t)
	show := custos(t, nil, "", "alerts", "show", "--data", dir, id).mustOK(t).stdout
	for _, want := range []string{`"status": "resolved"`, `"note": "checked with Li's manager: wrong role, fixed"`, `"resolved_by": "cli:`} {
		if !strings.Contains(show, want) {
			t.Fatalf("alerts show lacks %s:\n%s", want, show)
		}
	}
	if r := custos(t, nil, "", "alerts", "show", "--data", dir, "not-an-id"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("show bad id: exit %d %s", r.code, r.stderr)
	}
	if got := list("--status", "resolved"); len(got.Items) != 1 || got.Items[0].ID != id {
		t.Fatalf("resolved: %+v", got.Items)
	}
	// The workflow is on record, without the note's text.
	q := custos(t, nil, "", "audit", "query", "--data", dir, "--action", "alert.").mustOK(t).stdout
	for _, want := range []string{"alert.ack", "alert.resolve", "alert.list", "alert.view", "alert.raise"} {
		if !strings.Contains(q, want) {
			t.Fatalf("audit lacks %s:\n%s", want, q)
		}
	}
	if strings.Contains(q, "wrong role") {
		t.Fatal("the note's text is in the audit trail")
	}
	// Loosening a defence raises an alert; tightening one does not (the
	// threshold of 3 above was a tightening).
	if got := list("--rule", "monitor.defence_weakened"); len(got.Items) != 0 {
		t.Fatalf("tightening raised %+v", got.Items)
	}
	for _, kv := range [][2]string{{"monitor.views_suspend_per_hour", "5000"}, {"export.approval_rows", "0"}, {"monitor.new_ip", "off"}, {"export.approval_rows", "300"}} {
		custos(t, nil, "", "config", "set", "--data", dir, kv[0], kv[1]).mustOK(t)
	}
	if got := list("--rule", "monitor.defence_weakened"); len(got.Items) != 3 {
		t.Fatalf("loosening three defences (and tightening one): %+v", got.Items)
	}
}

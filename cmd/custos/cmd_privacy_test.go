package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
)

// custos privacy erase and ledger: --yes or a terminal, one-line errors,
// the customer gone from every read, the ledger with ids and times only.
func TestPrivacyCommands(t *testing.T) {
	dir := initDir(t)
	custos(t, nil, "a very good password\n", "user", "add", "--data", dir, "--email", "mgr@example.com", "--role", "manager", "--name", "Manager Qian").mustOK(t)
	cfg := config.Default()
	cfg.DataDir = dir
	n := openNode(t, cfg)
	var ids []string
	for _, name := range []string{"郑删除贸易", "Keep Ltd"} {
		c, err := n.CRM.CreateCustomer(context.Background(), access.Operator("test"), crm.CustomerFields{Name: &name, Phones: &[]string{"13755550123"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	n.Close()
	id := ids[0]

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no confirmation off a terminal", []string{"--customer", id}, 2, "--yes"},
		{"no customer", []string{"--yes"}, 2, "--customer ID is required"},
		{"a name for an id", []string{"--customer", "郑删除贸易", "--yes"}, 2, "must be a customer id"},
		{"unknown id", []string{"--customer", "0190d5c4-0000-7000-8000-000000000000", "--yes"}, 1, "no customer 0190d5c4-0000-7000-8000-000000000000"},
		{"a user without erase", []string{"--customer", id, "--yes", "--as", "mgr@example.com"}, 1, `lacks "erase"`},
		{"an unknown user", []string{"--customer", id, "--yes", "--as", "ghost@example.com"}, 1, "no user"},
		{"a positional argument", []string{id, "--yes"}, 2, "takes 0 argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := custos(t, nil, "", append([]string{"privacy", "erase", "--data", dir}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and one line with %q", r.code, r.stdout, r.stderr, tc.code, tc.want)
			}
			if strings.Contains(r.stderr, "郑删除") {
				t.Fatalf("the error echoes the input: %q", r.stderr)
			}
		})
	}
	if out := custos(t, nil, "", "privacy", "ledger", "--data", dir).mustOK(t).stdout; strings.TrimSpace(out) != "CUSTOMER  ERASED AT" {
		t.Fatalf("ledger before any erasure: %q", out)
	}

	r := custos(t, nil, "", "privacy", "erase", "--data", dir, "--customer", id, "--yes").mustOK(t)
	if r.stdout != "erased "+id+"\n" {
		t.Fatalf("erase: %q %q", r.stdout, r.stderr)
	}
	if r := custos(t, nil, "", "privacy", "erase", "--data", dir, "--customer", id, "--yes"); r.code != 1 || !strings.Contains(r.stderr, "already erased") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("erasing twice: %d %q", r.code, r.stderr)
	}
	// Gone from the export; the other customer stays.
	if out := custos(t, nil, "", "export", "customers", "--data", dir).mustOK(t).stdout; strings.Contains(out, "郑删除贸易") || !strings.Contains(out, "Keep Ltd") {
		t.Fatalf("export after erasure:\n%s", out)
	}

	out := custos(t, nil, "", "privacy", "ledger", "--data", dir).mustOK(t).stdout
	if !strings.Contains(out, id) || strings.Contains(out, ids[1]) || strings.Contains(out, "cli:") {
		t.Fatalf("ledger:\n%s", out)
	}
	js := custos(t, nil, "", "privacy", "ledger", "--data", dir, "--json").mustOK(t).stdout
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(js), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0]["customer_id"] != id || page.Items[0]["erased_at"] == "" || len(page.Items[0]) != 2 {
		t.Fatalf("ledger --json: %s", js)
	}

	// Both the erasure and the ledger reads are in the audit trail.
	q := custos(t, nil, "", "audit", "query", "--data", dir, "--action", "customer.erase").mustOK(t).stdout
	if !strings.Contains(q, id) {
		t.Fatalf("audit query for customer.erase:\n%s", q)
	}
}

package main

import (
	"strings"
	"testing"
)

// The access administration commands: roles, settings, grants, role
// changes, offboarding to the pool and the posture check, with one-line
// errors for bad input that change nothing.
func TestAccessCommands(t *testing.T) {
	dir := initDir(t)
	for _, u := range []struct{ email, role string }{{"li@example.com", "sales"}, {"han@example.com", "sales"}} {
		custos(t, nil, "a very good password\n", "user", "add", "--data", dir, "--email", u.email, "--role", u.role, "--name", "X").mustOK(t)
	}
	out := custos(t, nil, "", "role", "list", "--data", dir).mustOK(t).stdout
	for _, want := range []string{"admin", "security_officer", "auditor", "sales_director", "manager", "sales", "support", "finance", "phone,email"} {
		if !strings.Contains(out, want) {
			t.Fatalf("role list lacks %q:\n%s", want, out)
		}
	}
	custos(t, nil, "", "role", "create", "--data", dir, "manager_east", "--from", "manager", "--label", "East").mustOK(t)
	custos(t, nil, "", "role", "create", "--data", dir, "sales_east", "--from", "sales", "--parent", "manager_east",
		"--field", "phone=masked", "--reveal-quota", "5").mustOK(t)
	show := custos(t, nil, "", "role", "show", "--data", dir, "sales_east").mustOK(t).stdout
	for _, want := range []string{`"parent": "manager_east"`, `"phone": "masked"`, `"reveal_quota": 5`} {
		if !strings.Contains(show, want) {
			t.Fatalf("role show lacks %s:\n%s", want, show)
		}
	}
	if east := custos(t, nil, "", "role", "show", "--data", dir, "manager_east").mustOK(t).stdout; !strings.Contains(east, `"below": [
    "sales_east"
  ]`) {
		t.Fatalf("manager_east below:\n%s", east)
	}
	custos(t, nil, "", "user", "set-role", "--data", dir, "--email", "li@example.com", "--role", "sales_east").mustOK(t)
	if list := custos(t, nil, "", "user", "list", "--data", dir).mustOK(t).stdout; !strings.Contains(list, "sales_east") {
		t.Fatalf("user list after set-role:\n%s", list)
	}
	custos(t, nil, "", "role", "policy", "--data", dir, "sales_east", "--mfa", "on", "--hours", "08:00-20:00 Asia/Shanghai").mustOK(t)
	custos(t, nil, "", "config", "set", "--data", dir, "pool.return_days.A", "90").mustOK(t)
	if v := custos(t, nil, "", "config", "get", "--data", dir, "pool.return_days.a").mustOK(t).stdout; strings.TrimSpace(v) != "90" {
		t.Fatalf("config get = %q", v)
	}
	if d := custos(t, nil, "", "doctor", "--data", dir).mustOK(t).stdout; !strings.Contains(d, "[warn] strict_separation") {
		t.Fatalf("doctor with separation off:\n%s", d)
	}
	custos(t, nil, "", "config", "set", "--data", dir, "strict_separation", "on").mustOK(t)
	if d := custos(t, nil, "", "doctor", "--data", dir).mustOK(t).stdout; !strings.Contains(d, "[ok] strict_separation") {
		t.Fatalf("doctor with separation on:\n%s", d)
	}
	custos(t, nil, "", "grant", "add", "--data", dir, "--user", "han@example.com", "--perm", "export", "--reason", "quarterly report", "--ttl", "2h").mustOK(t)
	if g := custos(t, nil, "", "grant", "list", "--data", dir).mustOK(t).stdout; !strings.Contains(g, "export") || !strings.Contains(g, "true") {
		t.Fatalf("grant list:\n%s", g)
	}
	off := custos(t, nil, "", "user", "offboard", "--data", dir, "li@example.com", "--to-pool").mustOK(t).stdout
	if !strings.Contains(off, "0 customers to the public pool") {
		t.Fatalf("offboard: %s", off)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"cycle", []string{"role", "update", "--data", dir, "manager_east", "--parent", "sales_east"}, "cycle"},
		{"unknown permission", []string{"role", "create", "--data", dir, "x_role", "--perms", "read fly"}, "unknown permission"},
		{"bad field", []string{"role", "update", "--data", dir, "sales_east", "--field", "salary=read"}, "known field"},
		{"bad field syntax", []string{"role", "update", "--data", dir, "sales_east", "--field", "phone"}, "FIELD=LEVEL"},
		{"held role", []string{"role", "delete", "--data", dir, "sales"}, "held by"},
		{"unknown setting", []string{"config", "set", "--data", dir, "colour", "red"}, "unknown setting"},
		{"bad value", []string{"config", "set", "--data", dir, "strict_separation", "maybe"}, "on or off"},
		{"unknown role", []string{"user", "set-role", "--data", dir, "--email", "han@example.com", "--role", "ceo"}, "no such role"},
		{"offboard twice a destination", []string{"user", "offboard", "--data", dir, "han@example.com", "--to", "li@example.com", "--to-pool"}, "exactly one"},
		{"grant without reason", []string{"grant", "add", "--data", dir, "--user", "han@example.com", "--perm", "export", "--reason", " "}, "reason"},
		{"grant too long", []string{"grant", "add", "--data", dir, "--user", "han@example.com", "--perm", "export", "--reason", "r", "--ttl", "2400h"}, "90 days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := custos(t, nil, "", tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Fatalf("exit %d stderr %q, want one line with %q", r.code, r.stderr, tc.want)
			}
		})
	}
	// The refused cycle changed nothing.
	if east := custos(t, nil, "", "role", "show", "--data", dir, "manager_east").mustOK(t).stdout; !strings.Contains(east, `"parent": "sales_director"`) {
		t.Fatalf("manager_east after a refused update:\n%s", east)
	}
}

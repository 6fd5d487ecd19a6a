package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos/internal/miniotest"
)

func digestOf(t *testing.T, dir string) string {
	t.Helper()
	r := custos(t, nil, "", "backup", "hash", "--data", dir, "--json").mustOK(t)
	var d struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Digest) != 64 {
		t.Fatalf("backup hash --json: %q (%v)", r.stdout, err)
	}
	return d.Digest
}

// The commands and flags that operators' scripts rely on, end to end, to
// a real S3 server (MinIO on loopback) and a local directory at once.
func TestBackupCommands(t *testing.T) {
	dir := initDir(t)
	env := map[string]string{"CUSTOS_DEMO_PASSWORD": "demo password 123", "CUSTOS_KIT_PASSPHRASE": "kit passphrase 1234"}
	custos(t, env, "", "demo", "--data", dir, "--customers", "30").mustOK(t)
	m := miniotest.Start(t)
	m.Setenv(t)
	s3 := m.URL(m.Bucket(t), "crm/")
	local := "file://" + filepath.Join(t.TempDir(), "backups")
	kit := filepath.Join(t.TempDir(), "custos.kit")

	custos(t, env, "", "backup", "kit", "--data", dir, "--out", kit).mustOK(t)
	if r := custos(t, env, "", "backup", "kit", "--data", dir, "--out", kit+"2"); r.code == 0 || !strings.Contains(r.stderr, "already exported") {
		t.Fatalf("a second kit export: exit %d, %s", r.code, r.stderr)
	}

	h0 := digestOf(t, dir)
	full := strings.TrimSpace(custos(t, nil, "", "backup", "create", "--data", dir, "--full", "--to", local, "--to", s3).mustOK(t).stdout)
	if strings.Count(full, "\n") != 0 || !strings.Contains(full, "-full-") {
		t.Fatalf("backup create printed %q, want the id alone", full)
	}
	custos(t, env, "", "demo", "--data", dir, "--customers", "5", "--seed", "2").mustOK(t)
	h1 := digestOf(t, dir)
	inc := strings.TrimSpace(custos(t, nil, "", "backup", "create", "--data", dir, "--incremental", "--to", local, "--to", s3).mustOK(t).stdout)

	for _, from := range []string{local, s3} {
		custos(t, nil, "", "backup", "verify", "--data", dir, "--from", from, "--id", inc).mustOK(t)
		custos(t, nil, "", "backup", "verify", "--data", dir, "--from", from).mustOK(t)
		list := custos(t, nil, "", "backup", "list", "--data", dir, "--from", from).mustOK(t).stdout
		if !strings.Contains(list, full) || !strings.Contains(list, inc) {
			t.Fatalf("backup list at %s:\n%s", from, list)
		}
	}

	// Restore from S3 with the recovery kit, from the directory with the
	// root key: the digests are the source's at each backup, and serve starts.
	r1 := filepath.Join(t.TempDir(), "r1")
	out := custos(t, env, "", "restore", "--from", s3, "--id", inc, "--data", r1, "--kit", kit).mustOK(t).stdout
	if !strings.Contains(out, h1) {
		t.Fatalf("restore of %s printed\n%s\nwant digest %s", inc, out, h1)
	}
	r0 := filepath.Join(t.TempDir(), "r0")
	out = custos(t, map[string]string{"CUSTOS_ROOT_KEY_FILE": filepath.Join(dir, "root.key")}, "", "restore", "--from", local, "--id", full, "--data", r0).mustOK(t).stdout
	if !strings.Contains(out, h0) {
		t.Fatalf("restore of %s printed\n%s\nwant digest %s", full, out, h0)
	}
	servingDir(t, r1, nil)

	// Bad input: a one-line error, nothing written.
	notEmpty := t.TempDir()
	must(t, os.WriteFile(filepath.Join(notEmpty, "x"), []byte("x"), 0o600))
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"backup", "create", "--data", dir, "--to", local}, nil, "exactly one of --full"},
		{[]string{"backup", "create", "--data", dir, "--full", "--incremental", "--to", local}, nil, "exactly one of --full"},
		{[]string{"backup", "create", "--data", dir, "--full"}, nil, "give a destination"},
		{[]string{"backup", "create", "--data", dir, "--full", "--to", "ftp://x"}, nil, "unsupported backup destination"},
		{[]string{"backup", "create", "--data", dir, "--full", "--to", "file://relative/dir"}, nil, "absolute"},
		{[]string{"backup", "verify", "--data", dir, "--from", local, "--id", "../../etc"}, nil, "not a backup id"},
		{[]string{"restore", "--from", local, "--data", notEmpty, "--kit", kit}, env, "not empty"},
		{[]string{"restore", "--from", local, "--data", filepath.Join(t.TempDir(), "n"), "--kit", kit}, map[string]string{"CUSTOS_KIT_PASSPHRASE": "wrong passphrase 123"}, "passphrase"},
		{[]string{"restore", "--from", local, "--data", filepath.Join(t.TempDir(), "n")}, nil, "root key"},
		{[]string{"restore", "--from", local, "--data", filepath.Join(t.TempDir(), "n"), "--root-key", filepath.Join(dir, "root.key"), "--at", "yesterday"}, nil, "--at"},
	} {
		r := custos(t, c.env, "", c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("custos %s: exit %d, stderr %q; want a one-line error with %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	if entries, _ := os.ReadDir(notEmpty); len(entries) != 1 {
		t.Fatalf("a refused restore wrote into %s", notEmpty)
	}
}

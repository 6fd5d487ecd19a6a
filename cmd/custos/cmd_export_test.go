package main

import (
	"bytes"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/xuri/excelize/v2"

	"github.com/custos/custos/internal/exportfile"
)

const cliExportPW = "juniper-kettle 2026"

func decryptFile(t *testing.T, path string, id age.Identity) (string, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(bytes.NewReader(b), id)
	if err != nil {
		return "", err
	}
	out, err := io.ReadAll(r)
	return string(out), err
}

// The export commands: a large direct export is refused with a pointer to
// export request; a request waits for a second person; the file opens only
// with its key and names requester and approver; bad input is one line.
func TestExportRequestCommands(t *testing.T) {
	dir := initDir(t)
	exportfile.UseCheapScryptForTests(t)
	tmp := t.TempDir()
	csvPath := filepath.Join(tmp, "in.csv")
	for _, u := range []struct{ email, role, name string }{{"officer@example.com", "security_officer", "Officer Wu"}, {"mgr@example.com", "manager", "Manager Qian"}} {
		custos(t, nil, "a very good password\n", "user", "add", "--data", dir, "--email", u.email, "--role", u.role, "--name", u.name).mustOK(t)
	}
	if err := os.WriteFile(csvPath, []byte("name,phone,id_number,owner\n赵秘密工贸,13698765432,11010519491231002X,mgr@example.com\nAcme,,,mgr@example.com\nGlobex,,,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	custos(t, nil, "", "import", "customers", "--data", dir, csvPath).mustOK(t)
	custos(t, nil, "", "config", "set", "--data", dir, "export.approval_rows", "2").mustOK(t)

	// Three rows are over the threshold: refused, nothing written.
	r := custos(t, nil, "", "export", "customers", "--data", dir)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "custos export request") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("direct export: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Under it, the direct export works as before.
	if out := custos(t, nil, "", "export", "customers", "--data", dir, "--q", "Acme").mustOK(t).stdout; !strings.Contains(out, "Acme") {
		t.Fatalf("small export: %q", out)
	}

	// The operator requests with the password on standard input.
	r = custos(t, nil, cliExportPW+"\n", "export", "request", "--data", dir, "--password-stdin").mustOK(t)
	id := strings.TrimSpace(r.stdout)
	if len(id) != 36 || !strings.Contains(r.stderr, "pending (3 rows)") || strings.Contains(r.stdout+r.stderr, cliExportPW) {
		t.Fatalf("request: %q %q", r.stdout, r.stderr)
	}
	if r := custos(t, nil, "", "export", "approve", "--data", dir, id); r.code != 1 || !strings.Contains(r.stderr, "your own export request") {
		t.Fatalf("self-approval: %d %q", r.code, r.stderr)
	}
	if r := custos(t, nil, "", "export", "approve", "--data", dir, id, "--as", "mgr@example.com"); r.code != 1 || !strings.Contains(r.stderr, "approve_export") {
		t.Fatalf("approval by a manager: %d %q", r.code, r.stderr)
	}
	list := custos(t, nil, "", "export", "list", "--data", dir, "--as", "officer@example.com", "--status", "pending").mustOK(t).stdout
	if !strings.Contains(list, id) || !strings.Contains(list, "pending") || strings.Contains(list, "赵秘密") {
		t.Fatalf("approval queue:\n%s", list)
	}
	if out := custos(t, nil, "", "export", "approve", "--data", dir, id, "--as", "officer@example.com").mustOK(t).stdout; !strings.Contains(out, "approved "+id+": 3 rows") {
		t.Fatalf("approve: %q", out)
	}
	file := filepath.Join(tmp, "export.csv.age")
	if r := custos(t, nil, "", "export", "download", "--data", dir, id, "--out", file, "--as", "officer@example.com"); r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("download by the approver: %d %q", r.code, r.stderr)
	}
	custos(t, nil, "", "export", "download", "--data", dir, id, "--out", file).mustOK(t)
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("downloaded file: %v %v", st, err)
	}
	if _, err := decryptFile(t, file, must(age.NewScryptIdentity("wrong password here"))); err == nil {
		t.Fatal("a wrong password opened the file")
	}
	plain, err := decryptFile(t, file, must(age.NewScryptIdentity(cliExportPW)))
	if err != nil {
		t.Fatal(err)
	}
	me, _ := user.Current()
	if !strings.HasPrefix(plain, "\ufeff# Custos export "+id+" · requested by cli:"+me.Username+" · approved by Officer Wu <officer@example.com> · ") ||
		!strings.Contains(plain, "赵秘密工贸") {
		t.Fatalf("file:\n%s", plain)
	}
	if r := custos(t, nil, "", "export", "download", "--data", dir, id, "--out", file); r.code != 1 || !strings.Contains(r.stderr, "must not exist") {
		t.Fatalf("download over a file: %d %q", r.code, r.stderr)
	}

	// A manager reveals a masked field into an XLSX for an age recipient.
	ident, _ := age.GenerateX25519Identity()
	r = custos(t, nil, "", "export", "request", "--data", dir, "--as", "mgr@example.com", "--q", "赵秘密", "--format", "xlsx",
		"--reveal", "id_number", "--recipient", ident.Recipient().String()).mustOK(t)
	rid := strings.TrimSpace(r.stdout)
	if !strings.Contains(r.stderr, "pending (1 rows, revealing id_number)") {
		t.Fatalf("revealing request: %q", r.stderr)
	}
	custos(t, nil, "", "export", "approve", "--data", dir, rid).mustOK(t) // the operator is not the manager
	xfile := filepath.Join(tmp, "export.xlsx.age")
	custos(t, nil, "", "export", "download", "--data", dir, rid, "--out", xfile, "--as", "mgr@example.com").mustOK(t)
	xl, err := decryptFile(t, xfile, ident)
	if err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(strings.NewReader(xl))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	hf, _ := x.GetHeaderFooter(exportfile.SheetName)
	rows, _ := x.GetRows(exportfile.SheetName)
	if hf == nil || !strings.Contains(hf.OddHeader, "requested by Manager Qian <mgr@example.com> · approved by cli:"+me.Username) ||
		len(rows) != 3 || rows[2][5] != "11010519491231002X" {
		t.Fatalf("xlsx header %+v rows %q", hf, rows)
	}

	// The key from a file or the environment; a pending request rejected.
	pwFile := filepath.Join(tmp, "pw")
	if err := os.WriteFile(pwFile, []byte(cliExportPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := strings.TrimSpace(custos(t, nil, "", "export", "request", "--data", dir, "--password-file", pwFile).mustOK(t).stdout)
	b := strings.TrimSpace(custos(t, map[string]string{"CUSTOS_EXPORT_PASSWORD": cliExportPW}, "", "export", "request", "--data", dir, "--format", "xlsx").mustOK(t).stdout)
	if out := custos(t, nil, "", "export", "reject", "--data", dir, a, "--as", "officer@example.com").mustOK(t).stdout; strings.TrimSpace(out) != "rejected "+a {
		t.Fatalf("reject: %q", out)
	}
	if out := custos(t, nil, "", "export", "cancel", "--data", dir, b).mustOK(t).stdout; strings.TrimSpace(out) != "cancelled "+b {
		t.Fatalf("cancel: %q", out)
	}
	all := custos(t, nil, "", "export", "list", "--data", dir).mustOK(t).stdout
	for _, want := range []string{id + "  approved", a + "  rejected", b + "  cancelled"} {
		if !strings.Contains(all, want) {
			t.Errorf("list lacks %q:\n%s", want, all)
		}
	}

	// Bad input: one line, exit 1 or 2, nothing echoed.
	for _, tc := range []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no key", nil, "", []string{"export", "request", "--data", dir}, 2, "give the file's key"},
		{"two keys", map[string]string{"CUSTOS_EXPORT_PASSWORD": cliExportPW}, "", []string{"export", "request", "--data", dir, "--recipient", ident.Recipient().String()}, 2, "one key only"},
		{"password on argv", nil, "", []string{"export", "request", "--data", dir, "--password", cliExportPW}, 2, "unknown flag"},
		{"weak password", nil, "secret\n", []string{"export", "request", "--data", dir, "--password-stdin"}, 1, "12 characters"},
		{"empty stdin", nil, "", []string{"export", "request", "--data", dir, "--password-stdin"}, 1, "no export password on standard input"},
		{"missing password file", nil, "", []string{"export", "request", "--data", dir, "--password-file", filepath.Join(tmp, "nope")}, 1, "password file"},
		{"bad recipient", nil, "", []string{"export", "request", "--data", dir, "--recipient", "age1nope"}, 1, "age_recipient"},
		{"bad format", nil, cliExportPW + "\n", []string{"export", "request", "--data", dir, "--format", "pdf", "--password-stdin"}, 1, "csv or xlsx"},
		{"bad reveal", nil, cliExportPW + "\n", []string{"export", "request", "--data", dir, "--reveal", "salary", "--password-stdin"}, 1, "reveal"},
		{"unknown request", nil, "", []string{"export", "approve", "--data", dir, "0190d5c4-0000-7000-8000-000000000001", "--as", "officer@example.com"}, 1, "not found"},
		{"malformed id", nil, "", []string{"export", "download", "--data", dir, "nope", "--out", filepath.Join(tmp, "x")}, 1, "not found"},
		{"download without --out", nil, "", []string{"export", "download", "--data", dir, id}, 2, "--out"},
		{"approve twice", nil, "", []string{"export", "approve", "--data", dir, id, "--as", "officer@example.com"}, 1, "approved, not pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := custos(t, tc.env, tc.stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Fatalf("exit %d stderr %q, want %d and one line with %q", r.code, r.stderr, tc.code, tc.want)
			}
			if strings.Contains(r.stdout+r.stderr, cliExportPW) || strings.Contains(r.stderr, `"secret"`) {
				t.Fatalf("the password was echoed: %q %q", r.stdout, r.stderr)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

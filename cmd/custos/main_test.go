package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// custos runs the CLI in-process with the given environment and stdin.
func custos(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, lookup)
	code := exitCode(err, &errb)
	return result{code, out.String(), errb.String()}
}

func (r result) mustOK(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

var adminEnv = map[string]string{"CUSTOS_ADMIN_EMAIL": "root@example.com", "CUSTOS_ADMIN_PASSWORD": "admin password 123"}

func initDir(t *testing.T) string {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	dir := filepath.Join(t.TempDir(), "data")
	custos(t, adminEnv, "", "init", "--data", dir).mustOK(t)
	return dir
}

func TestInitCreatesKeyAndAdmin(t *testing.T) {
	auth.UseCheapHashingForTests(t)
	dir := filepath.Join(t.TempDir(), "data")
	r := custos(t, nil, "", "init", "--data", dir).mustOK(t)
	r1 := r
	if !strings.Contains(r.stdout, "admin@custos.local") || !strings.Contains(r.stdout, "One-time password:") {
		t.Fatalf("init output: %s", r.stdout)
	}
	for _, f := range []string{"root.key", "custos.db"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, st.Mode())
		}
	}
	key, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	// Again: nothing changes, no password printed, same key.
	r = custos(t, nil, "", "init", "--data", dir).mustOK(t)
	if !strings.Contains(r.stdout, "already initialized") || strings.Contains(r.stdout, "password:") {
		t.Fatalf("second init: %s", r.stdout)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "root.key")); !bytes.Equal(key, again) {
		t.Fatal("root key changed")
	}
	// The generated password logs in.
	var pw string
	for _, l := range strings.Split(r1.stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "One-time password:"); ok {
			pw = strings.TrimSpace(v)
		}
	}
	n, err := node.Open(context.Background(), config.Config{DataDir: dir, LogLevel: "info", KeyCacheSize: 10}, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.Auth.Login(context.Background(), audit.Event{Actor: "anonymous"}, "admin@custos.local", pw); err != nil || len(pw) != 20 {
		t.Fatalf("generated password %d chars: %v", len(pw), err)
	}
}

func TestMissingOrWrongKeyRefuses(t *testing.T) {
	dir := initDir(t)
	keyFile := filepath.Join(dir, "root.key")
	key, _ := os.ReadFile(keyFile)
	// Missing key: refuse, and never create a new one.
	if err := os.Rename(keyFile, keyFile+".bak"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, {"init", "--data", dir}, {"user", "list", "--data", dir}} {
		r := custos(t, nil, "", args...)
		if r.code == 0 || !strings.Contains(r.stderr, "root key") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Fatalf("%v with missing key: exit %d, stderr %q", args[0], r.code, r.stderr)
		}
		if _, err := os.Stat(keyFile); err == nil {
			t.Fatalf("%v created a new root key over existing data", args[0])
		}
	}
	// Wrong key: a valid key file of another installation.
	other := initDir(t)
	otherKey, _ := os.ReadFile(filepath.Join(other, "root.key"))
	if err := os.WriteFile(keyFile, otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	r := custos(t, nil, "", "user", "list", "--data", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "does not belong to the database") {
		t.Fatalf("wrong key: %d %q", r.code, r.stderr)
	}
	// Key readable by others: refused.
	_ = os.WriteFile(keyFile, key, 0o644)
	_ = os.Chmod(keyFile, 0o644)
	if r := custos(t, nil, "", "user", "list", "--data", dir); r.code == 0 || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("world-readable key: %d %q", r.code, r.stderr)
	}
	_ = os.Chmod(keyFile, 0o600)
	custos(t, nil, "", "user", "list", "--data", dir).mustOK(t)
	// Uninitialized directory: clear message.
	if r := custos(t, nil, "", "user", "list", "--data", filepath.Join(t.TempDir(), "none")); r.code == 0 || !strings.Contains(r.stderr, "custos init") {
		t.Fatalf("no data dir: %q", r.stderr)
	}
}

func TestUsersAndTokens(t *testing.T) {
	dir := initDir(t)
	custos(t, nil, "a very good password\n", "user", "add", "--data", dir, "--email", "li@example.com", "--role", "sales", "--name", "李雷").mustOK(t)
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no password on stdin", "", []string{"user", "add", "--data", dir, "--email", "x@example.com", "--role", "sales", "--name", "X"}, "no password on standard input"},
		{"weak password", "short\n", []string{"user", "add", "--data", dir, "--email", "x@example.com", "--role", "sales", "--name", "X"}, "at least 12"},
		{"duplicate", "a very good password\n", []string{"user", "add", "--data", dir, "--email", "LI@example.com", "--role", "sales", "--name", "X"}, "already exists"},
		{"unknown role", "a very good password\n", []string{"user", "add", "--data", dir, "--email", "y@example.com", "--role", "ceo", "--name", "X"}, "unknown role"},
		{"missing flag", "", []string{"user", "add", "--data", dir, "--email", "y@example.com"}, "required flag"},
		{"unknown user token", "", []string{"token", "create", "--data", dir, "--user", "ghost@example.com", "--name", "t"}, "no user with that email"},
		{"unknown command", "", []string{"frobnicate"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := custos(t, nil, tc.stdin, tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d stderr %q, want %q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "a very good password") || strings.Contains(r.stderr, "short") && tc.name == "weak password" && strings.Contains(r.stderr, "short\n") {
				t.Fatal("password echoed")
			}
		})
	}
	r := custos(t, nil, "", "token", "create", "--data", dir, "--user", "li@example.com", "--name", "sync", "--ttl", "24h").mustOK(t)
	tok := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(tok, "cst_") || strings.Contains(tok, "\n") || len(tok) != 47 {
		t.Fatalf("token output %q", r.stdout)
	}
	list := custos(t, nil, "", "token", "list", "--data", dir, "--user", "li@example.com").mustOK(t).stdout
	if !strings.Contains(list, "sync") || strings.Contains(list, tok) {
		t.Fatalf("token list: %s", list)
	}
	custos(t, nil, "", "user", "disable", "--data", dir, "--email", "li@example.com").mustOK(t)
	if !strings.Contains(custos(t, nil, "", "token", "list", "--data", dir, "--user", "li@example.com").mustOK(t).stdout, "revoked") {
		t.Fatal("disable did not revoke tokens")
	}
	custos(t, nil, "", "user", "enable", "--data", dir, "--email", "li@example.com").mustOK(t)
	custos(t, nil, "", "user", "disable", "--data", dir, "li@example.com").mustOK(t) // the positional form still works
	custos(t, nil, "", "user", "unlock", "--data", dir, "--email", "li@example.com").mustOK(t)
	if r := custos(t, nil, "password1234\n", "user", "reset-password", "--data", dir, "--email", "li@example.com"); r.code == 0 || !strings.Contains(r.stderr, "too common") {
		t.Fatalf("reset to a common password: %d %q", r.code, r.stderr)
	}
	custos(t, nil, "a fresh temporary passphrase\n", "user", "reset-password", "--data", dir, "--email", "li@example.com").mustOK(t)
	if r := custos(t, nil, "", "user", "disable", "--data", dir); r.code != 2 || !strings.Contains(r.stderr, "--email") {
		t.Fatalf("disable without a user: %d %q", r.code, r.stderr)
	}
	// --help everywhere, exit 0.
	for _, args := range [][]string{{"--help"}, {"init", "--help"}, {"serve", "--help"}, {"user", "add", "--help"}, {"token", "create", "--help"}, {"import", "customers", "--help"}, {"export", "customers", "--help"}, {"demo", "--help"}, {"version"}} {
		if r := custos(t, nil, "", args...); r.code != 0 || r.stdout == "" {
			t.Fatalf("%v: %d %q", args, r.code, r.stderr)
		}
	}
}

const goodCSV = "客户名称,手机,邮箱,身份证号,标签,负责人,备注\n" +
	"张三丰,13800138000,zsf@wudang.cn,11010519491231002X,重点客户;华东区,,太极\n" +
	"\"Acme, Inc.\",+86 139 0000 1111,ops@acme.com,,vip,,\"=HYPERLINK(\"\"http://evil\"\")\"\n"

const brokenCSV = "name,phone,email\n" +
	"Good One,13800138001,good@example.com\n" +
	"Bad Phone,12345SECRET,bad@example.com\n" +
	"Too,Many,Fields,Here\n" +
	"Bad \"Quote,13800138002,q@example.com\n"

func TestImportAndExport(t *testing.T) {
	dir := initDir(t)
	tmp := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Broken rows: line-numbered errors, no values echoed; --atomic imports nothing.
	broken := write("broken.csv", []byte(brokenCSV))
	r := custos(t, nil, "", "import", "customers", "--data", dir, "--atomic", broken)
	if r.code == 0 || !strings.Contains(r.stderr, "line 3: phones[0]") || !strings.Contains(r.stderr, "line 4:") || !strings.Contains(r.stderr, "line 5:") || strings.Contains(r.stderr, "SECRET") {
		t.Fatalf("atomic broken import: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	exp := custos(t, nil, "", "export", "customers", "--data", dir).mustOK(t).stdout
	if strings.Contains(exp, "Good One") {
		t.Fatal("atomic import with errors wrote a row")
	}
	// Without --atomic the good row goes in, and the exit code says not all did.
	r = custos(t, nil, "", "import", "customers", "--data", dir, broken)
	if r.code == 0 || !strings.Contains(r.stdout, "imported 1 of 4 rows") {
		t.Fatalf("partial import: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// A GBK file as Excel on Chinese Windows saves it.
	gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(goodCSV))
	if err != nil {
		t.Fatal(err)
	}
	r = custos(t, nil, "", "import", "customers", "--data", dir, write("gbk.csv", gbk)).mustOK(t)
	if !strings.Contains(r.stdout, "imported 2 of 2 rows") || !strings.Contains(r.stdout, "gb18030") {
		t.Fatalf("gbk import: %s", r.stdout)
	}
	// UTF-8 with BOM, forced encoding.
	r = custos(t, nil, "", "import", "customers", "--data", dir, "--encoding", "utf-8", write("bom.csv", append([]byte("\ufeff"), strings.ReplaceAll(goodCSV, "张三丰", "李四")...))).mustOK(t)
	if !strings.Contains(r.stdout, "imported 2 of 2") {
		t.Fatal(r.stdout)
	}
	exp = custos(t, nil, "", "export", "customers", "--data", dir).mustOK(t).stdout
	for _, want := range []string{"\ufeffname,kind,phone", "张三丰", "李四", "+8613800138000", "重点客户; 华东区", "'=HYPERLINK", "Good One"} {
		if !strings.Contains(exp, want) {
			t.Errorf("export lacks %q:\n%s", want, exp)
		}
	}
	// Export as a sales user is refused; the file is not left behind.
	custos(t, nil, "a very good password\n", "user", "add", "--data", dir, "--email", "s@example.com", "--role", "sales", "--name", "S").mustOK(t)
	out := filepath.Join(tmp, "sales.csv")
	if r := custos(t, nil, "", "export", "customers", "--data", dir, "--as", "s@example.com", "--out", out); r.code == 0 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("sales export: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("refused export left a file")
	}
	// The export round-trips through import.
	again := write("roundtrip.csv", []byte(exp))
	custos(t, nil, "", "import", "customers", "--data", dir, again).mustOK(t)
	if r := custos(t, nil, "", "import", "customers", "--data", dir, "--encoding", "latin1", again); r.code != 2 {
		t.Fatalf("bad encoding flag: %d", r.code)
	}
	if r := custos(t, nil, "", "import", "customers", "--data", dir, filepath.Join(tmp, "missing.csv")); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("missing file: %q", r.stderr)
	}
}

func TestDemo(t *testing.T) {
	auth.UseCheapHashingForTests(t)
	dir := filepath.Join(t.TempDir(), "demo")
	r := custos(t, map[string]string{"CUSTOS_DEMO_PASSWORD": "demo password 123"}, "", "demo", "--data", dir, "--customers", "120").mustOK(t)
	if !strings.Contains(r.stdout, "created 120 demo customers") {
		t.Fatal(r.stdout)
	}
	exp := custos(t, nil, "", "export", "customers", "--data", dir).mustOK(t).stdout
	if n := strings.Count(exp, "\n"); n != 121 {
		t.Fatalf("export has %d lines", n)
	}
	if r := custos(t, nil, "", "demo", "--data", dir, "--customers", "0"); r.code != 2 {
		t.Fatalf("bad count: %d", r.code)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServeRefusesPlainHTTPOffLoopback(t *testing.T) {
	r := custos(t, nil, "", "serve", "--data", t.TempDir(), "--addr", "0.0.0.0:0")
	if r.code != 2 || !strings.Contains(r.stderr, "refusing plain HTTP") {
		t.Fatalf("%d %q", r.code, r.stderr)
	}
}

// The core promise, end to end with the real binary: customers created through
// the API leave no plaintext name, phone or email in the database file, its
// WAL, or the server log — on SQLite and on PostgreSQL (checked with pg_dump).
func TestNoPlaintextAtRest(t *testing.T) {
	bin := buildBinary(t)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			env := append(os.Environ(), "CUSTOS_ADMIN_EMAIL=root@example.com", "CUSTOS_ADMIN_PASSWORD=admin password 123")
			dbURL := ""
			if engine == "postgres" {
				dbURL = pgtest.Shared(t).NewDatabase(t)
				env = append(env, "CUSTOS_DB="+dbURL)
			}
			addr := freeAddr(t)
			logPath := filepath.Join(t.TempDir(), "server.log")
			logFile, _ := os.Create(logPath)
			srv := exec.Command(bin, "serve", "--data", dir, "--addr", addr, "--log-level", "debug")
			srv.Env, srv.Stdout, srv.Stderr = env, logFile, logFile
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
			base := "http://" + addr
			waitReady(t, base)
			tc := exec.Command(bin, "token", "create", "--data", dir, "--user", "root@example.com", "--name", "t")
			tc.Env = env
			tokOut, err := tc.Output()
			if err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSpace(string(tokOut))
			secrets := []string{}
			for i, c := range []struct{ name, phone, email, id, notes string }{
				{"欧阳娜娜", "13912345678", "ouyang.nana@example.cn", "11010519491231002X", "喜欢喝龙井茶"},
				{"Margaret Thistlewood", "13698765432", "margaret.thistlewood@example.com", "E12345678", "Prefers calls after 5pm"},
			} {
				body := fmt.Sprintf(`{"name":%q,"phone":%q,"email":%q,"id_number":%q,"notes":%q,"address":"上海市浦东新区世纪大道%d号"}`, c.name, c.phone, c.email, c.id, c.notes, 100+i)
				api(t, "POST", base+"/api/v1/customers", tok, body, 201)
				api(t, "GET", base+"/api/v1/customers?q="+c.phone, tok, "", 200)
				api(t, "GET", base+"/api/v1/customers?q="+c.email, tok, "", 200)
				secrets = append(secrets, c.name, c.phone, c.email, c.id, c.notes)
			}
			secrets = append(secrets, "世纪大道", "Thistlewood", "ouyang.nana")
			// Read the files while the server runs (the WAL is folded into the
			// database and removed at a clean shutdown), and again after.
			contents := map[string][]byte{}
			snap := func(label string, paths ...string) {
				for _, p := range paths {
					b, err := os.ReadFile(p)
					if err != nil {
						t.Fatalf("%s: %v", p, err)
					}
					contents[label+" "+filepath.Base(p)] = b
				}
			}
			var files []string
			if engine == "sqlite" {
				snap("running", filepath.Join(dir, "custos.db"), filepath.Join(dir, "custos.db-wal"))
				files = []string{filepath.Join(dir, "custos.db")}
			} else {
				dump := filepath.Join(t.TempDir(), "dump.sql")
				out, err := exec.Command("pg_dump", "--no-owner", "-f", dump, dbURL).CombinedOutput()
				if err != nil {
					t.Fatalf("pg_dump: %v %s", err, out)
				}
				files = []string{dump}
			}
			_ = srv.Process.Signal(os.Interrupt)
			_ = srv.Wait()
			snap("stopped", append(files, logPath)...)
			if !bytes.Contains(contents["stopped server.log"], []byte(`"route":"POST /api/v1/customers"`)) {
				t.Fatal("the server log has no request lines: nothing was checked")
			}
			for f, b := range contents {
				if len(b) == 0 {
					t.Fatalf("%s is empty: nothing checked", f)
				}
				for _, s := range secrets {
					for _, form := range []string{s, strings.ToLower(s), "+86" + s} {
						if bytes.Contains(b, []byte(form)) {
							t.Errorf("%s contains plaintext %q", f, form)
						}
					}
				}
			}
		})
	}
}

func waitReady(t *testing.T, base string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("server did not become ready")
}

func api(t *testing.T, method, url, tok, body string, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// --tls self-signed creates and keeps a certificate in the data directory, the
// server speaks HTTPS with HSTS, and a cancelled context shuts it down cleanly.
func TestServeSelfSignedTLS(t *testing.T) {
	dir := initDir(t)
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out, errb syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--addr", addr, "--tls", "self-signed"}, strings.NewReader(""), &out, &errb, func(string) (string, bool) { return "", false })
	}()
	certFile := filepath.Join(dir, "tls", "cert.pem")
	var client *http.Client
	deadline := time.Now().Add(20 * time.Second)
	for client == nil && time.Now().Before(deadline) {
		if pem, err := os.ReadFile(certFile); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pem) {
				client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if client == nil {
		cancel()
		t.Fatalf("no certificate written: %s", errb.String())
	}
	var resp *http.Response
	var err error
	for time.Now().Before(deadline) {
		if resp, err = client.Get("https://" + addr + "/healthz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("status %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if st, err := os.Stat(filepath.Join(dir, "tls", "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v", err)
	}
	if !strings.Contains(out.String(), "https://"+addr) {
		t.Fatalf("output: %s", out.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildBinary builds the custos binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "custos-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "custos")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// `custos user disable --email E`, run while the server runs, ends the
// user's open session and API token on their very next request.
func TestDisableWhileServing(t *testing.T) {
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	env := append(os.Environ(), "CUSTOS_ADMIN_EMAIL=root@example.com", "CUSTOS_ADMIN_PASSWORD=admin password 123")
	cli := func(stdin string, args ...string) string {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Env, c.Stdin = env, strings.NewReader(stdin)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	addr := freeAddr(t)
	srv := exec.Command(bin, "serve", "--data", dir, "--addr", addr)
	srv.Env = env
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	base := "http://" + addr
	waitReady(t, base)
	cli("a very good password\n", "user", "add", "--data", dir, "--email", "rep@example.com", "--role", "sales", "--name", "Rep")
	tok := cli("", "token", "create", "--data", dir, "--user", "rep@example.com", "--name", "t")
	resp, err := http.Post(base+"/api/v1/auth/login", "application/json", strings.NewReader(`{"email":"rep@example.com","password":"a very good password"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %v %v", err, resp)
	}
	resp.Body.Close()
	cookie := resp.Cookies()[0]
	get := func(useCookie bool) int {
		req, _ := http.NewRequest("GET", base+"/api/v1/customers", nil)
		if useCookie {
			req.AddCookie(cookie)
		} else {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get(true) != 200 || get(false) != 200 {
		t.Fatal("session or token not working before disable")
	}
	cli("", "user", "disable", "--data", dir, "--email", "rep@example.com")
	if c1, c2 := get(true), get(false); c1 != 401 || c2 != 401 {
		t.Fatalf("after disable: session %d, token %d; want 401, 401", c1, c2)
	}
	cli("", "user", "enable", "--data", dir, "--email", "rep@example.com")
	if c := get(true); c != 401 {
		t.Fatalf("re-enabling revived the old session: %d", c)
	}
}

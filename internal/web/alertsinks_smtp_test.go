package web_test

import (
	"bytes"
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

	"github.com/custos/custos/internal/monitor"
)

// maildevBin finds maildev (a local SMTP server with a REST API, from
// npm): $CUSTOS_MAILDEV, then PATH, then the cache scripts/ensure-maildev.sh
// installs into, which it runs when maildev is in none of them. Without
// npm the test fails, saying what to install: it never skips.
func maildevBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CUSTOS_MAILDEV"); p != "" {
		return p
	}
	if p, err := exec.LookPath("maildev"); err == nil {
		return p
	}
	dir := os.Getenv("CUSTOS_MAILDEV_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "custos", "maildev")
	}
	if p := filepath.Join(dir, "node_modules", ".bin", "maildev"); isExecutableFile(p) {
		return p
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "ensure-maildev.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("maildev (npm package) is needed for the e-mail end-to-end test and could not be installed: %v\n%s\n"+
			"install Node.js and npm, then run `make test-deps` (or bash scripts/ensure-maildev.sh)", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func isExecutableFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func sinkFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// maildevOutput collects a child process's output.
type maildevOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *maildevOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *maildevOutput) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// maildev is a running maildev: SMTP on smtpPort, REST API on web.
type maildev struct {
	smtpPort int
	web      string
}

// startMaildev starts maildev on free loopback ports, requiring SMTP
// authentication with user and pass, and stops it when the test ends.
func startMaildev(t *testing.T, user, pass string) *maildev {
	t.Helper()
	bin := maildevBin(t)
	smtpPort, webPort := sinkFreePort(t), sinkFreePort(t)
	out := &maildevOutput{}
	cmd := exec.Command(bin, "--smtp", fmt.Sprint(smtpPort), "--web", fmt.Sprint(webPort), "--ip", "127.0.0.1",
		"--incoming-user", user, "--incoming-pass", pass, "--mail-directory", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start maildev (%s): %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	m := &maildev{smtpPort: smtpPort, web: fmt.Sprintf("http://127.0.0.1:%d", webPort)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("maildev exited:\n%s", out.String())
		default:
		}
		if resp, err := http.Get(m.web + "/healthz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.TrimSpace(string(b)) == "true" && smtpListening(smtpPort) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("maildev did not start within 30s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func smtpListening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// maildevMail is a message as maildev's REST API shows it.
type maildevMail struct {
	Subject string            `json:"subject"`
	Text    string            `json:"text"`
	Headers map[string]string `json:"headers"`
	From    []struct {
		Address string `json:"address"`
	} `json:"from"`
	To []struct {
		Address string `json:"address"`
	} `json:"to"`
}

func (m *maildev) emails(t *testing.T) []maildevMail {
	t.Helper()
	resp, err := http.Get(m.web + "/email")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []maildevMail
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("maildev GET /email: %v", err)
	}
	return out
}

func (m *maildev) waitForSubject(t *testing.T, subject string) maildevMail {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, e := range m.emails(t) {
			if strings.Contains(e.Subject, subject) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no e-mail with subject %q reached maildev; it has %+v", subject, m.emails(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSMTPE2EWithMaildev is the must-show of e-mail delivery: a real
// server with an SMTP sink (password-authenticated) on maildev; a request
// raises an alert, the notifier sends it, and the message is read back
// from maildev's REST API.
func TestSMTPE2EWithMaildev(t *testing.T) {
	const user, pass = "custos", "maildev-pass-8d2f61"
	md := startMaildev(t, user, pass)
	s := newSinkServer(t, monitor.NotifierOptions{Interval: 50 * time.Millisecond})
	sink := func(name, password string) string {
		return fmt.Sprintf(`{"name":%q,"kind":"smtp","min_severity":"high","host":"127.0.0.1","port":%d,"tls":"none",`+
			`"username":%q,"password":%q,"from":"custos@example.com","to":["security@example.com","ciso@example.com"]}`, name, md.smtpPort, user, password)
	}
	created := s.mustCall("POST", "/api/v1/alert-sinks", sink("mail", pass), http.StatusCreated)
	if bytes.Contains(created, []byte(pass)) || !bytes.Contains(created, []byte(fmt.Sprintf(`"target":"smtp://127.0.0.1:%d (none, 2 recipient(s))"`, md.smtpPort))) {
		t.Fatalf("created: %s", created)
	}

	// The administrator's test message.
	var res struct {
		OK        bool   `json:"ok"`
		Error     string `json:"error"`
		MessageID string `json:"message_id"`
	}
	if err := json.Unmarshal(s.mustCall("POST", "/api/v1/alert-sinks/mail/test", "", http.StatusOK), &res); err != nil || !res.OK {
		t.Fatalf("test message: %+v %v", res, err)
	}
	test := md.waitForSubject(t, "Test message from Custos")
	if test.Headers["x-custos-alert-id"] != res.MessageID {
		t.Errorf("test message id header %q, want %q", test.Headers["x-custos-alert-id"], res.MessageID)
	}

	// An alert raised by a request goes out through the outbox.
	s.raiseByRequest()
	ids := s.alertIDs(monitor.RuleSelfGrant)
	if len(ids) != 1 {
		t.Fatalf("%d alerts, want 1", len(ids))
	}
	m := md.waitForSubject(t, "Administrator granted themselves data access")
	t.Logf("maildev received: subject %q, to %v", m.Subject, m.To)
	if want := "[Custos][HIGH] Administrator granted themselves data access / 管理员给自己授予了数据权限"; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	for _, want := range []string{"管理员给自己授予了数据权限", "Rule / 规则: access.self_grant", "Severity / 级别: high / 高", "User / 用户: " + s.adminID,
		"Alert / 告警: " + ids[0], "Evidence / 证据: audit #", "what=grant of export to self"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Text)
		}
	}
	if m.Headers["x-custos-alert-id"] != ids[0] {
		t.Errorf("X-Custos-Alert-Id %q, want %q", m.Headers["x-custos-alert-id"], ids[0])
	}
	if len(m.From) != 1 || m.From[0].Address != "custos@example.com" || len(m.To) != 2 || m.To[0].Address != "security@example.com" || m.To[1].Address != "ciso@example.com" {
		t.Errorf("from %v, to %v", m.From, m.To)
	}
	sinkWaitFor(t, 5*time.Second, "the delivery to be recorded", func() bool {
		k := s.sinkStatus("mail")
		return k["pending"].(float64) == 0 && k["last_ok_at"] != nil
	})

	// A wrong password: the failure says so, and never shows the password.
	s.mustCall("POST", "/api/v1/alert-sinks", sink("mail-bad", "wrong-pass-55c1e0"), http.StatusCreated)
	if err := json.Unmarshal(s.mustCall("POST", "/api/v1/alert-sinks/mail-bad/test", "", http.StatusOK), &res); err != nil || res.OK ||
		strings.Contains(res.Error, "wrong-pass-55c1e0") || res.Error == "" {
		t.Fatalf("test with a wrong password: %+v %v", res, err)
	}
	t.Logf("wrong password: %s", res.Error)
	for _, leak := range []string{pass, "wrong-pass-55c1e0"} {
		if strings.Contains(s.log.String(), leak) {
			t.Errorf("the server log holds the password %q", leak)
		}
	}
	if len(md.emails(t)) != 2 {
		t.Errorf("maildev holds %d e-mails, want 2", len(md.emails(t)))
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/monitor"
)

// TestAlertSinksCLI: sinks are added, listed, tested, changed and removed
// from the command line; secrets come from standard input, a file or the
// environment and never from argv, and are never printed.
func TestAlertSinksCLI(t *testing.T) {
	dir := initDir(t)
	const secret = "cli-hook-secret-2f9e7b41"
	var mu sync.Mutex
	var verified, refused int
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if monitor.Verify([]byte(secret), r.Header.Get("X-Custos-Timestamp"), r.Header.Get("X-Custos-Signature"), body, time.Now(), 5*time.Minute) != nil {
			refused++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		verified++
	}))
	defer recv.Close()
	sinks := func(env map[string]string, stdin string, args ...string) result {
		return custos(t, env, stdin, append([]string{"alerts", "sinks", "--data", dir}, args...)...)
	}

	// A webhook; its secret on standard input.
	r := sinks(nil, secret+"\n", "add", "--name", "siem", "--kind", "webhook", "--url", recv.URL+"/custos", "--min-severity", "low").mustOK(t)
	if !strings.Contains(r.stdout, "sink siem added: webhook to "+recv.URL) {
		t.Fatalf("add: %q", r.stdout)
	}
	sinks(nil, "", "test", "siem").mustOK(t)

	// A WeCom robot: its URL is a secret, so never on argv.
	robot := recv.URL + "/cgi-bin/webhook/send?key=wecom-key-c0ffee42"
	r = sinks(nil, "", "add", "--name", "oncall", "--kind", "wecom", "--url", robot)
	if r.code != 2 || !strings.Contains(r.stderr, "never as an argument") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("robot URL on argv: exit %d %q", r.code, r.stderr)
	}
	r = sinks(nil, "", "add", "--name", "hook2", "--kind", "webhook", "--url", recv.URL+"/x?token=abc")
	if r.code != 2 || !strings.Contains(r.stderr, "may carry credentials") {
		t.Fatalf("webhook URL with a query on argv: exit %d %q", r.code, r.stderr)
	}
	if r = sinks(nil, "", "add", "--name", "hook3", "--kind", "webhook", "--url", recv.URL, "--secret", "x"); r.code != 2 {
		t.Fatalf("--secret on argv: exit %d %q", r.code, r.stderr)
	}
	urlFile := filepath.Join(t.TempDir(), "wecom-url")
	if err := os.WriteFile(urlFile, []byte(robot+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sinks(nil, "", "add", "--name", "oncall", "--kind", "wecom", "--url-file", urlFile, "--min-severity", "high").mustOK(t)
	// DingTalk: URL from the environment, signing secret on standard input.
	sinks(map[string]string{"CUSTOS_SINK_URL": "https://oapi.dingtalk.com/robot/send?access_token=ding-token-77"}, "SECding-sign-88\n",
		"add", "--name", "ding", "--kind", "dingtalk").mustOK(t)
	// SMTP with a password from a file; syslog without secrets.
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("smtp-pass-99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sinks(nil, "", "add", "--name", "mail", "--kind", "smtp", "--host", "smtp.example.com", "--username", "custos", "--secret-file", pwFile,
		"--from", "custos@example.com", "--to", "security@example.com,ciso@example.com").mustOK(t)
	sinks(nil, "", "add", "--name", "syslog", "--kind", "syslog", "--host", "siem.example.com", "--network", "tls").mustOK(t)
	// Missing secret: one clear line.
	r = sinks(nil, "", "add", "--name", "hook4", "--kind", "webhook", "--url", recv.URL)
	if r.code != 2 || !strings.Contains(r.stderr, "no secret given") {
		t.Fatalf("webhook without a secret: exit %d %q", r.code, r.stderr)
	}
	// Bad settings: a clear one-line error.
	r = sinks(nil, "", "add", "--name", "mail2", "--kind", "smtp", "--host", "smtp.example.com", "--tls", "none", "--from", "custos@example.com", "--to", "a@example.com")
	if r.code == 0 || !strings.Contains(r.stderr, "tls: none is allowed only for a loopback server") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("smtp without tls: exit %d %q", r.code, r.stderr)
	}

	list := sinks(nil, "", "list").mustOK(t).stdout
	for _, want := range []string{"siem ", "oncall ", "ding ", "mail ", "syslog ", "qyapi.weixin.qq.com", "oapi.dingtalk.com", "smtp://smtp.example.com:587 (starttls, 2 recipient(s))",
		"tls://siem.example.com:6514 (local0)"} {
		if !strings.Contains(list, want) && !(want == "qyapi.weixin.qq.com" && strings.Contains(list, "127.0.0.1")) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	asJSON := sinks(nil, "", "list", "--json").mustOK(t).stdout
	for _, leak := range []string{secret, "wecom-key-c0ffee42", "ding-token-77", "SECding-sign-88", "smtp-pass-99", "/cgi-bin"} {
		if strings.Contains(list, leak) || strings.Contains(asJSON, leak) {
			t.Errorf("the listing shows %q:\n%s\n%s", leak, list, asJSON)
		}
	}

	// Update: severity and the enabled flag, then the secret from a file.
	r = sinks(nil, "", "update", "siem", "--min-severity", "critical", "--disable").mustOK(t)
	if !strings.Contains(r.stdout, "severity critical and above, enabled false") {
		t.Fatalf("update: %q", r.stdout)
	}
	sinks(nil, "", "test", "siem").mustOK(t) // the secret was kept
	sinks(nil, "some other secret 1234\n", "update", "siem", "--secret-file", "-").mustOK(t)
	r = sinks(nil, "", "test", "siem")
	if r.code != 1 || !strings.Contains(r.stderr, "not delivered") || !strings.Contains(r.stderr, "HTTP 401") {
		t.Fatalf("test with the wrong secret: exit %d %q", r.code, r.stderr)
	}
	if mu.Lock(); verified != 2 || refused != 1 {
		t.Errorf("receiver verified %d, refused %d; want 2 and 1", verified, refused)
	}
	mu.Unlock()

	// Remove.
	sinks(nil, "", "remove", "oncall").mustOK(t)
	if r = sinks(nil, "", "remove", "oncall"); r.code != 1 || !strings.Contains(r.stderr, `no sink named "oncall"`) {
		t.Fatalf("remove again: exit %d %q", r.code, r.stderr)
	}
	if r = sinks(nil, "", "test", "nope"); r.code != 1 || !strings.Contains(r.stderr, `no sink named "nope"`) {
		t.Fatalf("test a missing sink: exit %d %q", r.code, r.stderr)
	}
	// The audit trail has each change, without secrets.
	trail := custos(t, nil, "", "audit", "export", "--data", dir).mustOK(t).stdout
	for _, action := range []string{"alert_sink.create", "alert_sink.update", "alert_sink.delete", "alert_sink.test"} {
		if !strings.Contains(trail, `"`+action+`"`) {
			t.Errorf("the audit trail has no %s", action)
		}
	}
	for _, leak := range []string{secret, "wecom-key-c0ffee42", "smtp-pass-99", "some other secret"} {
		if strings.Contains(trail, leak) {
			t.Errorf("the audit trail holds %q", leak)
		}
	}
}

// TestServeDeliversAlerts: `custos serve` runs the notifier: an alert
// raised by a request reaches a sink added from the command line, signed;
// the server then stops cleanly.
func TestServeDeliversAlerts(t *testing.T) {
	dir := initDir(t)
	const secret = "serve-hook-secret-5e61a0"
	got := make(chan string, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := monitor.Verify([]byte(secret), r.Header.Get("X-Custos-Timestamp"), r.Header.Get("X-Custos-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p monitor.WebhookPayload
		_ = json.Unmarshal(body, &p)
		got <- p.Rule
	}))
	defer recv.Close()
	custos(t, nil, secret+"\n", "alerts", "sinks", "add", "--data", dir, "--name", "siem", "--kind", "webhook", "--url", recv.URL, "--min-severity", "high").mustOK(t)
	tok := strings.TrimSpace(custos(t, nil, "", "token", "create", "--data", dir, "--user", "root@example.com", "--name", "t").mustOK(t).stdout)

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var out, errb syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--addr", addr}, strings.NewReader(""), &out, &errb, func(string) (string, bool) { return "", false })
	}()
	base := "http://" + addr
	waitReady(t, base)
	user, _ := api(t, "GET", base+"/api/v1/me", tok, "", 200)["user"].(map[string]any)
	id, _ := user["id"].(string)
	api(t, "POST", base+"/api/v1/grants", tok, fmt.Sprintf(`{"user_id":%q,"permission":"export","reason":"report","expires_at":%q}`,
		id, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), 201)
	select {
	case rule := <-got:
		if rule != monitor.RuleSelfGrant {
			t.Fatalf("receiver got %q", rule)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the alert did not reach the sink; server log:\n%s", errb.String())
	}
	// The receiver has it; the notifier records it once the answer is in.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(errb.String(), `"msg":"alert delivered"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the delivery was not recorded; server log:\n%s", errb.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if strings.Contains(errb.String(), secret) {
		t.Fatalf("server log:\n%s", errb.String())
	}
}

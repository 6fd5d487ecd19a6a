package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/metrics/metricstest"
)

// serving runs `custos serve` in-process until the test ends and returns
// the main address.
func serving(t *testing.T, env map[string]string, args ...string) (addr string, out *syncBuffer) {
	t.Helper()
	return servingDir(t, initDir(t), env, args...)
}

func servingDir(t *testing.T, dir string, env map[string]string, args ...string) (addr string, out *syncBuffer) {
	t.Helper()
	addr = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out, errb := &syncBuffer{}, &syncBuffer{}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	go func() {
		done <- run(ctx, append([]string{"serve", "--data", dir, "--addr", addr}, args...), strings.NewReader(""), out, errb, lookup)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v: %s", err, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	waitReady(t, "http://"+addr)
	return addr, out
}

func get(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// --metrics-addr serves /metrics there without a token, and only there.
func TestServeMetricsOnASeparateAddress(t *testing.T) {
	maddr := freeAddr(t)
	addr, out := serving(t, nil, "--metrics-addr", maddr)
	if code, _ := get(t, "http://"+addr+"/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	code, body := get(t, "http://"+maddr+"/metrics", "")
	if code != 200 {
		t.Fatalf("separate address: %d %s", code, body)
	}
	fams := metricstest.Parse(t, strings.NewReader(body))
	if got := fams.Value(t, "custos_http_requests_total", "route", "/healthz", "method", "GET", "code", "200"); got < 1 {
		t.Errorf("healthz requests %v", got)
	}
	if got := fams.Value(t, "custos_scrape_database_ok"); got != 1 {
		t.Errorf("database_ok %v", got)
	}
	if got := fams.Value(t, "custos_key_age_seconds", "purpose", "master"); got <= 0 {
		t.Errorf("key age %v", got)
	}
	// The main address does not expose it, with or without a token.
	for _, a := range []string{"", "Bearer anything-at-all-0123456789"} {
		if code, body := get(t, "http://"+addr+"/metrics", a); code != 404 || strings.Contains(body, "custos_") {
			t.Fatalf("main address /metrics (%q): %d %s", a, code, body)
		}
	}
	// The metrics listener serves nothing else.
	for _, p := range []string{"/", "/healthz", "/api/v1/customers", "/api/v1/openapi.json"} {
		if code, _ := get(t, "http://"+maddr+p, ""); code != 404 {
			t.Errorf("metrics listener %s: %d", p, code)
		}
	}
	if !strings.Contains(out.String(), "http://"+maddr+"/metrics") {
		t.Errorf("output does not say where the metrics are: %s", out.String())
	}
}

// CUSTOS_METRICS_TOKEN alone serves /metrics on the main address to its
// holders only; CUSTOS_METRICS_ADDR works like the flag.
func TestServeMetricsTokenFromTheEnvironment(t *testing.T) {
	const tok = "env-scrape-token-0123456789abcdef"
	addr, _ := serving(t, map[string]string{"CUSTOS_METRICS_TOKEN": tok})
	for _, c := range []struct {
		authorization string
		want          int
	}{{"", 401}, {"Bearer wrong-token-0123456789abcdef", 401}, {"Bearer " + tok, 200}} {
		if code, body := get(t, "http://"+addr+"/metrics", c.authorization); code != c.want {
			t.Fatalf("%q: %d, want %d: %s", c.authorization, code, c.want, body)
		}
	}

	maddr := freeAddr(t)
	_, _ = serving(t, map[string]string{"CUSTOS_METRICS_ADDR": maddr, "CUSTOS_METRICS_TOKEN": tok})
	// With both, the separate listener asks for the token too.
	if code, _ := get(t, "http://"+maddr+"/metrics", ""); code != 401 {
		t.Fatalf("separate listener without the token: %d", code)
	}
	if code, _ := get(t, "http://"+maddr+"/metrics", "Bearer "+tok); code != 200 {
		t.Fatalf("separate listener with the token: %d", code)
	}
}

func TestServeMetricsTokenFile(t *testing.T) {
	const tok = "file-scrape-token-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "metrics.token")
	if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := serving(t, nil, "--metrics-token-file", file)
	if code, _ := get(t, "http://"+addr+"/metrics", ""); code != 401 {
		t.Fatalf("without the token: %d", code)
	}
	if code, _ := get(t, "http://"+addr+"/metrics", "Bearer "+tok); code != 200 {
		t.Fatalf("with the token: %d", code)
	}
}

// Bad metrics settings stop serve before it starts; the token is never an
// argument.
func TestServeMetricsRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.token")
	if err := os.WriteFile(open, []byte("world-readable-token-0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.token")
	if err := os.WriteFile(good, []byte("good-token-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"token as an argument", nil, []string{"--metrics-token", "abcdefabcdefabcdefabcdef"}, "unknown flag"},
		{"short token", map[string]string{"CUSTOS_METRICS_TOKEN": "short"}, nil, "at least 16"},
		{"world-readable token file", nil, []string{"--metrics-token-file", open}, "chmod"},
		{"missing token file", nil, []string{"--metrics-token-file", filepath.Join(dir, "missing")}, "no such file"},
		{"token twice", map[string]string{"CUSTOS_METRICS_TOKEN": "good-token-0123456789abcdef"}, []string{"--metrics-token-file", good}, "not both"},
		{"metrics address without a port", nil, []string{"--metrics-addr", "127.0.0.1"}, "HOST:PORT"},
		{"metrics address equal to the address", nil, []string{"--metrics-addr", "127.0.0.1:18080"}, "differ"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := custos(t, c.env, "", append([]string{"serve", "--data", data, "--addr", "127.0.0.1:18080"}, c.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want 2 with %q: %s", r.code, c.want, r.stderr)
			}
			if strings.Contains(r.stderr, "token-0123456789") {
				t.Fatalf("the token is printed: %s", r.stderr)
			}
		})
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("serve initialized the data directory before refusing")
	}
}

// A failing alert sink is visible in the metrics: its status comes from
// the database (here after a test message to a receiver that is down).
func TestServeMetricsShowFailingSink(t *testing.T) {
	dir := initDir(t)
	down := "http://" + freeAddr(t) + "/hook" // nothing listens there
	custos(t, nil, "a webhook secret of 32 characters\n", "alerts", "sinks", "add", "--data", dir, "--name", "siem", "--kind", "webhook", "--url", down).mustOK(t)
	if r := custos(t, nil, "", "alerts", "sinks", "test", "--data", dir, "siem"); !strings.Contains(r.stdout+r.stderr, "refused") {
		t.Fatalf("test message to a receiver that is down: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	maddr := freeAddr(t)
	servingDir(t, dir, nil, "--metrics-addr", maddr)
	code, body := get(t, "http://"+maddr+"/metrics", "")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	fams := metricstest.Parse(t, strings.NewReader(body))
	if got := fams.Value(t, "custos_alert_sink_up", "sink", "siem", "kind", "webhook"); got != 0 {
		t.Errorf("custos_alert_sink_up{sink=siem} = %v, want 0", got)
	}
	if got := fams.Value(t, "custos_alert_sink_consecutive_failures", "sink", "siem", "kind", "webhook"); got < 1 {
		t.Errorf("consecutive failures %v", got)
	}
	t.Logf("custos_alert_sink_up{sink=siem} 0, consecutive failures %v", fams.Value(t, "custos_alert_sink_consecutive_failures", "sink", "siem", "kind", "webhook"))
}

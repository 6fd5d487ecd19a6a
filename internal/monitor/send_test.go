package monitor_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/monitor"
)

var sendT0 = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)

func testMessage() monitor.Message {
	return monitor.Message{ID: "0195a0c0-0000-7000-8000-000000000001", Rule: monitor.RuleRevealQuota, Severity: monitor.High,
		ActorID: "0195a0c0-0000-7000-8000-0000000000aa", Status: "open", At: sendT0, Evidence: []int64{41, 42},
		Details: map[string]any{"quota": 5, "day": "2025-03-01"}}
}

func newTestSender(t *testing.T, timeout time.Duration) *monitor.Sender {
	t.Helper()
	return monitor.NewSender(monitor.SenderOptions{Timeout: timeout, Now: func() time.Time { return sendT0 }, Hostname: "node-1"})
}

// capture is an HTTP receiver that records what it got and answers with
// status and body.
type capture struct {
	mu     sync.Mutex
	reqs   []*http.Request
	bodies [][]byte
	status int
	answer string
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.reqs, c.bodies = append(c.reqs, r), append(c.bodies, b)
	status, answer := c.status, c.answer
	c.mu.Unlock()
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (c *capture) last(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		t.Fatal("the receiver got nothing")
	}
	return c.reqs[len(c.reqs)-1], c.bodies[len(c.bodies)-1]
}

func TestWebhookBodyAndSignature(t *testing.T) {
	rec := &capture{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	const secret = "a shared secret of the receiver"
	s := newTestSender(t, 5*time.Second)
	if err := s.Send(context.Background(), monitor.KindWebhook, monitor.SinkConfig{URL: srv.URL + "/hooks/custos", Secret: secret}, testMessage()); err != nil {
		t.Fatal(err)
	}
	r, body := rec.last(t)
	if r.Method != "POST" || r.URL.Path != "/hooks/custos" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request: %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	// The receiver's check, written out independently of monitor.Sign.
	ts := r.Header.Get("X-Custos-Timestamp")
	if ts != strconv.FormatInt(sendT0.Unix(), 10) {
		t.Fatalf("timestamp %q", ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); r.Header.Get("X-Custos-Signature") != want {
		t.Fatalf("signature %q, want %q", r.Header.Get("X-Custos-Signature"), want)
	}
	if err := monitor.Verify([]byte(secret), ts, r.Header.Get("X-Custos-Signature"), body, sendT0.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := monitor.Verify([]byte("another secret"), ts, r.Header.Get("X-Custos-Signature"), body, sendT0, 5*time.Minute); err == nil {
		t.Fatal("Verify accepted the wrong secret")
	}
	if err := monitor.Verify([]byte(secret), ts, r.Header.Get("X-Custos-Signature"), body, sendT0.Add(time.Hour), 5*time.Minute); err == nil {
		t.Fatal("Verify accepted a replay an hour later")
	}
	if r.Header.Get("X-Custos-Alert-Id") != testMessage().ID {
		t.Fatalf("alert id header %q", r.Header.Get("X-Custos-Alert-Id"))
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"id": testMessage().ID, "rule": "reveal.quota_exceeded", "severity": "high",
		"actor_id": testMessage().ActorID, "status": "open", "at": "2025-03-01T09:30:00Z"} {
		if p[k] != want {
			t.Errorf("body %s = %v, want %v", k, p[k], want)
		}
	}
	if ev, _ := json.Marshal(p["evidence"]); string(ev) != "[41,42]" {
		t.Errorf("evidence %s", ev)
	}
	if d, _ := p["details"].(map[string]any); d["quota"] != 5.0 {
		t.Errorf("details %v", p["details"])
	}
	title, _ := p["title"].(map[string]any)
	if title["en"] != "Daily reveal quota exceeded" || title["zh-CN"] != "当日查看明文次数超限" {
		t.Errorf("title %v", title)
	}
	if strings.Contains(string(body), secret) {
		t.Error("the body carries the secret")
	}
}

func TestRobotFormats(t *testing.T) {
	rec := &capture{answer: `{"errcode":0,"errmsg":"ok"}`}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newTestSender(t, 5*time.Second)
	ctx := context.Background()

	t.Run("wecom", func(t *testing.T) {
		if err := s.Send(ctx, monitor.KindWeCom, monitor.SinkConfig{URL: srv.URL + "/cgi-bin/webhook/send?key=wecom-key-0123456789"}, testMessage()); err != nil {
			t.Fatal(err)
		}
		r, body := rec.last(t)
		if r.URL.Query().Get("key") != "wecom-key-0123456789" {
			t.Fatalf("query %q", r.URL.RawQuery)
		}
		var m struct {
			MsgType  string `json:"msgtype"`
			Markdown struct {
				Content string `json:"content"`
			} `json:"markdown"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.MsgType != "markdown" {
			t.Fatalf("body %s: %v", body, err)
		}
		for _, want := range []string{"当日查看明文次数超限", "Daily reveal quota exceeded", "[HIGH]", "reveal.quota_exceeded", testMessage().ActorID, "#41, #42", "quota=5"} {
			if !strings.Contains(m.Markdown.Content, want) {
				t.Errorf("content lacks %q:\n%s", want, m.Markdown.Content)
			}
		}
	})

	t.Run("dingtalk signed", func(t *testing.T) {
		const secret = "SECdingtalk-sign-secret-0123"
		if err := s.Send(ctx, monitor.KindDingTalk, monitor.SinkConfig{URL: srv.URL + "/robot/send?access_token=ding-token-0123456789", Secret: secret}, testMessage()); err != nil {
			t.Fatal(err)
		}
		r, body := rec.last(t)
		q := r.URL.Query()
		ts := strconv.FormatInt(sendT0.UnixMilli(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "\n" + secret))
		if q.Get("access_token") != "ding-token-0123456789" || q.Get("timestamp") != ts || q.Get("sign") != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			t.Fatalf("query %q", r.URL.RawQuery)
		}
		var m struct {
			MsgType  string                       `json:"msgtype"`
			Markdown struct{ Title, Text string } `json:"markdown"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.MsgType != "markdown" || !strings.Contains(m.Markdown.Title, "当日查看明文次数超限") ||
			!strings.Contains(m.Markdown.Text, "Daily reveal quota exceeded") || !strings.Contains(m.Markdown.Text, "reveal.quota_exceeded") {
			t.Fatalf("body %s: %v", body, err)
		}
	})

	t.Run("dingtalk unsigned", func(t *testing.T) {
		if err := s.Send(ctx, monitor.KindDingTalk, monitor.SinkConfig{URL: srv.URL + "/robot/send?access_token=ding-token-0123456789"}, testMessage()); err != nil {
			t.Fatal(err)
		}
		if r, _ := rec.last(t); r.URL.Query().Has("sign") || r.URL.Query().Has("timestamp") {
			t.Fatalf("unsigned robot got %q", r.URL.RawQuery)
		}
	})

	t.Run("slack", func(t *testing.T) {
		rec.mu.Lock()
		rec.answer = "ok"
		rec.mu.Unlock()
		defer func() { rec.mu.Lock(); rec.answer = `{"errcode":0,"errmsg":"ok"}`; rec.mu.Unlock() }()
		if err := s.Send(ctx, monitor.KindSlack, monitor.SinkConfig{URL: srv.URL + "/services/T0000/B0000/slacktoken0123456789"}, testMessage()); err != nil {
			t.Fatal(err)
		}
		_, body := rec.last(t)
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 || !strings.Contains(m["text"], "*[HIGH] Daily reveal quota exceeded*") ||
			!strings.Contains(m["text"], "当日查看明文次数超限") {
			t.Fatalf("body %s: %v", body, err)
		}
	})

	t.Run("robot refusal is a failure without the key", func(t *testing.T) {
		rec.mu.Lock()
		rec.answer = `{"errcode":93000,"errmsg":"invalid webhook url, key=wecom-key-0123456789"}`
		rec.mu.Unlock()
		defer func() { rec.mu.Lock(); rec.answer = `{"errcode":0,"errmsg":"ok"}`; rec.mu.Unlock() }()
		for _, kind := range []string{monitor.KindWeCom, monitor.KindDingTalk} {
			err := s.Send(ctx, kind, monitor.SinkConfig{URL: srv.URL + "/cgi-bin/webhook/send?key=wecom-key-0123456789"}, testMessage())
			if err == nil || !strings.Contains(err.Error(), "errcode 93000") || strings.Contains(err.Error(), "wecom-key-0123456789") {
				t.Fatalf("%s: a 200 with errcode 93000 gave %v", kind, err)
			}
		}
	})
}

// TestSendErrorsCarryNoSecret: a robot that is down, a webhook that
// answers 500, one that never answers — the errors name the host only.
func TestSendErrorsCarryNoSecret(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, r.URL.String(), 500) }))
	defer fail.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	s := newTestSender(t, 300*time.Millisecond)
	const key = "robotkey-7f3a9c0e11d2"
	cases := []struct {
		name, kind string
		cfg        monitor.SinkConfig
		want       string
	}{
		{"refused", monitor.KindWeCom, monitor.SinkConfig{URL: "http://" + closed + "/cgi-bin/webhook/send?key=" + key}, "connection refused"},
		{"500", monitor.KindDingTalk, monitor.SinkConfig{URL: fail.URL + "/robot/send?access_token=" + key, Secret: "SEC" + key}, "HTTP 500"},
		{"slack path token", monitor.KindSlack, monitor.SinkConfig{URL: fail.URL + "/services/T0001/B0001/" + key}, "HTTP 500"},
		{"timeout", monitor.KindWebhook, monitor.SinkConfig{URL: slow.URL + "/hook?token=" + key, Secret: key + key}, "no answer within"},
		{"syslog refused", monitor.KindSyslog, monitor.SinkConfig{Host: "127.0.0.1", Port: portOf(t, closed), Network: "tcp", Facility: "local0"}, "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := s.Send(context.Background(), c.kind, c.cfg, testMessage())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "/robot/send") || strings.Contains(err.Error(), "token=") {
				t.Fatalf("error leaks the URL or key: %v", err)
			}
			t.Logf("error: %v", err)
			if time.Since(start) > 3*time.Second {
				t.Fatalf("took %s with a 300ms timeout", time.Since(start))
			}
		})
	}
	// The configuration never prints.
	cfg := monitor.SinkConfig{URL: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + key, Secret: key, Password: key}
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v %#v %s %q", cfg, cfg, cfg, cfg), cfg.LogValue().String()} {
		if strings.Contains(out, key) {
			t.Fatalf("a SinkConfig printed its secret: %s", out)
		}
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// parseSyslog splits an RFC 5424 message into PRI, header fields,
// structured data and MSG.
func parseSyslog(t *testing.T, msg string) (pri int, header []string, sd, body string) {
	t.Helper()
	if !strings.HasPrefix(msg, "<") {
		t.Fatalf("not RFC 5424: %q", msg)
	}
	end := strings.IndexByte(msg, '>')
	pri, _ = strconv.Atoi(msg[1:end])
	rest := msg[end+1:]
	header = strings.SplitN(rest, " ", 7) // VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID rest
	if len(header) != 7 {
		t.Fatalf("header of %q", msg)
	}
	rest = header[6]
	header = header[:6]
	sdEnd := strings.Index(rest, "] ")
	if !strings.HasPrefix(rest, "[") || sdEnd < 0 {
		t.Fatalf("no structured data in %q", rest)
	}
	return pri, header, rest[:sdEnd+1], rest[sdEnd+2:]
}

func checkSyslog(t *testing.T, msg string, wantPri int, wantSeverity string) {
	t.Helper()
	for i := 0; i < len(msg); i++ {
		if msg[i] >= 0x80 {
			t.Fatalf("non-ASCII byte in the message (MSG should be ASCII JSON): %q", msg)
		}
	}
	pri, h, sd, body := parseSyslog(t, msg)
	if pri != wantPri {
		t.Errorf("PRI %d, want %d", pri, wantPri)
	}
	if h[0] != "1" || h[1] != "2025-03-01T09:30:00.000000Z" || h[2] != "node-1" || h[3] != "custos" || h[5] != "alert" {
		t.Errorf("header %q", h)
	}
	for _, want := range []string{"[custos@32473 ", `id="` + testMessage().ID + `"`, `rule="reveal.quota_exceeded"`, `severity="` + wantSeverity + `"`, `evidence="41,42"`} {
		if !strings.Contains(sd, want) {
			t.Errorf("structured data %q lacks %q", sd, want)
		}
	}
	var p monitor.WebhookPayload
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("MSG is not JSON: %v\n%s", err, body)
	}
	if p.ID != testMessage().ID || p.Title.Zh != "当日查看明文次数超限" || p.Details["day"] != "2025-03-01" {
		t.Errorf("MSG %+v", p)
	}
}

func TestSyslog(t *testing.T) {
	s := newTestSender(t, 2*time.Second)
	t.Run("udp", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		cfg := monitor.SinkConfig{Host: "127.0.0.1", Port: portOf(t, pc.LocalAddr().String()), Network: "udp", Facility: "local0"}
		if err := s.Send(context.Background(), monitor.KindSyslog, cfg, testMessage()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8192)
		_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		checkSyslog(t, string(buf[:n]), 16*8+3, "high") // local0, error (high)
	})
	tcpReceive := func(t *testing.T, ln net.Listener) <-chan string {
		got := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- "accept: " + err.Error()
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			r := bufio.NewReader(c)
			lenStr, err := r.ReadString(' ')
			if err != nil {
				got <- "read: " + err.Error()
				return
			}
			n, _ := strconv.Atoi(strings.TrimSpace(lenStr))
			msg := make([]byte, n)
			if _, err := io.ReadFull(r, msg); err != nil {
				got <- "read: " + err.Error()
				return
			}
			if extra, _ := r.Peek(1); len(extra) > 0 {
				got <- "bytes after the counted message"
				return
			}
			got <- string(msg)
		}()
		return got
	}
	t.Run("tcp octet counting", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := tcpReceive(t, ln)
		cfg := monitor.SinkConfig{Host: "127.0.0.1", Port: portOf(t, ln.Addr().String()), Network: "tcp", Facility: "auth"}
		m := testMessage()
		m.Severity = monitor.Critical
		if err := s.Send(context.Background(), monitor.KindSyslog, cfg, m); err != nil {
			t.Fatal(err)
		}
		msg := <-got
		if !strings.HasPrefix(msg, "<34>1 ") { // auth (4) * 8 + critical (2)
			t.Fatalf("message %q", msg)
		}
		checkSyslog(t, msg, 34, "critical")
	})
	t.Run("tls", func(t *testing.T) {
		certSrv := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate of 127.0.0.1
		defer certSrv.Close()
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: certSrv.TLS.Certificates})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := tcpReceive(t, ln)
		pool := x509.NewCertPool()
		pool.AddCert(certSrv.Certificate())
		ts := monitor.NewSender(monitor.SenderOptions{Timeout: 2 * time.Second, Now: func() time.Time { return sendT0 }, Hostname: "node-1", RootCAs: pool})
		cfg := monitor.SinkConfig{Host: "127.0.0.1", Port: portOf(t, ln.Addr().String()), Network: "tls", Facility: "local0"}
		if err := ts.Send(context.Background(), monitor.KindSyslog, cfg, testMessage()); err != nil {
			t.Fatal(err)
		}
		checkSyslog(t, <-got, 131, "high")
		// Without the CA the server is not trusted.
		got = tcpReceive(t, ln)
		if err := s.Send(context.Background(), monitor.KindSyslog, cfg, testMessage()); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("untrusted syslog server: %v", err)
		}
		<-got
	})
}

package monitor

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/store"
)

// Message is what a sink sends about one alert. It holds no personal
// value: the actor is a user id, evidence audit sequence numbers, details
// what the rule recorded (never personal values).
type Message struct {
	ID       string
	Rule     string
	Severity string
	ActorID  string
	Status   string
	At       time.Time
	Evidence []int64
	Details  map[string]any
	// Test marks the message an administrator sends to try a sink.
	Test bool
}

// MessageOf turns a stored alert into a message.
func MessageOf(a store.Alert) Message {
	m := Message{ID: a.ID, Rule: a.Rule, Severity: a.Severity, ActorID: a.ActorID, Status: a.Status, At: a.At}
	_ = json.Unmarshal([]byte(a.Evidence), &m.Evidence)
	_ = json.Unmarshal([]byte(a.Details), &m.Details)
	return m
}

// TestMessage is the message sent by "try this sink".
func TestMessage(id string, now time.Time) Message {
	return Message{ID: id, Rule: RuleTest, Severity: Info, Status: "test", At: now.UTC(), Evidence: []int64{},
		Details: map[string]any{"note": "sent by an administrator to test this sink"}, Test: true}
}

// WebhookPayload is the JSON body of a webhook delivery.
type WebhookPayload struct {
	ID       string         `json:"id"`
	Rule     string         `json:"rule"`
	Severity string         `json:"severity"`
	ActorID  string         `json:"actor_id"`
	Status   string         `json:"status"`
	At       time.Time      `json:"at"`
	Evidence []int64        `json:"evidence"`
	Details  map[string]any `json:"details"`
	Title    Title          `json:"title"`
	Test     bool           `json:"test,omitempty"`
}

func (m Message) payload() WebhookPayload {
	p := WebhookPayload{ID: m.ID, Rule: m.Rule, Severity: m.Severity, ActorID: m.ActorID, Status: m.Status, At: m.At.UTC(),
		Evidence: m.Evidence, Details: m.Details, Title: TitleOf(m.Rule), Test: m.Test}
	if p.Evidence == nil {
		p.Evidence = []int64{}
	}
	if p.Details == nil {
		p.Details = map[string]any{}
	}
	return p
}

// Webhook headers.
const (
	HeaderTimestamp = "X-Custos-Timestamp" // unix seconds
	HeaderSignature = "X-Custos-Signature" // "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderAlertID   = "X-Custos-Alert-Id"  // the same for every retry: an idempotency key
)

// Sign returns the X-Custos-Signature value of body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify is what a receiver does: it checks signature against body and
// timestamp with the shared secret, in constant time, and refuses a
// timestamp further than skew from now (replays).
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, skew time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return errors.New("timestamp too old or in the future")
	}
	if !hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature)) {
		return errors.New("signature mismatch")
	}
	return nil
}

// SenderOptions configure a Sender.
type SenderOptions struct {
	// Timeout bounds one delivery (default 10s).
	Timeout time.Duration
	// RootCAs verifies TLS servers (nil: the system's roots). Tests set it.
	RootCAs *x509.CertPool
	// Now is the clock of signatures and syslog (default time.Now).
	Now func() time.Time
	// Hostname names this node in syslog messages (default os.Hostname).
	Hostname string
}

// Sender delivers messages to sinks.
type Sender struct {
	o    SenderOptions
	http *http.Client
}

// NewSender returns a Sender.
func NewSender(o SenderOptions) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	tr.MaxIdleConnsPerHost = 4
	client := &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		// A signed alert goes where it was configured to go, not where a
		// redirect points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Sender{o: o, http: client}
}

// CloseIdleConnections closes the HTTP connections kept for reuse.
func (s *Sender) CloseIdleConnections() { s.http.CloseIdleConnections() }

// SendError is a failed delivery. Its text holds no secret of the sink.
type SendError struct{ msg string }

func (e *SendError) Error() string { return e.msg }

// Send delivers m to a sink of kind with cfg, within the timeout. The
// error, if any, is a *SendError free of the sink's secrets.
func (s *Sender) Send(ctx context.Context, kind string, cfg SinkConfig, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	var err error
	switch kind {
	case KindWebhook:
		err = s.webhook(ctx, cfg, m)
	case KindWeCom:
		err = s.robot(ctx, cfg.URL, map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": markdownWeCom(m)}}, true)
	case KindDingTalk:
		err = s.dingtalk(ctx, cfg, m)
	case KindSlack:
		err = s.robot(ctx, cfg.URL, map[string]any{"text": textSlack(m)}, false)
	case KindSMTP:
		err = s.smtp(ctx, cfg, m)
	case KindSyslog:
		err = s.syslog(ctx, cfg, m)
	default:
		err = fmt.Errorf("unknown sink kind %q", kind)
	}
	if err == nil {
		return nil
	}
	return &SendError{msg: newRedactor(cfg).clean(err.Error())}
}

func (s *Sender) webhook(ctx context.Context, cfg SinkConfig, m Message) error {
	body, err := json.Marshal(m.payload())
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(s.o.Now().Unix(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Sign([]byte(cfg.Secret), ts, body))
	h.Set(HeaderAlertID, m.ID)
	_, err = s.post(ctx, cfg.URL, h, body)
	return err
}

func (s *Sender) dingtalk(ctx context.Context, cfg SinkConfig, m Message) error {
	target := cfg.URL
	if cfg.Secret != "" {
		// 加签: HMAC-SHA256(secret, timestamp + "\n" + secret), base64,
		// passed with the millisecond timestamp in the query.
		u, err := url.Parse(cfg.URL)
		if err != nil {
			return errors.New("malformed URL")
		}
		ts := strconv.FormatInt(s.o.Now().UnixMilli(), 10)
		q := u.Query()
		q.Set("timestamp", ts)
		q.Set("sign", DingTalkSign(cfg.Secret, ts))
		u.RawQuery = q.Encode()
		target = u.String()
	}
	title := TitleOf(m.Rule)
	msg := map[string]any{"msgtype": "markdown", "markdown": map[string]any{
		"title": fmt.Sprintf("[%s] %s", strings.ToUpper(m.Severity), title.Zh),
		"text":  markdownDingTalk(m),
	}}
	return s.robot(ctx, target, msg, true)
}

// DingTalkSign is DingTalk's robot signature of a millisecond timestamp.
func DingTalkSign(secret, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// robot posts a JSON message to a chat robot; errcode set means its JSON
// answer must say errcode 0 (WeCom and DingTalk answer 200 with an error
// code when they refuse a message).
func (s *Sender) robot(ctx context.Context, target string, msg any, errcode bool) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := s.post(ctx, target, h, body)
	if err != nil || !errcode {
		return err
	}
	var ans struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(resp, &ans); err != nil || ans.ErrCode == nil {
		return errors.New("the robot's answer is not the JSON it should be (is the URL right?)")
	}
	if *ans.ErrCode != 0 {
		// Some robots echo the request's query (key, signature) back.
		msg := ans.ErrMsg
		if u, err := url.Parse(target); err == nil && u.RawQuery != "" {
			msg = strings.ReplaceAll(msg, u.RawQuery, "[redacted]")
		}
		return fmt.Errorf("the robot refused the message: errcode %d: %s", *ans.ErrCode, truncateUTF8(msg, 120))
	}
	return nil
}

// post sends body and returns the answer's body (at most 64 KiB) when the
// status is 2xx. Its errors name the host, never the URL (which may carry
// a key).
func (s *Sender) post(ctx context.Context, target string, h http.Header, body []byte) ([]byte, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, errors.New("malformed URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("malformed URL")
	}
	req.Header = h
	req.Header.Set("User-Agent", "Custos-Alerts/1")
	resp, err := s.http.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("post to %s: no answer within %s", u.Host, s.o.Timeout)
		}
		return nil, fmt.Errorf("post to %s: %v", u.Host, err)
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("post to %s: reading the answer: %v", u.Host, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("post to %s: HTTP %d", u.Host, resp.StatusCode)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			msg += " (redirects are not followed: configure the final URL)"
		}
		return nil, errors.New(msg)
	}
	return ans, nil
}

// --- text formats -------------------------------------------------------------

// msgLine is one labelled line of a message.
type msgLine struct{ en, zh, value string }

func (m Message) lines() []msgLine {
	ls := []msgLine{{"Rule", "规则", m.Rule}, {"Severity", "级别", m.Severity + " / " + severityZh[m.Severity]}}
	if m.ActorID != "" {
		ls = append(ls, msgLine{"User", "用户", m.ActorID})
	}
	ls = append(ls, msgLine{"Time", "时间", m.At.UTC().Format("2006-01-02 15:04:05 UTC")})
	if len(m.Evidence) > 0 {
		ls = append(ls, msgLine{"Evidence", "证据", evidenceText(m.Evidence)})
	}
	if d := detailsText(m.Details); d != "" {
		ls = append(ls, msgLine{"Details", "详情", d})
	}
	ls = append(ls, msgLine{"Status", "状态", m.Status}, msgLine{"Alert", "告警", m.ID})
	return ls
}

func evidenceText(ev []int64) string {
	const most = 20
	parts := make([]string, 0, min(len(ev), most))
	for i, seq := range ev {
		if i == most {
			break
		}
		parts = append(parts, "#"+strconv.FormatInt(seq, 10))
	}
	s := "audit " + strings.Join(parts, ", ")
	if len(ev) > most {
		s += fmt.Sprintf(" (+%d more)", len(ev)-most)
	}
	return s
}

func detailsText(d map[string]any) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v, ok := d[k].(string)
		if !ok {
			b, _ := json.Marshal(d[k])
			v = string(b)
		}
		parts = append(parts, k+"="+v)
	}
	return truncateUTF8(strings.Join(parts, ", "), 500)
}

// Subject is the one-line bilingual title of m (e-mail subject).
func (m Message) Subject() string {
	t := TitleOf(m.Rule)
	return fmt.Sprintf("[Custos][%s] %s / %s", strings.ToUpper(m.Severity), t.En, t.Zh)
}

// PlainText is m as plain text (e-mail body).
func (m Message) PlainText() string {
	t := TitleOf(m.Rule)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\n\n", t.En, t.Zh)
	for _, l := range m.lines() {
		fmt.Fprintf(&b, "%s / %s: %s\n", l.en, l.zh, l.value)
	}
	b.WriteString("\nHandle it with `custos alerts` or GET /api/v1/alerts.\n请使用 `custos alerts` 或 GET /api/v1/alerts 处理此告警。\n")
	return b.String()
}

// Robots cap message sizes (WeCom: 4096 bytes of markdown).
const maxRobotText = 3800

var wecomColor = map[string]string{Critical: "warning", High: "warning", Medium: "comment", Low: "info", Info: "info"}

func markdownWeCom(m Message) string {
	t := TitleOf(m.Rule)
	var b strings.Builder
	fmt.Fprintf(&b, "**<font color=\"%s\">[%s]</font> %s**\n%s\n", wecomColor[m.Severity], strings.ToUpper(m.Severity), t.Zh, t.En)
	for _, l := range m.lines() {
		fmt.Fprintf(&b, "> %s %s: `%s`\n", l.zh, l.en, l.value)
	}
	return truncateUTF8(b.String(), maxRobotText)
}

func markdownDingTalk(m Message) string {
	t := TitleOf(m.Rule)
	var b strings.Builder
	fmt.Fprintf(&b, "#### [%s] %s\n\n%s\n\n", strings.ToUpper(m.Severity), t.Zh, t.En)
	for _, l := range m.lines() {
		fmt.Fprintf(&b, "- %s %s: %s\n", l.zh, l.en, l.value)
	}
	return truncateUTF8(b.String(), maxRobotText)
}

// slackEscape escapes Slack's control characters.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func textSlack(m Message) string {
	t := TitleOf(m.Rule)
	var b strings.Builder
	fmt.Fprintf(&b, "*[%s] %s* / %s\n", strings.ToUpper(m.Severity), slackEscape.Replace(t.En), slackEscape.Replace(t.Zh))
	for _, l := range m.lines() {
		fmt.Fprintf(&b, "• %s / %s: `%s`\n", l.en, l.zh, slackEscape.Replace(l.value))
	}
	return truncateUTF8(b.String(), maxRobotText)
}

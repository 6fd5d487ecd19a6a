package monitor

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// syslogSeverity maps alert severities to syslog severities (RFC 5424
// table 2): critical 2 (critical), high 3 (error), medium 4 (warning),
// low 5 (notice), info 6 (informational).
var syslogSeverity = map[string]int{Critical: 2, High: 3, Medium: 4, Low: 5, Info: 6}

// SyslogSDID is the SD-ID of the structured data element of an alert. RFC
// 5424 wants private SD-IDs as name@<private enterprise number>; Custos has
// none registered and uses 32473, the number RFC 5612 reserves for
// documentation and examples.
const SyslogSDID = "custos@32473"

// syslog sends m as one RFC 5424 message: structured data with the alert's
// fields and, as MSG, the same JSON as the webhook (non-ASCII escaped, so
// MSG is plain ASCII and needs no BOM). TCP and TLS frame it by octet
// counting (RFC 6587 / RFC 5425).
func (s *Sender) syslog(ctx context.Context, cfg SinkConfig, m Message) error {
	msg, err := s.SyslogMessage(cfg.Facility, m)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	var conn net.Conn
	d := &net.Dialer{}
	switch cfg.Network {
	case "udp":
		conn, err = d.DialContext(ctx, "udp", addr)
	case "tcp":
		conn, err = d.DialContext(ctx, "tcp", addr)
	case "tls":
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: cfg.Host, RootCAs: s.o.RootCAs, MinVersion: tls.VersionTLS12}}
		conn, err = td.DialContext(ctx, "tcp", addr)
	default:
		return fmt.Errorf("syslog: unknown network %q", cfg.Network)
	}
	if err != nil {
		return fmt.Errorf("syslog %s %s: %w", cfg.Network, addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	frame := msg
	if cfg.Network != "udp" {
		frame = append([]byte(strconv.Itoa(len(msg))+" "), msg...)
	}
	if _, err := conn.Write(frame); err != nil {
		return fmt.Errorf("syslog %s %s: %w", cfg.Network, addr, err)
	}
	return nil
}

// SyslogMessage formats m as an RFC 5424 message (without framing).
func (s *Sender) SyslogMessage(facility string, m Message) ([]byte, error) {
	fac, ok := facilities[facility]
	if !ok {
		fac = facilities[DefaultFacility]
	}
	sev, ok := syslogSeverity[m.Severity]
	if !ok {
		sev = 2
	}
	body, err := asciiJSON(m.payload())
	if err != nil {
		return nil, err
	}
	msgID := "alert"
	if m.Test {
		msgID = "test"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s custos %d %s [%s", fac*8+sev, m.At.UTC().Format("2006-01-02T15:04:05.000000Z"),
		syslogName(s.o.Hostname, 255), os.Getpid(), msgID, SyslogSDID)
	ev := make([]string, len(m.Evidence))
	for i, seq := range m.Evidence {
		ev[i] = strconv.FormatInt(seq, 10)
	}
	for _, p := range [][2]string{{"id", m.ID}, {"rule", m.Rule}, {"severity", m.Severity}, {"actor_id", m.ActorID},
		{"status", m.Status}, {"evidence", strings.Join(ev, ",")}} {
		fmt.Fprintf(&b, ` %s="%s"`, p[0], sdEscape.Replace(p[1]))
	}
	b.WriteString("] ")
	b.Write(body)
	return b.Bytes(), nil
}

// sdEscape escapes an SD-PARAM value (RFC 5424 section 6.3.3).
var sdEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)

// syslogName keeps the printable ASCII of s (at most n bytes), or "-".
func syslogName(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r > 32 && r < 127 && b.Len() < n {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// asciiJSON marshals v with every non-ASCII character escaped as \uXXXX.
func asciiJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for len(raw) > 0 {
		r, size := utf8.DecodeRune(raw)
		switch {
		case r < utf8.RuneSelf:
			b.WriteByte(raw[0])
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		raw = raw[size:]
	}
	return b.Bytes(), nil
}

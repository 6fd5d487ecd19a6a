package monitor

import (
	"context"
	"crypto/tls"
	"fmt"

	mail "github.com/wneessen/go-mail"
)

// smtp sends m as a UTF-8 plain-text e-mail (bilingual subject and body).
func (s *Sender) smtp(ctx context.Context, cfg SinkConfig, m Message) error {
	opts := []mail.Option{
		mail.WithPort(cfg.Port),
		mail.WithTimeout(s.o.Timeout),
		mail.WithTLSConfig(&tls.Config{ServerName: cfg.Host, RootCAs: s.o.RootCAs, MinVersion: tls.VersionTLS12}),
		mail.WithHELO(heloName(s.o.Hostname)),
	}
	switch cfg.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if cfg.Username != "" {
		auth := mail.SMTPAuthAutoDiscover
		if cfg.TLS == "none" {
			// Loopback only (checked by Validate); PLAIN is allowed there.
			auth = mail.SMTPAuthPlain
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	c, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	msg := mail.NewMsg(mail.WithCharset(mail.CharsetUTF8), mail.WithEncoding(mail.EncodingQP))
	if err := msg.From(cfg.From); err != nil {
		return fmt.Errorf("smtp: sender address: %w", err)
	}
	if err := msg.To(cfg.To...); err != nil {
		return fmt.Errorf("smtp: recipient address: %w", err)
	}
	msg.Subject(m.Subject())
	msg.SetDateWithValue(s.o.Now())
	msg.SetMessageID()
	msg.SetGenHeader(HeaderAlertID, m.ID)
	msg.SetBodyString(mail.TypeTextPlain, m.PlainText())
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp %s: %w", cfg.Host, err)
	}
	return nil
}

// heloName is the name this node gives in HELO: its host name when it is
// a plausible one.
func heloName(host string) string {
	if host == "" || len(host) > 253 {
		return "localhost"
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return "localhost"
		}
	}
	return host
}

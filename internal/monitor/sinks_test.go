package monitor_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/seal"
)

func TestSinkConfigValidate(t *testing.T) {
	const secret = "0123456789abcdef"
	cases := []struct {
		name, kind string
		cfg        monitor.SinkConfig
		bad        string // the field named in the error; "" for valid
	}{
		{"webhook", monitor.KindWebhook, monitor.SinkConfig{URL: "https://hooks.example.com/custos", Secret: secret}, ""},
		{"webhook on loopback http", monitor.KindWebhook, monitor.SinkConfig{URL: "http://127.0.0.1:9000/x", Secret: secret}, ""},
		{"webhook over plain http", monitor.KindWebhook, monitor.SinkConfig{URL: "http://hooks.example.com/x", Secret: secret}, "url"},
		{"webhook without secret", monitor.KindWebhook, monitor.SinkConfig{URL: "https://hooks.example.com/x"}, "secret"},
		{"webhook short secret", monitor.KindWebhook, monitor.SinkConfig{URL: "https://hooks.example.com/x", Secret: "short"}, "secret"},
		{"webhook with user info", monitor.KindWebhook, monitor.SinkConfig{URL: "https://u:p@hooks.example.com/x", Secret: secret}, "url"},
		{"webhook ftp", monitor.KindWebhook, monitor.SinkConfig{URL: "ftp://hooks.example.com/x", Secret: secret}, "url"},
		{"webhook with smtp host", monitor.KindWebhook, monitor.SinkConfig{URL: "https://hooks.example.com/x", Secret: secret, Host: "mail"}, "host"},
		{"wecom", monitor.KindWeCom, monitor.SinkConfig{URL: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"}, ""},
		{"wecom with secret", monitor.KindWeCom, monitor.SinkConfig{URL: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", Secret: secret}, "secret"},
		{"dingtalk signed", monitor.KindDingTalk, monitor.SinkConfig{URL: "https://oapi.dingtalk.com/robot/send?access_token=abc", Secret: "SECabc"}, ""},
		{"slack without url", monitor.KindSlack, monitor.SinkConfig{}, "url"},
		{"smtp", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", From: "custos@example.com", To: []string{"sec@example.com"}, Username: "custos", Password: "pw"}, ""},
		{"smtp none on loopback", monitor.KindSMTP, monitor.SinkConfig{Host: "127.0.0.1", TLS: "none", From: "custos@example.com", To: []string{"sec@example.com"}}, ""},
		{"smtp none elsewhere", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", TLS: "none", From: "custos@example.com", To: []string{"sec@example.com"}}, "tls"},
		{"smtp bad tls", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", TLS: "ssl3", From: "custos@example.com", To: []string{"sec@example.com"}}, "tls"},
		{"smtp no recipients", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", From: "custos@example.com"}, "to"},
		{"smtp bad recipient", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", From: "custos@example.com", To: []string{"not an address"}}, "to"},
		{"smtp header injection", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", From: "custos@example.com\r\nBcc: x@evil.example", To: []string{"a@example.com"}}, "from"},
		{"smtp password without user", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", From: "c@example.com", To: []string{"a@example.com"}, Password: "pw"}, "username"},
		{"smtp user without password", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", From: "c@example.com", To: []string{"a@example.com"}, Username: "u"}, "password"},
		{"smtp with url", monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", From: "c@example.com", To: []string{"a@example.com"}, URL: "https://x"}, "url"},
		{"syslog", monitor.KindSyslog, monitor.SinkConfig{Host: "siem.example.com"}, ""},
		{"syslog udp", monitor.KindSyslog, monitor.SinkConfig{Host: "10.0.0.5", Network: "udp", Facility: "security"}, ""},
		{"syslog bad network", monitor.KindSyslog, monitor.SinkConfig{Host: "siem.example.com", Network: "http"}, "network"},
		{"syslog bad facility", monitor.KindSyslog, monitor.SinkConfig{Host: "siem.example.com", Facility: "local9"}, "facility"},
		{"syslog bad port", monitor.KindSyslog, monitor.SinkConfig{Host: "siem.example.com", Port: 70000}, "port"},
		{"syslog bad host", monitor.KindSyslog, monitor.SinkConfig{Host: "siem example"}, "host"},
		{"unknown kind", "pager", monitor.SinkConfig{}, "kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Normalize(c.kind)
			err := cfg.Validate(c.kind)
			if c.bad == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			var ps monitor.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error %v, want Problems naming %s", err, c.bad)
			}
			found := false
			for _, p := range ps {
				found = found || p.Field == c.bad
				for _, v := range []string{c.cfg.Secret, c.cfg.Password, c.cfg.URL} {
					if v != "" && strings.Contains(p.Message, v) {
						t.Fatalf("the message %q echoes a value", p.Message)
					}
				}
			}
			if !found {
				t.Fatalf("problems %v do not name %s", ps, c.bad)
			}
		})
	}
}

func TestSinkDefaultsAndTarget(t *testing.T) {
	cases := []struct {
		kind   string
		cfg    monitor.SinkConfig
		target string
	}{
		{monitor.KindWebhook, monitor.SinkConfig{URL: "https://hooks.example.com:8443/custos?token=s3cret"}, "https://hooks.example.com:8443"},
		{monitor.KindWeCom, monitor.SinkConfig{URL: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=s3cret"}, "qyapi.weixin.qq.com"},
		{monitor.KindSlack, monitor.SinkConfig{URL: "https://hooks.slack.com/services/T0/B0/s3cret"}, "hooks.slack.com"},
		{monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", To: []string{"a@example.com", "b@example.com"}}, "smtp://smtp.example.com:587 (starttls, 2 recipient(s))"},
		{monitor.KindSMTP, monitor.SinkConfig{Host: "smtp.example.com", TLS: "tls"}, "smtp://smtp.example.com:465 (tls, 0 recipient(s))"},
		{monitor.KindSyslog, monitor.SinkConfig{Host: "siem.example.com"}, "tcp://siem.example.com:514 (local0)"},
		{monitor.KindSyslog, monitor.SinkConfig{Host: "::1", Network: "tls"}, "tls://[::1]:6514 (local0)"},
	}
	for _, c := range cases {
		cfg := c.cfg
		cfg.Normalize(c.kind)
		if got := cfg.Target(c.kind); got != c.target || strings.Contains(got, "s3cret") {
			t.Errorf("%s target %q, want %q", c.kind, got, c.target)
		}
	}
}

func TestSinkConfigMergeKeepsSecrets(t *testing.T) {
	old := monitor.SinkConfig{URL: "https://hooks.example.com/a", Secret: "old secret 0123456"}
	got := old.Merge(monitor.SinkConfig{URL: "https://hooks.example.com/b"})
	if got.URL != "https://hooks.example.com/b" || got.Secret != old.Secret {
		t.Fatalf("merge %+v", got)
	}
	smtp := monitor.SinkConfig{Host: "a", Port: 25, To: []string{"x@example.com"}, Password: "pw"}
	got = smtp.Merge(monitor.SinkConfig{Port: 2525, To: []string{"y@example.com"}})
	if got.Port != 2525 || got.To[0] != "y@example.com" || got.Password != "pw" || got.Host != "a" {
		t.Fatalf("merge %+v", got)
	}
}

func TestSealedConfigIsBoundToItsSink(t *testing.T) {
	key, err := seal.RandomKey(1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := monitor.SinkConfig{URL: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=s3cret-key"}
	ct, err := monitor.SealConfig(seal.GCM{}, key, "ops", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ct), "s3cret-key") {
		t.Fatal("the sealed config holds the key in plaintext")
	}
	got, err := monitor.OpenConfig(seal.GCM{}, key, "ops", ct)
	if err != nil || got.URL != cfg.URL {
		t.Fatalf("OpenConfig = %+v, %v", got.URL, err)
	}
	if _, err := monitor.OpenConfig(seal.GCM{}, key, "other", ct); err == nil {
		t.Fatal("a config copied to another sink opened")
	}
}

func TestTitles(t *testing.T) {
	for _, rule := range []string{monitor.RuleRevealQuota, monitor.RuleSelfGrant, monitor.RuleAuditChainBroken, "auth.brute_force",
		"monitor.bulk_view", "monitor.bulk_view_suspended", "access.probing", "reveal.burst", "export.large", "auth.new_ip",
		"auth.odd_hours", "auth.dormant_account", "access.after_role_change", "backup.failed", "backup.stale"} {
		ti := monitor.TitleOf(rule)
		if ti.En == rule || ti.Zh == rule || ti.En == "" || ti.Zh == "" {
			t.Errorf("rule %s has no title: %+v", rule, ti)
		}
	}
	if ti := monitor.TitleOf("some.new_rule"); ti.En != "some.new_rule" || ti.Zh != "some.new_rule" {
		t.Errorf("unknown rule title %+v", ti)
	}
}

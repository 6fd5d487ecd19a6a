package monitor

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/custos/custos/internal/seal"
)

// Sink kinds.
const (
	KindWebhook  = "webhook"  // JSON, HMAC-SHA256 signed
	KindWeCom    = "wecom"    // 企业微信群机器人 (markdown)
	KindDingTalk = "dingtalk" // 钉钉群机器人 (markdown, optional signing)
	KindSlack    = "slack"    // Slack-compatible incoming webhook
	KindSMTP     = "smtp"     // e-mail
	KindSyslog   = "syslog"   // RFC 5424 over UDP, TCP or TLS
)

// Kinds lists the sink kinds.
var Kinds = []string{KindWebhook, KindWeCom, KindDingTalk, KindSlack, KindSMTP, KindSyslog}

// Severities from the least to the most severe.
var Severities = []string{Info, Low, Medium, High, Critical}

// SeverityRank orders severities (info 0 ... critical 4); ok is false for
// an unknown one.
func SeverityRank(s string) (rank int, ok bool) {
	i := slices.Index(Severities, s)
	return i, i >= 0
}

// severitiesUpTo lists the severities at or below s: the minimum severities
// of the sinks that want an alert of severity s. An unknown severity goes
// to every sink (better one message too many than a lost alert).
func severitiesUpTo(s string) []string {
	i, ok := SeverityRank(s)
	if !ok {
		i = len(Severities) - 1
	}
	return Severities[:i+1]
}

// SinkConfig is everything a sink needs to send, secrets included. It is
// stored only sealed (AAD bound to the sink's name) and never returned by
// the API; String, Format and LogValue print it redacted.
type SinkConfig struct {
	// URL: webhook, wecom, dingtalk and slack. A robot's URL carries its
	// key, so it is a secret as a whole.
	URL string `json:"url,omitempty"`
	// Secret: the webhook's HMAC key, or DingTalk's signing secret.
	Secret string `json:"secret,omitempty"`
	// Host and Port: smtp and syslog.
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`
	// TLS: smtp only: starttls (default), tls, or none (loopback only).
	TLS      string   `json:"tls,omitempty"`
	Username string   `json:"username,omitempty"`
	Password string   `json:"password,omitempty"`
	From     string   `json:"from,omitempty"`
	To       []string `json:"to,omitempty"`
	// Network and Facility: syslog only. Network is udp, tcp (default) or
	// tls; Facility a name such as local0 (default) or auth.
	Network  string `json:"network,omitempty"`
	Facility string `json:"facility,omitempty"`
}

// String prints the kind of settings, never their values.
func (c SinkConfig) String() string { return "monitor.SinkConfig{redacted}" }

// Format implements fmt.Formatter so that every verb redacts.
func (c SinkConfig) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue implements slog.LogValuer.
func (c SinkConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// SinkProblem is one invalid setting of a sink. Message never holds the value.
type SinkProblem struct {
	Field   string
	Message string
}

// Problems is a list of invalid settings; as an error it names them all.
type Problems []SinkProblem

func (ps Problems) Error() string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Field + ": " + p.Message
	}
	return "invalid sink: " + strings.Join(parts, "; ")
}

func (ps *Problems) add(field, format string, args ...any) {
	*ps = append(*ps, SinkProblem{Field: field, Message: fmt.Sprintf(format, args...)})
}

var sinkName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,47}$`)

// ValidSinkName reports whether name may name a sink: 1-48 characters of
// a-z, 0-9, '_', '.', '-', starting with a letter or digit.
func ValidSinkName(name string) bool { return sinkName.MatchString(name) }

// syslog facilities by name (RFC 5424 section 6.2.1).
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8, "cron": 9,
	"authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// DefaultFacility is the syslog facility of alerts unless configured:
// local0, one of the facilities reserved for local use, so a SIEM rule such
// as "local0.* @@siem:6514" routes Custos alerts without catching the
// operating system's own auth messages.
const DefaultFacility = "local0"

// Normalize fills in defaults (ports, TLS mode, syslog network and
// facility) and trims spaces, so that what is stored is what is used.
func (c *SinkConfig) Normalize(kind string) {
	c.URL, c.Host, c.From = strings.TrimSpace(c.URL), strings.TrimSpace(c.Host), strings.TrimSpace(c.From)
	c.TLS, c.Network, c.Facility = strings.ToLower(strings.TrimSpace(c.TLS)), strings.ToLower(strings.TrimSpace(c.Network)), strings.ToLower(strings.TrimSpace(c.Facility))
	for i, to := range c.To {
		c.To[i] = strings.TrimSpace(to)
	}
	switch kind {
	case KindSMTP:
		if c.TLS == "" {
			c.TLS = "starttls"
		}
		if c.Port == 0 {
			c.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[c.TLS]
		}
	case KindSyslog:
		if c.Network == "" {
			c.Network = "tcp"
		}
		if c.Facility == "" {
			c.Facility = DefaultFacility
		}
		if c.Port == 0 {
			c.Port = 514
			if c.Network == "tls" {
				c.Port = 6514
			}
		}
	}
}

// Validate checks c for a sink of kind; call Normalize first.
func (c SinkConfig) Validate(kind string) error {
	var ps Problems
	unused := func(field string, set bool) {
		if set {
			ps.add(field, "is not used by %s sinks", kind)
		}
	}
	switch kind {
	case KindWebhook, KindWeCom, KindDingTalk, KindSlack:
		checkURL(&ps, c.URL)
		switch kind {
		case KindWebhook:
			if len(c.Secret) < 16 {
				ps.add("secret", "is required: at least 16 characters, shared with the receiver to verify signatures")
			}
		case KindDingTalk:
			// the signing secret is optional (加签)
		default:
			unused("secret", c.Secret != "")
		}
		unused("host", c.Host != "")
		unused("port", c.Port != 0)
		unused("tls", c.TLS != "")
		unused("username", c.Username != "")
		unused("password", c.Password != "")
		unused("from", c.From != "")
		unused("to", len(c.To) > 0)
		unused("network", c.Network != "")
		unused("facility", c.Facility != "")
	case KindSMTP:
		checkHost(&ps, c.Host, c.Port)
		switch c.TLS {
		case "starttls", "tls":
		case "none":
			if !isLoopback(c.Host) {
				ps.add("tls", "none is allowed only for a loopback server (127.0.0.1, ::1, localhost): use starttls or tls")
			}
		default:
			ps.add("tls", "must be starttls, tls or none")
		}
		if c.Username == "" && c.Password != "" {
			ps.add("username", "is required with a password")
		}
		if c.Username != "" && c.Password == "" {
			ps.add("password", "is required with a username")
		}
		if len(c.Username) > 256 || strings.ContainsAny(c.Username, "\r\n") {
			ps.add("username", "must be one line of at most 256 characters")
		}
		if a, err := mail.ParseAddress(c.From); err != nil || a.Name != "" || strings.ContainsAny(c.From, "\r\n") {
			ps.add("from", "must be one e-mail address such as custos@example.com")
		}
		if len(c.To) == 0 || len(c.To) > 50 {
			ps.add("to", "must list 1 to 50 e-mail addresses")
		}
		for _, to := range c.To {
			if a, err := mail.ParseAddress(to); err != nil || a.Name != "" || strings.ContainsAny(to, "\r\n") {
				ps.add("to", "must hold plain e-mail addresses such as security@example.com")
				break
			}
		}
		unused("url", c.URL != "")
		unused("secret", c.Secret != "")
		unused("network", c.Network != "")
		unused("facility", c.Facility != "")
	case KindSyslog:
		checkHost(&ps, c.Host, c.Port)
		if !slices.Contains([]string{"udp", "tcp", "tls"}, c.Network) {
			ps.add("network", "must be udp, tcp or tls")
		}
		if _, ok := facilities[c.Facility]; !ok {
			ps.add("facility", "must be a syslog facility name such as local0, auth or security")
		}
		unused("url", c.URL != "")
		unused("secret", c.Secret != "")
		unused("tls", c.TLS != "")
		unused("username", c.Username != "")
		unused("password", c.Password != "")
		unused("from", c.From != "")
		unused("to", len(c.To) > 0)
	default:
		ps.add("kind", "must be one of %s", strings.Join(Kinds, ", "))
	}
	if len(c.Secret) > 1024 || len(c.Password) > 1024 || strings.ContainsAny(c.Secret+c.Password, "\r\n") {
		ps.add("secret", "must be one line of at most 1024 characters")
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func checkURL(ps *Problems, raw string) {
	if raw == "" {
		ps.add("url", "is required")
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || len(raw) > 2048:
		ps.add("url", "must be an absolute http(s) URL of at most 2048 characters")
	case u.User != nil:
		ps.add("url", "must not carry a user name or password")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		ps.add("url", "must use https (plain http only to a loopback address)")
	default:
		ps.add("url", "must be an http(s) URL")
	}
}

func checkHost(ps *Problems, host string, port int) {
	if host == "" || len(host) > 253 || strings.ContainsAny(host, " /:@\r\n") && net.ParseIP(host) == nil {
		ps.add("host", "must be a host name or IP address")
	}
	if port < 1 || port > 65535 {
		ps.add("port", "must be from 1 to 65535")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Target describes where a sink sends without revealing any secret: a
// robot's host only (its URL carries the key), a webhook's scheme, host and
// port, a mail or syslog server's address. Recipients are not shown.
func (c SinkConfig) Target(kind string) string {
	switch kind {
	case KindWebhook:
		if u, err := url.Parse(c.URL); err == nil {
			return u.Scheme + "://" + u.Host
		}
	case KindWeCom, KindDingTalk, KindSlack:
		if u, err := url.Parse(c.URL); err == nil {
			return u.Hostname()
		}
	case KindSMTP:
		return fmt.Sprintf("smtp://%s (%s, %d recipient(s))", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.TLS, len(c.To))
	case KindSyslog:
		return fmt.Sprintf("%s://%s (%s)", c.Network, net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.Facility)
	}
	return ""
}

// Merge overlays the settings set in patch on c (empty values keep c's):
// a sink's secrets need not be sent again to change another setting.
func (c SinkConfig) Merge(patch SinkConfig) SinkConfig {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.URL, patch.URL)
	set(&c.Secret, patch.Secret)
	set(&c.Host, patch.Host)
	set(&c.TLS, patch.TLS)
	set(&c.Username, patch.Username)
	set(&c.Password, patch.Password)
	set(&c.From, patch.From)
	set(&c.Network, patch.Network)
	set(&c.Facility, patch.Facility)
	if patch.Port != 0 {
		c.Port = patch.Port
	}
	if len(patch.To) > 0 {
		c.To = slices.Clone(patch.To)
	}
	return c
}

// configAAD binds a sealed configuration to its sink's name.
func configAAD(name string) seal.AAD {
	return seal.AAD{Table: "alert_sinks", Record: name, Field: "config"}
}

// SealConfig seals the configuration of sink name under key.
func SealConfig(c seal.Cipher, key seal.Key, name string, cfg SinkConfig) ([]byte, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return c.Seal(key, configAAD(name), b)
}

// OpenConfig opens the sealed configuration of sink name.
func OpenConfig(c seal.Cipher, key seal.Key, name string, ct []byte) (SinkConfig, error) {
	b, err := c.Open(key, configAAD(name), ct)
	if err != nil {
		return SinkConfig{}, err
	}
	var cfg SinkConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return SinkConfig{}, fmt.Errorf("monitor: sink %s: malformed configuration", name)
	}
	return cfg, nil
}

// KeySubject names the data key that seals one sink's configuration. Each
// sink gets a key of its own (id is random), destroyed with the sink.
func KeySubject(id string) string { return "alert_sink:" + id }

// --- redaction ---------------------------------------------------------------

// maxErrorText bounds an error text stored or logged for a sink.
const maxErrorText = 300

// redactor removes a sink's secrets from text bound for the database or
// the log: the URL whole and in parts (path, query, each query value),
// secrets and passwords, raw and URL-encoded.
type redactor struct{ secrets []string }

func newRedactor(c SinkConfig) redactor {
	var s []string
	add := func(v string, min int) {
		if v != "" && len(v) >= min {
			s = append(s, v, url.QueryEscape(v), url.PathEscape(v))
		}
	}
	add(c.URL, 1)
	add(c.Secret, 1)
	add(c.Password, 1)
	// Parts of the URL that look like keys (robots carry theirs in the
	// query or, for Slack, in the path).
	if u, err := url.Parse(c.URL); err == nil {
		add(u.RawQuery, 1)
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v, 8)
			}
		}
		for _, seg := range strings.Split(u.Path, "/") {
			add(seg, 8)
		}
	}
	// Longest first, so a URL goes before its parts.
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return redactor{secrets: slices.Compact(s)}
}

// clean returns text with every secret replaced and cut to maxErrorText.
func (r redactor) clean(text string) string {
	for _, v := range r.secrets {
		text = strings.ReplaceAll(text, v, "[redacted]")
	}
	text = strings.Join(strings.Fields(text), " ")
	return truncateUTF8(text, maxErrorText)
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

package audit

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/store"
)

// Entry is an event as exported (JSON lines, the query API, archives). It
// carries the chain hashes, so a SIEM can check the chain too. Details are
// as stored: ids, field names, counts, and personal values only sealed.
type Entry struct {
	Seq        int64           `json:"seq"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor"`
	IP         string          `json:"ip,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
	Action     string          `json:"action"`
	ObjectType string          `json:"object_type,omitempty"`
	ObjectID   string          `json:"object_id,omitempty"`
	Outcome    string          `json:"outcome"`
	Reason     string          `json:"reason,omitempty"`
	RequestID  string          `json:"request_id,omitempty"`
	Details    json.RawMessage `json:"details"`
	PrevHash   string          `json:"prev_hash"`
	Hash       string          `json:"hash"`
}

// EntryOf converts a stored event.
func EntryOf(e store.AuditEvent) Entry {
	d := json.RawMessage(e.Details)
	if !json.Valid(d) {
		d = json.RawMessage(strconv.Quote(e.Details))
	}
	return Entry{Seq: e.Seq, At: e.At, Actor: e.Actor, IP: e.IP, UserAgent: e.UserAgent, Action: e.Action,
		ObjectType: e.ObjectType, ObjectID: e.ObjectID, Outcome: e.Outcome, Reason: e.Reason, RequestID: e.RequestID,
		Details: d, PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
}

// Event converts an entry back to the stored form (archives).
func (en Entry) Event() (store.AuditEvent, error) {
	prev, err := hex.DecodeString(en.PrevHash)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("event %d: prev_hash: %w", en.Seq, err)
	}
	h, err := hex.DecodeString(en.Hash)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("event %d: hash: %w", en.Seq, err)
	}
	return store.AuditEvent{Seq: en.Seq, At: en.At.UTC(), Actor: en.Actor, IP: en.IP, UserAgent: en.UserAgent, Action: en.Action,
		ObjectType: en.ObjectType, ObjectID: en.ObjectID, Outcome: en.Outcome, Reason: en.Reason, RequestID: en.RequestID,
		Details: string(en.Details), PrevHash: prev, Hash: h}, nil
}

// Export formats.
const (
	FormatJSONL  = "jsonl"
	FormatCEF    = "cef"
	FormatSyslog = "syslog"
)

// Formats lists the export formats.
var Formats = []string{FormatJSONL, FormatCEF, FormatSyslog}

// Encoder writes events in one export format, one line each.
type Encoder struct {
	w       io.Writer
	format  string
	host    string
	version string
	buf     []byte
}

// NewEncoder returns an encoder for format ("jsonl", "cef" or "syslog");
// host names this node in syslog headers, version the product in CEF.
func NewEncoder(w io.Writer, format, host, version string) (*Encoder, error) {
	switch format {
	case FormatJSONL, FormatCEF, FormatSyslog:
	default:
		return nil, fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats, ", "))
	}
	if host == "" {
		host = "-"
	}
	if version == "" {
		version = "dev"
	}
	return &Encoder{w: w, format: format, host: host, version: version}, nil
}

// Encode writes one event.
func (en *Encoder) Encode(e store.AuditEvent) error {
	en.buf = en.buf[:0]
	switch en.format {
	case FormatJSONL:
		b, err := json.Marshal(EntryOf(e))
		if err != nil {
			return err
		}
		en.buf = append(en.buf, b...)
	case FormatCEF:
		en.buf = appendCEF(en.buf, e, en.version)
	case FormatSyslog:
		en.buf = appendSyslog(en.buf, e, en.host)
	}
	en.buf = append(en.buf, '\n')
	_, err := en.w.Write(en.buf)
	return err
}

// severity on the CEF scale (0-10) and the syslog scale (0-7).
func severity(e store.AuditEvent) (cef int, syslog int) {
	switch {
	case e.Action == "alert.raise" || e.Action == "audit.verify" && e.Outcome != OK:
		return 8, 2 // critical
	case e.Outcome == Denied:
		return 6, 4 // warning
	case e.Outcome == Failed:
		return 5, 3 // error
	}
	return 3, 6 // informational
}

var cefHeader = strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\n", " ", "\r", " ")
var cefValue = strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\n", `\n`, "\r", `\r`)

// appendCEF formats e as ArcSight Common Event Format.
func appendCEF(b []byte, e store.AuditEvent, version string) []byte {
	sev, _ := severity(e)
	b = fmt.Appendf(b, "CEF:0|Custos|Custos CRM|%s|%s|%s|%d|", flat(cefHeader.Replace(version)), flat(cefHeader.Replace(e.Action)), flat(cefHeader.Replace(e.Action)), sev)
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if b[len(b)-1] != '|' {
			b = append(b, ' ')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, flat(cefValue.Replace(v))...)
	}
	kv("rt", strconv.FormatInt(e.At.UnixMilli(), 10))
	kv("externalId", strconv.FormatInt(e.Seq, 10))
	kv("suser", e.Actor)
	kv("src", e.IP)
	kv("requestClientApplication", e.UserAgent)
	kv("act", e.Action)
	kv("outcome", e.Outcome)
	kv("reason", e.Reason)
	kv("cs1Label", "objectType")
	kv("cs1", e.ObjectType)
	kv("cs2Label", "objectId")
	kv("cs2", e.ObjectID)
	kv("cs3Label", "requestId")
	kv("cs3", e.RequestID)
	kv("cs4Label", "chainHash")
	kv("cs4", hex.EncodeToString(e.Hash))
	kv("cs5Label", "details")
	kv("cs5", e.Details)
	return b
}

var sdValue = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)

// flat replaces control characters (newlines above all) with spaces, so no
// field can start a line of its own in a line-oriented export.
func flat(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
}

// appendSyslog formats e as an RFC 5424 message (facility: log audit), with
// the event's fields as structured data and its details as the message.
func appendSyslog(b []byte, e store.AuditEvent, host string) []byte {
	_, sev := severity(e)
	const facility = 13 // log audit
	msgid := printable(e.Action, 32)
	if msgid == "" {
		msgid = "-"
	}
	b = fmt.Appendf(b, "<%d>1 %s %s custos - %s [custos@32473", facility*8+sev, e.At.UTC().Format("2006-01-02T15:04:05.000000Z"), printable(host, 255), msgid)
	param := func(k, v string) {
		if v == "" {
			return
		}
		b = fmt.Appendf(b, ` %s="%s"`, k, sdValue.Replace(flat(v)))
	}
	param("seq", strconv.FormatInt(e.Seq, 10))
	param("actor", e.Actor)
	param("ip", e.IP)
	param("outcome", e.Outcome)
	param("object_type", e.ObjectType)
	param("object_id", e.ObjectID)
	param("reason", e.Reason)
	param("request_id", e.RequestID)
	param("hash", hex.EncodeToString(e.Hash))
	b = append(b, "] "...)
	return append(b, flat(e.Details)...)
}

// printable keeps the printable US-ASCII of s (RFC 5424 header fields), at
// most n bytes.
func printable(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; c >= 33 && c <= 126 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

package audit_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/store"
)

// No user-controlled field can start a line of its own in an export: a
// forged SIEM record is impossible.
func TestExportsStayOneLinePerEvent(t *testing.T) {
	evil := "x\n<110>1 2026-01-01T00:00:00Z host custos - customer.export - forged\r\nCEF:0|Custos|Custos CRM|1|a|a|3|\u2028"
	e := store.AuditEvent{Seq: 7, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Actor: "user:" + evil, IP: "203.0.113.1", UserAgent: evil,
		Action: "role.delete", ObjectType: "role", ObjectID: evil, Outcome: "denied", Reason: evil, RequestID: evil,
		Details: `{"name":"` + strings.ReplaceAll(evil, "\n", `\n`) + `"}`, Hash: make([]byte, 32)}
	for _, f := range audit.Formats {
		var buf bytes.Buffer
		enc, err := audit.NewEncoder(&buf, f, "node\n1", "v1")
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || strings.ContainsAny(out[:len(out)-1], "\r\u2028") {
			t.Errorf("%s: one event became %d lines: %q", f, strings.Count(out, "\n"), out)
		}
	}
}

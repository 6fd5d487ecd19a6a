// Package audit appends typed events to the append-only audit trail, inside
// the same transaction as the change they record. Details carry ids, field
// names and counts — never plaintext personal values.
//
// The hash chain, signed checkpoints and verification arrive with the audit
// trail issue; the event shape and the call sites are already final.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos/custos/internal/failpoint"
	"github.com/custos/custos/internal/store"
)

// Outcomes.
const (
	OK     = "ok"
	Denied = "denied"
	Failed = "error"
)

// Event is one audit event before it is stored.
type Event struct {
	Actor      string // "user:<id>", "token:<id>", "cli:<os user>", "system", "anonymous"
	IP         string
	UserAgent  string
	RequestID  string
	Action     string // e.g. "customer.view", "customer.update", "auth.login"
	ObjectType string
	ObjectID   string
	Outcome    string
	Reason     string         // short, never personal data
	Details    map[string]any // ids, field names, counts; never personal values (use Seal)
	// Customers names every customer the event concerns (the object itself,
	// or each id a list or search returned), so that "who saw customer X" is
	// one indexed query. ObjectID is included automatically when ObjectType
	// is "customer".
	Customers []string
}

// Record appends e in tx at time now and returns its sequence number.
func Record(ctx context.Context, tx *store.Tx, now time.Time, e Event) (int64, error) {
	if e.Action == "" || e.Outcome == "" || e.Actor == "" {
		return 0, fmt.Errorf("audit: event needs actor, action and outcome")
	}
	details := "{}"
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return 0, fmt.Errorf("audit: details: %w", err)
		}
		details = string(b)
	}
	// Crash tests stop here with the change made but not its event, and
	// below with both made but not committed: either way, neither survives.
	failpoint.Hit("audit.before_append")
	seq, err := tx.AppendAudit(ctx, store.AuditEvent{
		At: now.UTC(), Actor: e.Actor, IP: e.IP, UserAgent: truncate(e.UserAgent, 256), Action: e.Action,
		ObjectType: truncate(e.ObjectType, 64), ObjectID: truncate(e.ObjectID, 256), Outcome: e.Outcome, Reason: truncate(e.Reason, 256),
		RequestID: e.RequestID, Details: details, Customers: customers(e),
	})
	if err != nil {
		return 0, fmt.Errorf("audit: append: %w", err)
	}
	failpoint.Hit("audit.appended")
	return seq, nil
}

// RecordAlone appends e in its own write transaction (for events that change
// nothing else: views, denials, failed logins).
func RecordAlone(ctx context.Context, db *store.DB, now time.Time, e Event) error {
	return db.Write(ctx, func(tx *store.Tx) error {
		_, err := Record(ctx, tx, now, e)
		return err
	})
}

// customers lists the customers e concerns, each once.
func customers(e Event) []string {
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if e.ObjectType == "customer" {
		add(e.ObjectID)
	}
	for _, id := range e.Customers {
		add(id)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// cut on a rune boundary
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

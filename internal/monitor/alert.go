// Package monitor turns audit events into alerts. This first part defines
// the alert record and Raise, which rules on the request path (reveal
// quota, self-grants of data access, disabling strict separation) call in
// the same transaction as the events that are their evidence. Detectors
// over the event stream, notification sinks and metrics build on it.
//
// The event interface for monitoring is the audit trail itself: every
// denial is an audit event with outcome "denied" (internal/audit), written
// before the refusal is returned, so detectors read one ordered stream that
// holds across restarts and nodes.
package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/store"
)

// Severities.
const (
	Info     = "info"
	Low      = "low"
	Medium   = "medium"
	High     = "high"
	Critical = "critical"
)

// Rules raised so far.
const (
	RuleRevealQuota         = "reveal.quota_exceeded"
	RuleSelfGrant           = "access.self_grant"
	RuleSeparationDisabled  = "access.separation_disabled"
	RulePoolReturnScheduled = "pool.return_warning"
	RuleTemplateWidened     = "access.template_widened"
	// RuleSeparatedAccountAction: under strict separation an administrator
	// created a user or set a password (a way to sign in as someone else).
	RuleSeparatedAccountAction = "access.separated_account_action"
	// RuleAuditChainBroken: scheduled verification of the audit trail
	// found tampering.
	RuleAuditChainBroken = "audit.chain_broken"

	// Detectors (guard.go, detect.go).
	RuleBruteForce      = "auth.brute_force"
	RuleBulkView        = "monitor.bulk_view"
	RuleBulkViewSuspend = "monitor.bulk_view_suspended"
	RuleProbing         = "access.probing"
	RuleRevealBurst     = "reveal.burst"
	RuleLargeExport     = "export.large"
	RuleNewIP           = "auth.new_ip"
	RuleOddHours        = "auth.odd_hours"
	RuleDormant         = "auth.dormant_account"
	RuleAfterRoleChange = "access.after_role_change"
	RuleBackupFailed    = "backup.failed"
	RuleBackupStale     = "backup.stale"
	// RuleDefenceWeakened: a detector, lockout or export-approval setting
	// was loosened.
	RuleDefenceWeakened = "monitor.defence_weakened"
)

// Alert is an alert to raise.
type Alert struct {
	Rule     string
	Severity string
	ActorID  string  // the user whose behaviour raised it ("" for none)
	Evidence []int64 // audit sequence numbers
	Details  map[string]any
}

// Raise records a in tx at now, with an audit event "alert.raise" naming
// it, and returns the alert's id.
func Raise(ctx context.Context, tx *store.Tx, now time.Time, a Alert) (string, error) {
	if a.Rule == "" || a.Severity == "" {
		return "", fmt.Errorf("monitor: alert needs a rule and a severity")
	}
	if a.Evidence == nil {
		a.Evidence = []int64{}
	}
	ev, err := json.Marshal(a.Evidence)
	if err != nil {
		return "", err
	}
	details := "{}"
	if len(a.Details) > 0 {
		b, err := json.Marshal(a.Details)
		if err != nil {
			return "", fmt.Errorf("monitor: details: %w", err)
		}
		details = string(b)
	}
	id := uuid.Must(uuid.NewV7()).String()
	now = now.UTC()
	if err := tx.InsertAlert(ctx, store.Alert{ID: id, At: now, Rule: a.Rule, Severity: a.Severity, ActorID: a.ActorID,
		Status: "open", Evidence: string(ev), Details: details, UpdatedAt: now}); err != nil {
		return "", err
	}
	if err := enqueueDeliveries(ctx, tx, id, a.Severity, now); err != nil {
		return "", err
	}
	_, err = audit.Record(ctx, tx, now, audit.Event{Actor: "system", Action: "alert.raise", ObjectType: "alert", ObjectID: id,
		Outcome: audit.OK, Details: map[string]any{"rule": a.Rule, "severity": a.Severity, "actor_id": a.ActorID, "evidence": a.Evidence}})
	return id, err
}

package node

import (
	"context"
	"errors"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// AuditJobs keeps the audit trail's evidence fresh while a node serves:
// it verifies new events incrementally and signs a checkpoint after
// audit.checkpoint_events events or audit.checkpoint_seconds seconds, runs a
// full verification and the retention prune once a day, and turns a failed
// verification into a critical alert.
type AuditJobs struct {
	n    *Node
	Tick time.Duration // how often to look at the chain head (default 1s)
	Day  time.Duration // how often to verify fully and prune (default 24h)

	lastCp    time.Time
	lastDaily time.Time
	reported  string
}

// AuditJobs returns the audit jobs of n.
func (n *Node) AuditJobs() *AuditJobs {
	return &AuditJobs{n: n, Tick: time.Second, Day: 24 * time.Hour}
}

// Run runs the jobs until ctx ends.
func (j *AuditJobs) Run(ctx context.Context) {
	t := time.NewTicker(j.Tick)
	defer t.Stop()
	j.Daily(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if j.n.now().Sub(j.lastDaily) >= j.Day {
			j.Daily(ctx)
		}
		if err := j.Step(ctx); err != nil && ctx.Err() == nil {
			j.n.Log.Error("audit checkpoint failed", "err", err)
		}
	}
}

// Step checkpoints the chain head when one is due, after verifying the
// events added since the last verification.
func (j *AuditJobs) Step(ctx context.Context) error {
	var head store.AuditHead
	if err := j.n.DB.Read(ctx, func(tx *store.Tx) error {
		var err error
		head, err = tx.AuditHead(ctx)
		return err
	}); err != nil {
		return err
	}
	last := j.n.Audit.Last()
	if head.Seq <= last {
		return nil // nothing new: the common case, one small read a tick
	}
	vals, err := j.n.CRM.EffectiveSettings(ctx)
	if err != nil {
		return err
	}
	now := j.n.now()
	due := (head.Seq-last >= int64(vals.Int(settings.AuditCheckpointEvents)) ||
		now.Sub(j.lastCp) >= time.Duration(vals.Int(settings.AuditCheckpointSeconds))*time.Second)
	if !due {
		return nil
	}
	// Checkpoint verifies the events since the last checkpoint first.
	_, _, err = j.n.Audit.Checkpoint(ctx)
	var te *audit.TamperError
	if errors.As(err, &te) {
		j.report(ctx, te.Report)
		return nil
	}
	if err != nil {
		return err
	}
	j.lastCp = now
	return nil
}

// Daily verifies the whole trail against every checkpoint and prunes what
// is past retention.
func (j *AuditJobs) Daily(ctx context.Context) {
	j.lastDaily = j.n.now()
	cps, err := j.n.Audit.Load(ctx)
	if err != nil {
		// Evidence that cannot be read is a finding, not just a log line.
		j.report(ctx, audit.Report{Problem: &audit.Problem{Kind: audit.BadCheckpoint, Detail: err.Error()}})
		return
	}
	rep, err := audit.Verify(ctx, j.n.DB, audit.VerifyOptions{Checkpoints: cps, Trusted: j.n.Audit.Trusted(), Reload: j.n.Audit.Load})
	if err != nil {
		if ctx.Err() == nil {
			j.n.Log.Error("audit verification failed to run", "err", err)
		}
		return
	}
	if !rep.OK() {
		j.report(ctx, rep)
		return
	}
	if err := audit.RecordAlone(ctx, j.n.DB, j.n.now(), audit.Event{Actor: "system", Action: "audit.verify", ObjectType: "audit", Outcome: audit.OK,
		Details: map[string]any{"events": rep.Events, "through_seq": rep.Last, "checkpoints": rep.Checkpoints}}); err != nil {
		j.n.Log.Error("audit event failed", "err", err)
	}
	vals, err := j.n.CRM.EffectiveSettings(ctx)
	if err != nil {
		j.n.Log.Error("audit prune: settings", "err", err)
		return
	}
	pr, err := audit.Prune(ctx, j.n.DB, audit.PruneOptions{Now: j.n.now(), RetentionDays: vals.Int(settings.AuditRetentionDays),
		ArchiveDir: j.n.Config.AuditArchiveDir(), Checkpointer: j.n.Audit, Actor: "system"})
	switch {
	case err != nil:
		j.n.Log.Error("audit prune failed", "err", err)
	case pr.Events > 0:
		j.n.Log.Info("audit events archived and pruned", "events", pr.Events, "through_seq", pr.Through, "archive", pr.Archive)
	}
}

// report turns a failed verification into an audit event and a critical
// alert, once per distinct problem.
func (j *AuditJobs) report(ctx context.Context, rep audit.Report) {
	p := rep.Problem.String()
	j.n.Log.Error("audit trail verification failed", "problem", p)
	if p == j.reported {
		return
	}
	err := j.n.DB.Write(ctx, func(tx *store.Tx) error {
		seq, err := audit.Record(ctx, tx, j.n.now(), audit.Event{Actor: "system", Action: "audit.verify", ObjectType: "audit", Outcome: audit.Failed,
			Reason: string(rep.Problem.Kind), Details: map[string]any{"seq": rep.Problem.Seq, "kind": rep.Problem.Kind, "detail": rep.Problem.Detail}})
		if err != nil {
			return err
		}
		_, err = monitor.Raise(ctx, tx, j.n.now(), monitor.Alert{Rule: monitor.RuleAuditChainBroken, Severity: monitor.Critical,
			Evidence: []int64{seq}, Details: map[string]any{"seq": rep.Problem.Seq, "kind": rep.Problem.Kind}})
		return err
	})
	if err != nil {
		j.n.Log.Error("audit alert failed", "err", err)
		return
	}
	j.reported = p
}

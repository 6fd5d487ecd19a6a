package metrics

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos/custos/internal/store"
)

// Audit actions the state collector looks for.
const (
	ActionAuditVerify  = "audit.verify"  // a verification of the whole audit trail (internal/node AuditJobs.Daily)
	ActionBackupCreate = "backup.create" // a backup snapshot (issue 7)
)

var scannedActions = []string{ActionAuditVerify, ActionBackupCreate}

var (
	descDatabaseOK = prometheus.NewDesc("custos_scrape_database_ok",
		"1 when this scrape's database reads succeeded; 0 when they failed or timed out (the database metrics are then missing).", nil, nil)
	descAlerts = prometheus.NewDesc("custos_alerts",
		"Alerts by rule and workflow status (open, acknowledged, resolved).", []string{"rule", "status"}, nil)
	descChainLength = prometheus.NewDesc("custos_audit_chain_length",
		"Sequence number of the audit chain head: events appended since the chain began, pruned ones included.", nil, nil)
	descChainPruned = prometheus.NewDesc("custos_audit_chain_pruned_through",
		"Sequence number up to which audit events were archived and pruned (0: none); custos_audit_chain_length minus this is the events kept.", nil, nil)
	descVerifyTime = prometheus.NewDesc("custos_audit_last_verify_timestamp_seconds",
		"Unix time of the newest successful full verification of the audit trail (event audit.verify, outcome ok). Absent when none was found.", nil, nil)
	descVerifyAge = prometheus.NewDesc("custos_audit_last_verify_age_seconds",
		"Seconds since the newest successful full verification of the audit trail. Absent when none was found.", nil, nil)
	descBackupTime = prometheus.NewDesc("custos_backup_last_success_timestamp_seconds",
		"Unix time of the newest successful backup (event backup.create, outcome ok). Absent when there never was one.", nil, nil)
	descBackupAge = prometheus.NewDesc("custos_backup_age_seconds",
		"Seconds since the newest successful backup. Absent when there never was one.", nil, nil)
	descKeyAge = prometheus.NewDesc("custos_key_age_seconds",
		"Seconds since the newest version of a keyring key was created (by initialization or rotation), by purpose: master (wraps the data keys), index (blind indexes).", []string{"purpose"}, nil)
	descSinksOK = prometheus.NewDesc("custos_scrape_sinks_ok",
		"1 when this scrape read the alert sinks' status, 0 when that failed (the sink metrics are then missing).", nil, nil)
	descSinkUp = prometheus.NewDesc("custos_alert_sink_up",
		"1 when the alert sink's last delivery attempt succeeded (or none was made yet), 0 when it failed.", []string{"sink", "kind"}, nil)
	descSinkEnabled = prometheus.NewDesc("custos_alert_sink_enabled",
		"1 when the alert sink is enabled, 0 when it is disabled.", []string{"sink", "kind"}, nil)
	descSinkFailures = prometheus.NewDesc("custos_alert_sink_consecutive_failures",
		"Failed delivery attempts of the alert sink since its last success.", []string{"sink", "kind"}, nil)
	descSinkLastOK = prometheus.NewDesc("custos_alert_sink_last_success_timestamp_seconds",
		"Unix time of the alert sink's last successful delivery. Absent when there was none.", []string{"sink", "kind"}, nil)
	descSinkLastFail = prometheus.NewDesc("custos_alert_sink_last_failure_timestamp_seconds",
		"Unix time of the alert sink's last failed delivery attempt. Absent when there was none.", []string{"sink", "kind"}, nil)
	descDeliveries = prometheus.NewDesc("custos_alert_deliveries",
		"Alert deliveries recorded for the sink, by status: pending (queued or waiting for a retry), sent, failed (given up).", []string{"sink", "kind", "status"}, nil)
)

// stateCollector reads the node's state at scrape time: one read
// transaction, bounded by Options.Timeout, of queries that are cheap by
// construction (see internal/store/metrics.go), plus the sink hook.
type stateCollector struct {
	db      *store.DB
	now     func() time.Time
	timeout time.Duration
	sinks   func(context.Context) ([]SinkStatus, error)
	log     *slog.Logger

	mu   sync.Mutex // one scrape at a time moves the scan
	scan auditScan
}

func newStateCollector(o Options) *stateCollector {
	return &stateCollector{db: o.DB, now: o.Now, timeout: o.Timeout, sinks: o.Sinks, log: o.Logger,
		scan: auditScan{budget: o.ScanBudget, found: map[string]store.AuditMark{}}}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDatabaseOK, descAlerts, descChainLength, descChainPruned, descVerifyTime, descVerifyAge,
		descBackupTime, descBackupAge, descKeyAge, descSinksOK, descSinkUp, descSinkEnabled, descSinkFailures, descSinkLastOK,
		descSinkLastFail, descDeliveries} {
		ch <- d
	}
}

// snapshot is what one scrape read from the database.
type snapshot struct {
	head   store.AuditHead
	alerts map[[2]string]int
	keys   map[string]time.Time
	marks  map[string]store.AuditMark
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.db != nil {
		c.collectDB(ch)
	}
	if c.sinks != nil {
		c.collectSinks(ch)
	}
}

func (c *stateCollector) collectDB(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	var s snapshot
	err := c.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		if s.head, err = tx.AuditHead(ctx); err != nil {
			return err
		}
		if s.alerts, err = tx.CountAlerts(ctx); err != nil {
			return err
		}
		if s.keys, err = tx.NewestKeys(ctx); err != nil {
			return err
		}
		s.marks, err = c.scan.advance(ctx, tx, s.head)
		return err
	})
	if err != nil {
		if ctx.Err() != nil && c.scan.budget > minScanBudget {
			// Out of time: read fewer events next time, so that a slow
			// database still makes progress through a long trail.
			c.scan.budget = max(c.scan.budget/2, minScanBudget)
		}
		c.log.Warn("metrics: database reads failed", "err", err)
		ch <- prometheus.MustNewConstMetric(descDatabaseOK, prometheus.GaugeValue, 0)
		return
	}
	now := c.now()
	ch <- prometheus.MustNewConstMetric(descDatabaseOK, prometheus.GaugeValue, 1)
	for k, n := range s.alerts {
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(descChainLength, prometheus.GaugeValue, float64(s.head.Seq))
	ch <- prometheus.MustNewConstMetric(descChainPruned, prometheus.GaugeValue, float64(s.head.BaseSeq))
	if m, ok := s.marks[ActionAuditVerify]; ok {
		ch <- prometheus.MustNewConstMetric(descVerifyTime, prometheus.GaugeValue, unixSeconds(m.At))
		ch <- prometheus.MustNewConstMetric(descVerifyAge, prometheus.GaugeValue, now.Sub(m.At).Seconds())
	}
	if m, ok := s.marks[ActionBackupCreate]; ok {
		ch <- prometheus.MustNewConstMetric(descBackupTime, prometheus.GaugeValue, unixSeconds(m.At))
		ch <- prometheus.MustNewConstMetric(descBackupAge, prometheus.GaugeValue, now.Sub(m.At).Seconds())
	}
	for purpose, at := range s.keys {
		ch <- prometheus.MustNewConstMetric(descKeyAge, prometheus.GaugeValue, now.Sub(at).Seconds(), purpose)
	}
}

// deliveryStatuses are the delivery statuses exported (the label's values).
var deliveryStatuses = []string{"pending", "sent", "failed"}

func (c *stateCollector) collectSinks(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	sinks, err := c.sinks(ctx)
	if err != nil {
		c.log.Warn("metrics: alert sink status failed", "err", err)
		ch <- prometheus.MustNewConstMetric(descSinksOK, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descSinksOK, prometheus.GaugeValue, 1)
	sort.SliceStable(sinks, func(i, j int) bool { return sinks[i].Name < sinks[j].Name })
	seen := map[string]bool{}
	for _, s := range sinks {
		name, kind := truncate(s.Name, 64), truncate(s.Kind, 32)
		if name == "" || seen[name] {
			c.log.Warn("metrics: alert sink without a name or named twice; left out", "kind", kind)
			continue
		}
		seen[name] = true
		ch <- prometheus.MustNewConstMetric(descSinkUp, prometheus.GaugeValue, boolFloat(s.ConsecutiveFailures == 0), name, kind)
		ch <- prometheus.MustNewConstMetric(descSinkEnabled, prometheus.GaugeValue, boolFloat(s.Enabled), name, kind)
		ch <- prometheus.MustNewConstMetric(descSinkFailures, prometheus.GaugeValue, float64(s.ConsecutiveFailures), name, kind)
		if !s.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(descSinkLastOK, prometheus.GaugeValue, unixSeconds(s.LastSuccess), name, kind)
		}
		if !s.LastFailure.IsZero() {
			ch <- prometheus.MustNewConstMetric(descSinkLastFail, prometheus.GaugeValue, unixSeconds(s.LastFailure), name, kind)
		}
		if s.Deliveries != nil {
			// A fixed set of statuses, each always present: no status
			// string from elsewhere becomes a label value.
			for _, st := range deliveryStatuses {
				ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.GaugeValue, float64(s.Deliveries[st]), name, kind, st)
			}
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		n--
	}
	return s[:n]
}

// auditScan finds the newest successful event of each scanned action
// without an index on actions: it remembers which range of sequence
// numbers it has read, (lo, hi], and each scrape reads at most budget
// events at either end — forward to the chain head (new events), and
// backward towards the prune mark while an action has not been found yet
// (history from before this process started). Every event is read at most
// once per process; a found event stays the answer until a newer one
// appears, and pruning it later does not unmake it.
type auditScan struct {
	// budget halves (down to minScanBudget) when a scrape runs out of time.
	budget  int64
	started bool
	lo, hi  int64
	found   map[string]store.AuditMark
}

const minScanBudget = 1000

func (a *auditScan) advance(ctx context.Context, tx *store.Tx, head store.AuditHead) (map[string]store.AuditMark, error) {
	if !a.started {
		a.lo, a.hi, a.started = head.Seq, head.Seq, true
	}
	if head.Seq > a.hi {
		top := min(head.Seq, a.hi+a.budget)
		marks, err := tx.NewestAuditOK(ctx, scannedActions, a.hi, top)
		if err != nil {
			return nil, err
		}
		a.merge(marks)
		a.hi = top
	}
	if len(a.found) < len(scannedActions) && a.lo > head.BaseSeq {
		bottom := max(head.BaseSeq, a.lo-a.budget)
		marks, err := tx.NewestAuditOK(ctx, scannedActions, bottom, a.lo)
		if err != nil {
			return nil, err
		}
		a.merge(marks)
		a.lo = bottom
	}
	out := make(map[string]store.AuditMark, len(a.found))
	for k, v := range a.found {
		out[k] = v
	}
	return out, nil
}

func (a *auditScan) merge(marks map[string]store.AuditMark) {
	for action, m := range marks {
		if old, ok := a.found[action]; !ok || m.Seq > old.Seq {
			a.found[action] = m
		}
	}
}

package monitor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// enqueueDeliveries queues alert id, in the transaction that raises it, for
// every enabled sink whose minimum severity the alert reaches. Committed
// together, an alert is never lost between its row and its notification;
// sending happens later, off the request path (Notifier).
func enqueueDeliveries(ctx context.Context, tx *store.Tx, id, severity string, now time.Time) error {
	_, err := tx.EnqueueAlertDeliveries(ctx, id, severitiesUpTo(severity), now)
	return err
}

// NotifierOptions tune a Notifier. Zero values take the defaults.
type NotifierOptions struct {
	Interval  time.Duration // between polls of the outbox (default 2s)
	Timeout   time.Duration // for one delivery (default 10s)
	RetryBase time.Duration // first retry delay, doubled on each failure (default 5s)
	RetryMax  time.Duration // longest retry delay (default 15m)
	GiveUp    time.Duration // a delivery still failing this long after its alert is marked failed (default 24h)
	// Lease is how long a claim keeps other notifiers (on this node or
	// others) off a delivery (default 6 × Timeout). A delivery is sent
	// only while at least Timeout of its lease remains.
	Lease time.Duration
	Batch int // deliveries claimed per poll (default 32)

	Now     func() time.Time // default time.Now
	Logger  *slog.Logger     // default: discard
	Cipher  seal.Cipher      // default AES-256-GCM
	RootCAs *x509.CertPool   // TLS roots for sinks (nil: the system's)
}

func (o *NotifierOptions) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Interval, 2*time.Second)
	def(&o.Timeout, 10*time.Second)
	def(&o.RetryBase, 5*time.Second)
	def(&o.RetryMax, 15*time.Minute)
	def(&o.GiveUp, 24*time.Hour)
	def(&o.Lease, 6*o.Timeout)
	if o.Lease < 2*o.Timeout {
		o.Lease = 2 * o.Timeout
	}
	if o.Batch <= 0 {
		o.Batch = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Cipher == nil {
		o.Cipher = seal.GCM{}
	}
}

// Notifier sends the alerts queued in the outbox to their sinks. Every
// node may run one on a shared database: a delivery is claimed with a
// lease before it is sent, so two notifiers never send it at the same
// time. Delivery is at least once (a node that dies after sending and
// before recording it leaves the delivery to be sent again when the lease
// ends); receivers deduplicate by alert id.
//
// Each sink's deliveries go out one at a time in a goroutine of their own,
// so a sink that hangs delays only itself. A failed delivery is retried
// after RetryBase, doubling up to RetryMax, until GiveUp after the alert.
type Notifier struct {
	db     *store.DB
	keys   *keys.Keyring
	o      NotifierOptions
	sender *Sender
	wake   chan struct{}

	mu   sync.Mutex
	busy map[string]bool // sinks with a goroutine sending
	wg   sync.WaitGroup
}

// NewNotifier returns a notifier over db, opening sink configurations with kr.
func NewNotifier(db *store.DB, kr *keys.Keyring, o NotifierOptions) *Notifier {
	o.defaults()
	return &Notifier{db: db, keys: kr, o: o, wake: make(chan struct{}, 1), busy: map[string]bool{},
		sender: NewSender(SenderOptions{Timeout: o.Timeout, RootCAs: o.RootCAs, Now: o.Now})}
}

// Sender returns the notifier's sender (for tests of a sink).
func (n *Notifier) Sender() *Sender { return n.sender }

// Wake makes Run poll now instead of at the next interval.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run polls the outbox every Interval (or when woken) and sends what is
// due, until ctx ends; then it waits for the sends under way, which end
// at once and leave their deliveries to the next start.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	defer n.sender.CloseIdleConnections()
	defer n.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.wake:
		}
		if _, err := n.dispatch(ctx); err != nil && ctx.Err() == nil {
			n.o.Logger.Error("alert notifier: polling the outbox failed", "err", err)
		}
		t.Reset(n.o.Interval)
	}
}

// RunOnce claims what is due now, sends it and waits until every send
// started has ended. It returns how many deliveries it claimed.
func (n *Notifier) RunOnce(ctx context.Context) (int, error) {
	k, err := n.dispatch(ctx)
	n.wg.Wait()
	return k, err
}

// sendJob is one claimed delivery ready to send.
type sendJob struct {
	d       store.AlertDelivery
	kind    string
	cfg     SinkConfig
	msg     Message
	openErr error
	until   time.Time
	claim   string
}

// dispatch claims due deliveries of the sinks not already sending and
// starts one goroutine per sink.
func (n *Notifier) dispatch(ctx context.Context) (int, error) {
	n.mu.Lock()
	busy := make([]string, 0, len(n.busy))
	for k := range n.busy {
		busy = append(busy, k)
	}
	n.mu.Unlock()
	slices.Sort(busy)
	now := n.o.Now().UTC()
	until := now.Add(n.o.Lease)
	claim := uuid.Must(uuid.NewV7()).String()
	var ds []store.AlertDelivery
	if err := n.db.Write(ctx, func(tx *store.Tx) (err error) {
		ds, err = tx.ClaimAlertDeliveries(ctx, now, until, claim, n.o.Batch, busy)
		return err
	}); err != nil || len(ds) == 0 {
		return 0, err
	}
	jobs := make([]sendJob, len(ds))
	err := n.db.Read(ctx, func(tx *store.Tx) error {
		sinks := map[string]store.AlertSink{}
		for i, d := range ds {
			j := sendJob{d: d, until: until, claim: claim}
			k, ok := sinks[d.Sink]
			if !ok {
				var err error
				if k, err = tx.GetAlertSink(ctx, d.Sink); err != nil {
					return err
				}
				sinks[d.Sink] = k
			}
			j.kind = k.Kind
			a, err := tx.GetAlert(ctx, d.AlertID, false)
			if err != nil {
				return err
			}
			j.msg = MessageOf(a)
			j.cfg, j.openErr = n.openConfig(ctx, tx, k)
			jobs[i] = j
		}
		return nil
	})
	if err != nil {
		// Claimed but not loaded: the leases run out and they are tried again.
		return len(ds), fmt.Errorf("load claimed deliveries: %w", err)
	}
	bySink := map[string][]sendJob{}
	var order []string
	for _, j := range jobs {
		if _, ok := bySink[j.d.Sink]; !ok {
			order = append(order, j.d.Sink)
		}
		bySink[j.d.Sink] = append(bySink[j.d.Sink], j)
	}
	n.mu.Lock()
	for _, sink := range order {
		n.busy[sink] = true
	}
	n.mu.Unlock()
	for _, sink := range order {
		n.wg.Add(1)
		go func(q []sendJob) {
			defer n.wg.Done()
			defer func() { n.mu.Lock(); delete(n.busy, sink); n.mu.Unlock() }()
			n.sendAll(ctx, q)
		}(bySink[sink])
	}
	return len(ds), nil
}

func (n *Notifier) openConfig(ctx context.Context, tx *store.Tx, k store.AlertSink) (SinkConfig, error) {
	key, err := n.keys.DataKey(ctx, tx, k.KeySubject, k.KeyVersion)
	if err != nil {
		return SinkConfig{}, err
	}
	return OpenConfig(n.o.Cipher, key, k.Name, k.Config)
}

// sendAll sends one sink's deliveries in order. After a failure the rest
// are not tried this round: they are scheduled for a retry with it.
func (n *Notifier) sendAll(ctx context.Context, q []sendJob) {
	for i, j := range q {
		if ctx.Err() != nil || n.o.Now().Add(n.o.Timeout).After(j.until) {
			// Stopping, or too little lease left to send safely: hand
			// the rest back untouched.
			n.release(ctx, q[i:])
			return
		}
		var err error
		if j.openErr != nil {
			n.o.Logger.Error("alert notifier: cannot open a sink's configuration", "sink", j.d.Sink, "err", j.openErr)
			err = errors.New("cannot open the sink's configuration (see the server log)")
		} else {
			err = n.sender.Send(ctx, j.kind, j.cfg, j.msg)
		}
		if err != nil && ctx.Err() != nil {
			n.release(ctx, q[i:])
			return
		}
		if err == nil {
			n.finish(ctx, q[i:i+1], nil)
			continue
		}
		n.finish(ctx, q[i:], err)
		return
	}
}

// finish records, in one transaction, the outcome of an attempt at js[0]
// and, when it failed, the same failure for the rest of js (not tried:
// they wait for the retry with it). The sink's status counts the attempt
// once.
func (n *Notifier) finish(ctx context.Context, js []sendJob, sendErr error) {
	at := n.o.Now().UTC()
	errText := ""
	if sendErr != nil {
		errText = truncateUTF8(sendErr.Error(), maxErrorText)
	}
	outcomes := make([]store.DeliveryOutcome, len(js))
	for i, j := range js {
		o := store.DeliveryOutcome{Status: store.DeliverySent, NextAt: j.d.NextAt, SentAt: &at}
		if sendErr != nil {
			o = store.DeliveryOutcome{Status: store.DeliveryPending, NextAt: at.Add(n.backoff(j.d.Attempts)), LastError: errText}
			if i > 0 {
				o.LastError = truncateUTF8("not tried: the delivery before it to this sink failed: "+errText, maxErrorText)
			}
			if at.Sub(j.d.CreatedAt) >= n.o.GiveUp {
				o.Status = store.DeliveryFailed
			}
		}
		outcomes[i] = o
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	kept := make([]bool, len(js))
	err := n.db.Write(wctx, func(tx *store.Tx) error {
		for i, j := range js {
			var err error
			if kept[i], err = tx.FinishAlertDelivery(wctx, j.d.AlertID, j.d.Sink, j.claim, outcomes[i]); err != nil {
				return err
			}
		}
		if !kept[0] {
			return nil
		}
		return tx.RecordAlertSinkAttempt(wctx, js[0].d.Sink, at, errText)
	})
	for i, j := range js {
		o := outcomes[i]
		log := n.o.Logger.With("sink", j.d.Sink, "kind", j.kind, "alert_id", j.d.AlertID, "rule", j.msg.Rule, "attempt", j.d.Attempts)
		switch {
		case err != nil:
			log.Error("alert notifier: recording a delivery failed", "err", err)
		case !kept[i]:
			log.Warn("alert notifier: a delivery was not recorded: its lease ran out (another notifier has it) or its sink was removed")
		case sendErr == nil:
			log.Info("alert delivered")
		case o.Status == store.DeliveryFailed:
			log.Error("alert delivery failed for good", "err", o.LastError, "since", j.d.CreatedAt)
		case i > 0:
			log.Debug("alert delivery not tried after a failure; will retry", "retry_at", o.NextAt)
		default:
			log.Warn("alert delivery failed; will retry", "err", errText, "retry_at", o.NextAt)
		}
	}
}

// release hands claimed deliveries back without counting an attempt.
func (n *Notifier) release(ctx context.Context, q []sendJob) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := n.db.Write(wctx, func(tx *store.Tx) error {
		for _, j := range q {
			if err := tx.ReleaseAlertDelivery(wctx, j.d.AlertID, j.d.Sink, j.claim); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		n.o.Logger.Warn("alert notifier: releasing deliveries failed; their leases will run out", "err", err)
	}
}

// backoff is the delay after the attempt-th failed attempt: RetryBase,
// doubling each time, at most RetryMax.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.o.RetryBase
	for i := 1; i < attempt && d < n.o.RetryMax; i++ {
		d *= 2
	}
	return min(d, n.o.RetryMax)
}

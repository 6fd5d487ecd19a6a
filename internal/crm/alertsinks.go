package crm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/store"
)

// AlertSinkInput is a sink's settings as an administrator gives them. Its
// secrets (Secret, Password, and URL, which for a chat robot carries its
// key) go in and are never given back. To change a sink, set only what
// changes: empty fields keep their value (so secrets need not be sent
// again); Kind cannot change.
type AlertSinkInput struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	MinSeverity string   `json:"min_severity"` // info, low, medium (default), high, critical
	Enabled     *bool    `json:"enabled"`      // default true
	URL         string   `json:"url"`          // webhook, wecom, dingtalk, slack
	Secret      string   `json:"secret"`       // webhook HMAC secret; DingTalk signing secret
	Host        string   `json:"host"`         // smtp, syslog
	Port        int      `json:"port"`         // smtp, syslog
	TLS         string   `json:"tls"`          // smtp: starttls, tls, none
	Username    string   `json:"username"`     // smtp
	Password    string   `json:"password"`     // smtp
	From        string   `json:"from"`         // smtp
	To          []string `json:"to"`           // smtp
	Network     string   `json:"network"`      // syslog: udp, tcp, tls
	Facility    string   `json:"facility"`     // syslog
}

// String prints the input without its secrets.
func (in AlertSinkInput) String() string {
	return fmt.Sprintf("crm.AlertSinkInput{name %q, kind %q, redacted}", in.Name, in.Kind)
}

// Format implements fmt.Formatter so that every verb redacts.
func (in AlertSinkInput) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(in.String())) }

// LogValue implements slog.LogValuer.
func (in AlertSinkInput) LogValue() slog.Value { return slog.StringValue(in.String()) }

func (in AlertSinkInput) config() monitor.SinkConfig {
	return monitor.SinkConfig{URL: in.URL, Secret: in.Secret, Host: in.Host, Port: in.Port, TLS: in.TLS, Username: in.Username,
		Password: in.Password, From: in.From, To: slices.Clone(in.To), Network: in.Network, Facility: in.Facility}
}

// AlertSink is a sink as listed: where it sends (redacted: a host, never
// a URL or secret) and how its latest attempts went.
type AlertSink struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	MinSeverity string    `json:"min_severity"`
	Enabled     bool      `json:"enabled"`
	Target      string    `json:"target"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`

	LastOKAt            *time.Time `json:"last_ok_at"`
	LastErrorAt         *time.Time `json:"last_error_at"`
	LastError           string     `json:"last_error"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	// Pending deliveries wait to be sent (or retried); Failed ones were
	// given up after a day of failures.
	Pending int `json:"pending"`
	Failed  int `json:"failed"`
}

func sinkView(k store.AlertSink, counts map[[2]string]int) AlertSink {
	return AlertSink{Name: k.Name, Kind: k.Kind, MinSeverity: k.MinSeverity, Enabled: k.Enabled, Target: k.Target,
		CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt, LastOKAt: k.LastOKAt, LastErrorAt: k.LastErrorAt, LastError: k.LastError,
		ConsecutiveFailures: k.ConsecutiveFailures, Pending: counts[[2]string{k.Name, store.DeliveryPending}],
		Failed: counts[[2]string{k.Name, store.DeliveryFailed}]}
}

// AlertSinkTest is the outcome of a test message sent to a sink.
type AlertSinkTest struct {
	Sink      string `json:"sink"`
	MessageID string `json:"message_id"` // the test message's id (X-Custos-Alert-Id)
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"` // why it failed, without secrets
}

// sinkProblems turns monitor's validation problems into field errors.
func sinkProblems(err error) error {
	var ps monitor.Problems
	if !errors.As(err, &ps) {
		return err
	}
	fe := &ValidationError{}
	for _, p := range ps {
		fe.Fields = append(fe.Fields, FieldError{Field: p.Field, Message: p.Message})
	}
	return fe
}

const defaultMinSeverity = monitor.Medium

// ListAlertSinks lists the alert sinks with their status.
func (s *Service) ListAlertSinks(ctx context.Context, p access.Principal) ([]AlertSink, error) {
	if err := access.Require(p, access.ManageAlerts); err != nil {
		return nil, s.deny(ctx, p, "alert_sink.list", "alert_sink", "", err)
	}
	out := []AlertSink{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		ks, err := tx.AlertSinks(ctx)
		if err != nil {
			return err
		}
		counts, err := tx.CountAlertDeliveries(ctx)
		for _, k := range ks {
			out = append(out, sinkView(k, counts))
		}
		return err
	})
	return out, err
}

// requireSinkAdmin checks that p may change sinks: manage_policies and a
// recent authentication. Sinks decide where alerts (and so warnings of an
// insider) go.
func (s *Service) requireSinkAdmin(ctx context.Context, p access.Principal, action, name string) error {
	if err := access.Require(p, access.ManagePolicies); err != nil {
		return s.deny(ctx, p, action, "alert_sink", name, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return s.deny(ctx, p, action, "alert_sink", name, err)
	}
	return nil
}

// auditName is the name of a sink for an audit event: only a valid one.
func auditName(name string) string {
	if monitor.ValidSinkName(name) {
		return name
	}
	return ""
}

// CreateAlertSink adds a sink. Its configuration is sealed under a data
// key of its own, bound to its name.
func (s *Service) CreateAlertSink(ctx context.Context, p access.Principal, in AlertSinkInput) (AlertSink, error) {
	const action = "alert_sink.create"
	if err := s.requireSinkAdmin(ctx, p, action, auditName(in.Name)); err != nil {
		return AlertSink{}, err
	}
	var fe fieldErrs
	if !monitor.ValidSinkName(in.Name) {
		fe.addf("name", "1-48 characters: a-z, 0-9, '_', '.', '-', starting with a letter or digit")
	}
	if in.MinSeverity == "" {
		in.MinSeverity = defaultMinSeverity
	}
	if _, ok := monitor.SeverityRank(in.MinSeverity); !ok {
		fe.addf("min_severity", "must be info, low, medium, high or critical")
	}
	cfg := in.config()
	cfg.Normalize(in.Kind)
	if err := cfg.Validate(in.Kind); err != nil {
		if ve, ok := sinkProblems(err).(*ValidationError); ok {
			fe.list = append(fe.list, ve.Fields...)
		} else {
			return AlertSink{}, err
		}
	}
	if err := fe.err(); err != nil {
		return AlertSink{}, err
	}
	enabled := in.Enabled == nil || *in.Enabled
	now := s.now().UTC()
	k := store.AlertSink{Name: in.Name, Kind: in.Kind, MinSeverity: in.MinSeverity, Enabled: enabled, Target: cfg.Target(in.Kind),
		KeySubject: monitor.KeySubject(newID()), CreatedAt: now, UpdatedAt: now}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetAlertSink(ctx, in.Name); err == nil {
			return &ValidationError{Fields: []FieldError{{Field: "name", Message: "a sink with this name exists"}}}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		key, err := s.keys.NewDataKey(ctx, tx, k.KeySubject)
		if err != nil {
			return err
		}
		if k.Config, err = monitor.SealConfig(s.cipher, key, k.Name, cfg); err != nil {
			return err
		}
		k.KeyVersion = key.Version
		if err := tx.InsertAlertSink(ctx, k); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return &ValidationError{Fields: []FieldError{{Field: "name", Message: "a sink with this name exists"}}}
			}
			return err
		}
		ev := event(p, action, "alert_sink", k.Name)
		ev.Details = map[string]any{"kind": k.Kind, "min_severity": k.MinSeverity, "enabled": k.Enabled, "target": k.Target}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return AlertSink{}, err
	}
	return sinkView(k, nil), nil
}

// UpdateAlertSink changes a sink: the fields set in in (see AlertSinkInput).
func (s *Service) UpdateAlertSink(ctx context.Context, p access.Principal, name string, in AlertSinkInput) (AlertSink, error) {
	const action = "alert_sink.update"
	if err := s.requireSinkAdmin(ctx, p, action, auditName(name)); err != nil {
		return AlertSink{}, err
	}
	if !monitor.ValidSinkName(name) {
		return AlertSink{}, ErrNotFound
	}
	var fe fieldErrs
	if in.Name != "" && in.Name != name {
		fe.addf("name", "cannot change: delete the sink and add it again")
	}
	if in.MinSeverity != "" {
		if _, ok := monitor.SeverityRank(in.MinSeverity); !ok {
			fe.addf("min_severity", "must be info, low, medium, high or critical")
		}
	}
	if err := fe.err(); err != nil {
		return AlertSink{}, err
	}
	now := s.now().UTC()
	var out AlertSink
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		k, err := tx.GetAlertSink(ctx, name)
		if err != nil {
			return err
		}
		if in.Kind != "" && in.Kind != k.Kind {
			return &ValidationError{Fields: []FieldError{{Field: "kind", Message: "cannot change: delete the sink and add it again"}}}
		}
		key, err := s.keys.DataKey(ctx, tx, k.KeySubject, k.KeyVersion)
		if err != nil {
			return err
		}
		old, err := monitor.OpenConfig(s.cipher, key, k.Name, k.Config)
		if err != nil {
			return err
		}
		patch := in.config()
		patch.Normalize("") // trims; no defaults
		cfg := old.Merge(patch)
		cfg.Normalize(k.Kind)
		if err := cfg.Validate(k.Kind); err != nil {
			return sinkProblems(err)
		}
		var changed []string
		if in.MinSeverity != "" && in.MinSeverity != k.MinSeverity {
			changed = append(changed, "min_severity")
			k.MinSeverity = in.MinSeverity
		}
		if in.Enabled != nil && *in.Enabled != k.Enabled {
			changed = append(changed, "enabled")
			k.Enabled = *in.Enabled
		}
		changed = append(changed, configChanges(old, cfg)...)
		if k.Config, err = monitor.SealConfig(s.cipher, key, k.Name, cfg); err != nil {
			return err
		}
		k.Target, k.UpdatedAt = cfg.Target(k.Kind), now
		if err := tx.UpdateAlertSink(ctx, k); err != nil {
			return err
		}
		counts, err := tx.CountAlertDeliveries(ctx)
		if err != nil {
			return err
		}
		out = sinkView(k, counts)
		ev := event(p, action, "alert_sink", k.Name)
		if changed == nil {
			changed = []string{}
		}
		// Names of what changed, never values (secrets, addresses).
		ev.Details = map[string]any{"changed": changed, "min_severity": k.MinSeverity, "enabled": k.Enabled, "target": k.Target}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return AlertSink{}, err
		}
		return AlertSink{}, s.denyOr(ctx, p, action, "alert_sink", name, err)
	}
	return out, nil
}

// configChanges names the settings that differ between a and b.
func configChanges(a, b monitor.SinkConfig) []string {
	var out []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"url", a.URL == b.URL}, {"secret", a.Secret == b.Secret}, {"host", a.Host == b.Host}, {"port", a.Port == b.Port},
		{"tls", a.TLS == b.TLS}, {"username", a.Username == b.Username}, {"password", a.Password == b.Password},
		{"from", a.From == b.From}, {"to", slices.Equal(a.To, b.To)}, {"network", a.Network == b.Network}, {"facility", a.Facility == b.Facility},
	} {
		if !f.same {
			out = append(out, f.name)
		}
	}
	return out
}

// DeleteAlertSink removes a sink and the deliveries still queued for it,
// and destroys the data key of its configuration, so no backup can open
// its secrets again.
func (s *Service) DeleteAlertSink(ctx context.Context, p access.Principal, name string) error {
	const action = "alert_sink.delete"
	if err := s.requireSinkAdmin(ctx, p, action, auditName(name)); err != nil {
		return err
	}
	if !monitor.ValidSinkName(name) {
		return ErrNotFound
	}
	now := s.now().UTC()
	var k store.AlertSink
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		if k, err = tx.GetAlertSink(ctx, name); err != nil {
			return err
		}
		counts, err := tx.CountAlertDeliveries(ctx)
		if err != nil {
			return err
		}
		if err := tx.DeleteAlertSink(ctx, name); err != nil {
			return err
		}
		if err := tx.DestroyDataKeys(ctx, k.KeySubject, now); err != nil {
			return err
		}
		ev := event(p, action, "alert_sink", name)
		ev.Details = map[string]any{"kind": k.Kind, "target": k.Target, "dropped_pending": counts[[2]string{name, store.DeliveryPending}]}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return s.denyOr(ctx, p, action, "alert_sink", name, err)
	}
	s.keys.Forget(k.KeySubject, k.KeyVersion)
	return nil
}

// TestAlertSink sends a test message to a sink now and waits for the
// outcome (an explicit administrator's action, so it may take the
// sink's timeout). The attempt counts in the sink's status and is audited.
// A delivery that fails is a result (OK false), not an error.
func (s *Service) TestAlertSink(ctx context.Context, p access.Principal, name string) (AlertSinkTest, error) {
	const action = "alert_sink.test"
	if !p.Can(access.ManageAlerts) {
		if err := access.Require(p, access.ManagePolicies); err != nil {
			return AlertSinkTest{}, s.deny(ctx, p, action, "alert_sink", auditName(name), err)
		}
	}
	if !monitor.ValidSinkName(name) {
		return AlertSinkTest{}, ErrNotFound
	}
	var k store.AlertSink
	var cfg monitor.SinkConfig
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		if k, err = tx.GetAlertSink(ctx, name); err != nil {
			return err
		}
		key, err := s.keys.DataKey(ctx, tx, k.KeySubject, k.KeyVersion)
		if err != nil {
			return err
		}
		cfg, err = monitor.OpenConfig(s.cipher, key, k.Name, k.Config)
		return err
	})
	if err != nil {
		return AlertSinkTest{}, s.denyOr(ctx, p, action, "alert_sink", name, err)
	}
	res := AlertSinkTest{Sink: name, MessageID: newID(), OK: true}
	sender := monitor.NewSender(monitor.SenderOptions{Now: s.now})
	sendErr := sender.Send(ctx, k.Kind, cfg, monitor.TestMessage(res.MessageID, s.now()))
	sender.CloseIdleConnections()
	if sendErr != nil {
		res.OK, res.Error = false, sendErr.Error() // a *monitor.SendError: no secrets
	}
	now := s.now().UTC()
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.RecordAlertSinkAttempt(ctx, name, now, res.Error); err != nil {
			return err
		}
		ev := event(p, action, "alert_sink", name)
		ev.Details = map[string]any{"kind": k.Kind, "target": k.Target, "message_id": res.MessageID, "ok": res.OK}
		if !res.OK {
			ev.Outcome, ev.Reason = audit.Failed, "delivery failed"
			ev.Details["error"] = res.Error
		}
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return AlertSinkTest{}, err
	}
	return res, nil
}

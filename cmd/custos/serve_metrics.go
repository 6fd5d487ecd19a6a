package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/store"
)

// servedMetrics is how `custos serve` exposes Prometheus metrics:
//
//   - --metrics-addr: on that separate listener only (with the token too
//     when one is set); the main address answers 404 at /metrics;
//   - a token alone (CUSTOS_METRICS_TOKEN or --metrics-token-file): on the
//     main address, to scrapers presenting it as a bearer token;
//   - neither: not at all (M is nil, nothing is instrumented).
type servedMetrics struct {
	M         *metrics.Metrics
	MainToken *metrics.Token // serve on the main address with this token; nil: 404 there

	srv  *http.Server
	done chan struct{}
}

// startMetrics sets up the metrics of n and starts the separate listener
// when one is configured; tok is the scrape token (nil: none). stop ends
// the listener.
func (a *app) startMetrics(n *node.Node, log *slog.Logger, tok *metrics.Token) (*servedMetrics, error) {
	sm := &servedMetrics{}
	if a.cfg.MetricsAddr == "" && tok == nil {
		return sm, nil
	}
	sm.M = metrics.New(metrics.Options{DB: n.DB, Logger: log, Sinks: sinkStatus(n)})
	if a.cfg.MetricsAddr == "" {
		sm.MainToken = tok
		log.Info("metrics served on the main address to bearer-token holders", "path", "/metrics")
		return sm, nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--metrics-addr): %w", a.cfg.MetricsAddr, err)
	}
	if tok == nil && !a.cfg.MetricsOnLoopback() {
		log.Warn("metrics served without a token on a non-loopback address: restrict who can reach it (firewall) or set CUSTOS_METRICS_TOKEN",
			"metrics_addr", ln.Addr().String())
	}
	sm.srv = &http.Server{
		Handler:           metrics.ListenerHandler(metrics.Protect(tok, sm.M.Handler())),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	sm.done = make(chan struct{})
	go func() {
		defer close(sm.done)
		if err := sm.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	fmt.Fprintf(a.stdout, "Prometheus metrics: http://%s/metrics\n", ln.Addr())
	log.Info("serving metrics", "metrics_addr", ln.Addr().String(), "token", tok != nil)
	return sm, nil
}

// stop shuts the separate metrics listener down (a no-op without one).
func (sm *servedMetrics) stop() {
	if sm == nil || sm.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = sm.srv.Shutdown(ctx)
	<-sm.done
}

// metricsToken reads the scrape token: from CUSTOS_METRICS_TOKEN or the
// --metrics-token-file, never from the command line.
func (a *app) metricsToken() (*metrics.Token, error) {
	v := a.env.get("CUSTOS_METRICS_TOKEN")
	switch {
	case v != "" && a.cfg.MetricsTokenFile != "":
		return nil, errors.New("give the metrics token in CUSTOS_METRICS_TOKEN or in --metrics-token-file, not both")
	case v != "":
		return metrics.NewToken(v)
	case a.cfg.MetricsTokenFile != "":
		return metrics.ReadTokenFile(a.cfg.MetricsTokenFile)
	}
	return nil, nil
}

// sinkStatus reports each alert sink's status and deliveries to the
// metrics (a failing sink is visible there as well as in `alerts sinks
// list`).
func sinkStatus(n *node.Node) func(context.Context) ([]metrics.SinkStatus, error) {
	return func(ctx context.Context) ([]metrics.SinkStatus, error) {
		var out []metrics.SinkStatus
		err := n.DB.Read(ctx, func(tx *store.Tx) error {
			sinks, err := tx.AlertSinks(ctx)
			if err != nil {
				return err
			}
			counts, err := tx.CountAlertDeliveries(ctx)
			if err != nil {
				return err
			}
			for _, k := range sinks {
				s := metrics.SinkStatus{Name: k.Name, Kind: k.Kind, Enabled: k.Enabled, ConsecutiveFailures: k.ConsecutiveFailures, Deliveries: map[string]int{}}
				if k.LastOKAt != nil {
					s.LastSuccess = *k.LastOKAt
				}
				if k.LastErrorAt != nil {
					s.LastFailure = *k.LastErrorAt
				}
				for _, st := range []string{store.DeliveryPending, store.DeliverySent, store.DeliveryFailed} {
					s.Deliveries[st] = counts[[2]string{k.Name, st}]
				}
				out = append(out, s)
			}
			return nil
		})
		return out, err
	}
}

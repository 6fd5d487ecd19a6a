package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/web"
)

// BenchmarkMetricsMiddleware serves the same request through the server
// with and without metrics, alternating batches of each in one run, and
// reports the ratio instrumented/uninstrumented (1.00 = no cost: the
// median over pairs of batches, and the ratio of the totals) next to both
// costs per request. /healthz is the cheapest route (the worst case
// for the ratio); a customer read is the common one.
//
//	go test -run '^$' -bench BenchmarkMetricsMiddleware ./internal/web/
func BenchmarkMetricsMiddleware(b *testing.B) {
	auth.UseCheapHashingForTests(b)
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	ctx := context.Background()
	n, err := node.Open(ctx, cfg, node.Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	u, err := n.Auth.CreateUser(ctx, audit.Event{Actor: "bench"}, auth.NewUser{Email: "s1@example.com", Name: "s1", Role: "sales", Password: "correct horse battery"})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := n.Auth.CreateToken(ctx, audit.Event{Actor: "bench"}, u.ID, "bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	plain := web.New(n.DB, n.Auth, n.CRM, web.Options{}).Handler()
	instrumented := web.New(n.DB, n.Auth, n.CRM, web.Options{Metrics: metrics.New(metrics.Options{DB: n.DB})}).Handler()

	create := httptest.NewRequest("POST", "/api/v1/customers", strings.NewReader(`{"name":"Acme","phone":"13800138000"}`))
	create.Header.Set("Authorization", "Bearer "+tok)
	create.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	plain.ServeHTTP(w, create)
	var c struct{ ID string }
	if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil || w.Code != http.StatusCreated {
		b.Fatalf("create: %d %s", w.Code, w.Body)
	}

	// Batches alternate which handler goes first (ABBA...), so a trend —
	// the audit trail grows with every read — weighs on both alike; a
	// batch is short next to the request for the slow route.
	for _, bc := range []struct {
		name, path string
		auth       bool
		batch      int
	}{
		{"healthz", "/healthz", false, 64},
		{"customer_read", "/api/v1/customers/" + c.ID, true, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", bc.path, nil)
			if bc.auth {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			serve := func(h http.Handler) {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", bc.path, w.Code, w.Body)
				}
			}
			serve(plain)
			serve(instrumented)
			batch := bc.batch
			var tPlain, tInstr time.Duration
			var ratios []float64 // per pair of batches: robust to bursts of load on the machine
			b.ReportAllocs()
			b.ResetTimer()
			for done, i := 0, 0; done < b.N; done, i = done+batch, i+1 {
				k := min(batch, b.N-done)
				first, second := plain, instrumented
				if i%2 == 1 { // alternate which goes first
					first, second = instrumented, plain
				}
				t0 := time.Now()
				for range k {
					serve(first)
				}
				t1 := time.Now()
				for range k {
					serve(second)
				}
				t2 := time.Now()
				p, in := t1.Sub(t0), t2.Sub(t1)
				if i%2 == 1 {
					p, in = in, p
				}
				tPlain += p
				tInstr += in
				ratios = append(ratios, float64(in)/float64(p))
			}
			b.StopTimer()
			slices.Sort(ratios)
			b.ReportMetric(float64(tPlain.Nanoseconds())/float64(b.N), "plain-ns/req")
			b.ReportMetric(float64(tInstr.Nanoseconds())/float64(b.N), "instrumented-ns/req")
			b.ReportMetric(float64(tInstr)/float64(tPlain), "total-ratio")
			b.ReportMetric(ratios[len(ratios)/2], "instrumented/plain")
		})
	}
}

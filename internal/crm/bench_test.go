package crm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/demo"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/settings"
)

// noopCipher stores plaintext: it exists only here, to measure what
// encryption costs on the guarded path. Never use it outside a benchmark.
type noopCipher struct{}

func (noopCipher) Seal(_ seal.Key, _ seal.AAD, pt []byte) ([]byte, error) {
	return append([]byte(nil), pt...), nil
}
func (noopCipher) Open(_ seal.Key, _ seal.AAD, ct []byte) ([]byte, error) {
	return append([]byte(nil), ct...), nil
}

var ciphers = []struct {
	name string
	c    seal.Cipher
}{{"cipher=aes-gcm", seal.GCM{}}, {"cipher=none", noopCipher{}}}

const benchCustomers = 2000

// benchEnv is a SQLite data directory with benchCustomers demo customers.
func benchEnv(b *testing.B, c seal.Cipher) (*env, []crm.Customer) {
	return benchEnvWith(b, crm.Options{Cipher: c})
}

func benchEnvWith(b *testing.B, o crm.Options) (*env, []crm.Customer) {
	b.Helper()
	if o.Env == nil {
		// Listing every customer to set up is bulk viewing: keep the
		// guard's thresholds out of reach.
		o.Env = unguardedEnv
	}
	e := newEnv(b, "sqlite", o)
	g := demo.New(42, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	var rows []crm.ImportRow
	for i, dc := range g.Customers(benchCustomers) {
		f := crm.CustomerFields{Name: str(dc.Name), Kind: str(dc.Kind), Phones: &dc.Phones, Emails: &dc.Emails, Address: str(dc.Address),
			IDNumber: str(dc.IDNumber), Industry: str(dc.Industry), Level: str(dc.Level), Status: str(dc.Status), Tags: &dc.Tags, Notes: str(dc.Notes)}
		rows = append(rows, crm.ImportRow{Line: i, Fields: f})
	}
	if res, err := e.n.CRM.ImportCustomers(e.ctx, e.admin, rows, nil, crm.ImportOptions{}); err != nil || len(res.Errors) > 0 {
		b.Fatalf("import: %v %v", err, res.Errors)
	}
	var all []crm.Customer
	for lq := (crm.ListQuery{Limit: 200}); ; {
		page, err := e.n.CRM.ListCustomers(e.ctx, e.admin, lq)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			break
		}
		lq.Cursor = page.Next
	}
	return e, all
}

func BenchmarkCreateCustomer(b *testing.B) {
	for _, c := range ciphers {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, "sqlite", crm.Options{Cipher: c.c})
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				_, err := e.n.CRM.CreateCustomer(e.ctx, e.s1, crm.CustomerFields{
					Name: str(fmt.Sprintf("杭州云启科技有限公司 %d", i)), Phones: strs(fmt.Sprintf("138%08d", i)),
					Emails: strs(fmt.Sprintf("c%d@yunqi.com.cn", i)), Address: str("浙江省杭州市西湖区文三路 478 号"),
					Notes: str("客户对报价比较敏感，下周二再跟进。"),
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetCustomer(b *testing.B) {
	for _, c := range ciphers {
		b.Run(c.name, func(b *testing.B) {
			e, cs := benchEnv(b, c.c)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := e.n.CRM.GetCustomer(e.ctx, e.admin, cs[i%len(cs)].ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSearchCustomer(b *testing.B) {
	for _, c := range ciphers {
		for _, kind := range []string{"phone", "name-prefix"} {
			b.Run(c.name+"/"+kind, func(b *testing.B) {
				e, cs := benchEnv(b, c.c)
				var qs []string
				for _, cu := range cs {
					switch {
					case kind == "phone" && len(cu.Phones) > 0:
						qs = append(qs, cu.Phones[0])
					case kind == "name-prefix":
						qs = append(qs, string([]rune(cu.Name)[:2]))
					}
				}
				b.ResetTimer()
				found := 0
				for i := 0; b.Loop(); i++ {
					page, err := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{Q: qs[i%len(qs)], Limit: 20})
					if err != nil {
						b.Fatal(err)
					}
					found += len(page.Items)
				}
				if found == 0 {
					b.Fatal("searches found nothing")
				}
			})
		}
	}
}

// BenchmarkDetectors measures what monitoring adds to a customer read: the
// bulk-viewing guard on the request path (a distinct-customer window in the
// database, in the read's audit transaction) plus the stream detectors'
// share (Engine.Step judges the new events every 100 reads, inside the
// timed part). Two services share one database: each iteration reads the
// same customer through the guarded service and through one without the
// guard, alternating which goes first, so load and caches weigh on both
// alike; the "on/off" metric is the ratio of their times in this run.
//
// reads=typical: a rep working through 150 customers of their book with
// the default thresholds (alert at 200, suspend at 400 an hour).
// reads=distinct: the worst case, thresholds out of reach and reads
// cycling through all benchCustomers customers, each new to the window on
// the first pass (the window grows to 2,000 entries).
func BenchmarkDetectors(b *testing.B) {
	for _, c := range []struct {
		name string
		env  func(string) (string, bool)
		set  int
	}{{"reads=typical", noEnv, 150}, {"reads=distinct", unguardedEnv, benchCustomers}} {
		b.Run(c.name, func(b *testing.B) {
			e, cs := benchEnvWith(b, crm.Options{Env: unguardedEnv})
			cs = cs[:c.set]
			on := crm.New(e.n.DB, e.n.Keys, crm.Options{Env: c.env})
			off := crm.New(e.n.DB, e.n.Keys, crm.Options{Env: c.env, WithoutGuard: true})
			eng := &monitor.Engine{DB: e.n.DB, Env: c.env}
			if _, err := eng.Step(e.ctx); err != nil { // the cursor starts here
				b.Fatal(err)
			}
			var tOn, tOff time.Duration
			read := func(svc *crm.Service, id string, step bool, total *time.Duration) {
				t0 := time.Now()
				if _, err := svc.GetCustomer(e.ctx, e.admin, id); err != nil {
					b.Fatal(err)
				}
				if step {
					if _, err := eng.Step(e.ctx); err != nil {
						b.Fatal(err)
					}
				}
				*total += time.Since(t0)
			}
			n := 0
			for i := 0; b.Loop(); i++ {
				id, step := cs[i%len(cs)].ID, i%100 == 99
				if i%2 == 0 {
					read(on, id, step, &tOn)
					read(off, id, false, &tOff)
				} else {
					read(off, id, false, &tOff)
					read(on, id, step, &tOn)
				}
				n++
			}
			b.ReportMetric(float64(tOn.Nanoseconds())/float64(n), "ns/read-on")
			b.ReportMetric(float64(tOff.Nanoseconds())/float64(n), "ns/read-off")
			b.ReportMetric(float64(tOn)/float64(tOff), "on/off")
		})
	}
}

func noEnv(string) (string, bool) { return "", false }

// unguardedEnv sets the bulk-viewing thresholds out of reach.
func unguardedEnv(k string) (string, bool) {
	switch k {
	case settings.EnvName(settings.ViewsAlertPerHour), settings.EnvName(settings.ViewsSuspendPerHour):
		return "1000000", true
	}
	return "", false
}

package web

import (
	"context"
	"flag"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/demo"
	"github.com/custos/custos/internal/node"
)

var (
	uiBenchData = flag.String("ui.data", "", "a data directory made by `custos demo` (copied first) for the page benchmarks; empty: generate -ui.customers")
	uiBenchN    = flag.Int("ui.customers", 2000, "customers to generate for the page benchmarks when -ui.data is empty")
)

// uiBench is a node with a sales team's book of demo customers and a
// signed-in manager who sees the reps' customers (most of the dataset).
type uiBench struct {
	h       http.Handler
	cookies []*http.Cookie
	ids     []string // customers the manager sees, for the detail pages
	query   string   // a Chinese name fragment that finds customers
	total   int
}

func newUIBench(b *testing.B) *uiBench {
	b.Helper()
	auth.UseCheapHashingForTests(b)
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	if *uiBenchData != "" {
		// The benchmark writes audit events: it works on a copy.
		if err := os.CopyFS(cfg.DataDir, os.DirFS(*uiBenchData)); err != nil && !os.IsExist(err) {
			b.Fatal(err)
		}
		// CopyFS leaves the files readable by all; keys must not be.
		err := filepath.WalkDir(cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			return os.Chmod(p, 0o600)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	n, err := node.Open(ctx, cfg, node.Options{Create: *uiBenchData == ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	if *uiBenchData == "" {
		generateBook(b, n, *uiBenchN)
	}
	users, err := n.Auth.ListUsers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var manager *auth.User
	for i, u := range users {
		if u.Role == "manager" && !u.Disabled {
			manager = &users[i]
			break
		}
	}
	if manager == nil {
		b.Fatal("the dataset has no manager")
	}
	// A passkey sign-in counts as both factors: the manager's role needs two.
	res, err := n.Auth.OpenVerifiedSession(ctx, audit.Event{Actor: "bench"}, manager.ID, "passkey", true)
	if err != nil {
		b.Fatal(err)
	}
	ub := &uiBench{h: New(n.DB, n.Auth, n.CRM, Options{}).Handler(),
		cookies: []*http.Cookie{{Name: sessionCookie, Value: res.Token}, {Name: csrfCookie, Value: res.CSRF}}}
	p, err := n.CRM.Principal(ctx, access.Subject{UserID: manager.ID, Actor: "user:" + manager.ID, Role: manager.Role})
	if err != nil {
		b.Fatal(err)
	}
	if ub.total, err = n.CRM.CountCustomers(ctx, p, crm.ListQuery{}); err != nil {
		b.Fatal(err)
	}
	// The detail pages cycle through 20 customers: the bulk-viewing guard
	// would rightly suspend a manager who opens thousands within the hour.
	// They are the reps' (the pool shows no history before a claim).
	page, err := n.CRM.ListCustomers(ctx, p, crm.ListQuery{Limit: 40, Sort: crm.SortOldest})
	if err != nil || len(page.Items) == 0 {
		b.Fatalf("list: %v", err)
	}
	for _, c := range page.Items {
		if c.OwnerID != "" && len(ub.ids) < 20 {
			ub.ids = append(ub.ids, c.ID)
		}
	}
	ub.query = firstCJK(page.Items[0].Name)
	return ub
}

// firstCJK returns the first two Chinese characters of a name (a search a
// person would type), or its first word.
func firstCJK(name string) string {
	var out []rune
	for _, r := range name {
		if r >= 0x4e00 && r <= 0x9fff {
			out = append(out, r)
			if len(out) == 2 {
				return string(out)
			}
		}
	}
	return strings.Fields(name)[0]
}

// generateBook imports n demo customers (with contacts and interactions),
// nine in ten owned by two reps, and adds their manager.
func generateBook(b *testing.B, n *node.Node, count int) {
	b.Helper()
	ctx := context.Background()
	var reps []string
	for _, u := range []struct{ email, role string }{{"rep1@bench.example", "sales"}, {"rep2@bench.example", "sales"}, {"boss@bench.example", "manager"}} {
		user, err := n.Auth.CreateUser(ctx, audit.Event{Actor: "bench"}, auth.NewUser{Email: u.email, Name: u.email, Role: u.role, Password: uiPassword})
		if err != nil {
			b.Fatal(err)
		}
		if u.role == "sales" {
			reps = append(reps, user.ID)
		}
	}
	g := demo.New(1, time.Now())
	s := func(v string) *string { return &v }
	l := func(v []string) *[]string { return &v }
	for done := 0; done < count; {
		k := min(500, count-done)
		rows := make([]crm.ImportRow, k)
		for i := range rows {
			c := g.Customer()
			owner := ""
			if (done+i)%10 != 0 {
				owner = reps[(done+i)%len(reps)]
			}
			row := crm.ImportRow{Line: i + 1, Fields: crm.CustomerFields{Kind: s(c.Kind), Name: s(c.Name), Phones: l(c.Phones), Emails: l(c.Emails),
				Address: s(c.Address), IDNumber: s(c.IDNumber), Industry: s(c.Industry), Level: s(c.Level), Source: s(c.Source), Status: s(c.Status),
				Tags: l(c.Tags), Notes: s(c.Notes), OwnerID: s(owner)}}
			for _, ct := range c.Contacts {
				row.Contacts = append(row.Contacts, crm.ContactFields{Name: s(ct.Name), Title: s(ct.Title), Phones: l(ct.Phones), Emails: l(ct.Emails)})
			}
			for _, it := range c.Interactions {
				at := it.At
				row.Interactions = append(row.Interactions, crm.InteractionFields{Kind: s(it.Kind), OccurredAt: &at, Summary: s(it.Summary)})
			}
			rows[i] = row
		}
		res, err := n.CRM.ImportCustomers(ctx, access.Operator("bench"), rows, nil, crm.ImportOptions{})
		if err != nil || len(res.Errors) > 0 {
			b.Fatalf("import: %v %v", err, res.Errors)
		}
		done += k
	}
}

// get serves one request as the manager and checks it succeeded.
func (ub *uiBench) get(b *testing.B, path string) int {
	r := httptest.NewRequest("GET", path, nil)
	for _, c := range ub.cookies {
		r.AddCookie(c)
	}
	r.Header.Set("Accept-Language", "zh-CN")
	w := httptest.NewRecorder()
	ub.h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String()[:min(w.Body.Len(), 500)])
	}
	return w.Body.Len()
}

// pair times one page against the JSON API calls that return the same
// data, alternating them in one loop, and reports both and their ratio:
// what the server-rendered page costs over the API that any client would
// need anyway.
func (ub *uiBench) pair(b *testing.B, page func(i int) string, api func(i int) []string) {
	var pageDur, apiDur time.Duration
	var pageBytes int
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		pageBytes = ub.get(b, page(i))
		t1 := time.Now()
		for _, p := range api(i) {
			ub.get(b, p)
		}
		pageDur += t1.Sub(t0)
		apiDur += time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(pageDur.Microseconds())/n/1000, "page-ms/op")
	b.ReportMetric(float64(apiDur.Microseconds())/n/1000, "api-ms/op")
	b.ReportMetric(float64(pageDur)/float64(apiDur), "page/api")
	b.ReportMetric(float64(pageBytes), "page-bytes")
}

// BenchmarkUIPages measures the customer pages as the manager of a sales
// team sees them, against the JSON API returning the same data, on one
// dataset in one run: the first page of the list (50 customers), a search
// by a Chinese name fragment, and a customer's detail (with its contacts
// and timeline). On the 100k-customer demo dataset:
//
//	custos demo --data /tmp/demo100k --customers 100000
//	go test -run '^$' -bench UIPages -benchtime 200x ./internal/web -args -ui.data /tmp/demo100k
func BenchmarkUIPages(b *testing.B) {
	ub := newUIBench(b)
	b.Logf("dataset: %d customers visible to the manager; search %q", ub.total, ub.query)
	b.Run("list", func(b *testing.B) {
		ub.pair(b, func(int) string { return "/customers" }, func(int) []string { return []string{"/api/v1/customers?limit=50"} })
	})
	b.Run("search", func(b *testing.B) {
		q := "q=" + url.QueryEscape(ub.query)
		ub.pair(b, func(int) string { return "/customers?" + q }, func(int) []string { return []string{"/api/v1/customers?limit=50&" + q} })
	})
	b.Run("detail", func(b *testing.B) {
		ub.pair(b, func(i int) string { return "/customers/" + ub.ids[i%len(ub.ids)] }, func(i int) []string {
			id := ub.ids[i%len(ub.ids)]
			return []string{"/api/v1/customers/" + id, "/api/v1/customers/" + id + "/contacts", "/api/v1/customers/" + id + "/interactions"}
		})
	})
}

package backup_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/backup"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/demo"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/store"
)

var benchCustomers = flag.Int("backup.customers", 5000, "customers in the backup benchmarks' dataset")

// benchSource fills a SQLite data directory with demo customers (with
// contacts and interactions) through the import path.
func benchSource(b *testing.B, n int) (*node.Node, keys.RootProvider, []string) {
	b.Helper()
	auth.UseCheapHashingForTests(b)
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	ctx := context.Background()
	nd, err := node.Open(ctx, cfg, node.Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nd.Close() })
	root, err := keys.OpenLocalFile(cfg.RootKeyPath())
	if err != nil {
		b.Fatal(err)
	}
	g := demo.New(1, time.Now())
	str := func(v string) *string { return &v }
	list := func(v []string) *[]string { return &v }
	for done := 0; done < n; {
		k := min(500, n-done)
		rows := make([]crm.ImportRow, k)
		for i := range rows {
			c := g.Customer()
			row := crm.ImportRow{Line: i + 1, Fields: crm.CustomerFields{Kind: str(c.Kind), Name: str(c.Name), Phones: list(c.Phones), Emails: list(c.Emails),
				Address: str(c.Address), IDNumber: str(c.IDNumber), Notes: str(c.Notes), Industry: str(c.Industry), Tags: list(c.Tags)}}
			for _, ct := range c.Contacts {
				row.Contacts = append(row.Contacts, crm.ContactFields{Name: str(ct.Name), Title: str(ct.Title), Phones: list(ct.Phones), Emails: list(ct.Emails)})
			}
			for _, it := range c.Interactions {
				at := it.At
				row.Interactions = append(row.Interactions, crm.InteractionFields{Kind: str(it.Kind), OccurredAt: &at, Summary: str(it.Summary)})
			}
			rows[i] = row
		}
		res, err := nd.CRM.ImportCustomers(ctx, access.Operator("bench"), rows, nil, crm.ImportOptions{})
		if err != nil || len(res.Errors) > 0 {
			b.Fatalf("import: %v %v", err, res.Errors)
		}
		done += k
	}
	var ids []string
	err = nd.DB.Snapshot(ctx, func(s *store.Snap) error {
		for _, t := range s.Tables() {
			if t.Name == "customers" {
				return s.Scan(ctx, t, func(row []any) error { ids = append(ids, row[t.Column("id")].(string)); return nil })
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return nd, root, ids
}

// BenchmarkBackup measures, in one run on the same dataset: a full
// backup's throughput (MB/s of logical data), and an incremental backup
// after 1% of the customers changed, as a percentage of the full one in
// time and in stored size (the target: at most 5% for both).
//
//	go test -run '^$' -bench Backup -benchtime 3x ./internal/backup/
func BenchmarkBackup(b *testing.B) {
	nd, root, ids := benchSource(b, *benchCustomers)
	ctx := context.Background()
	p := access.Operator("bench")
	var fullTime, incTime time.Duration
	var fullSize, incSize, fullStream int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := backup.OpenDestination(ctx, "file://"+filepath.Join(b.TempDir(), fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		dests := []*backup.Destination{d}
		full, err := backup.Create(ctx, backup.CreateOptions{DB: nd.DB, Root: root, Kind: backup.Full, Destinations: dests, Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for j := 0; j < len(ids)/100; j++ {
			id := ids[(i*len(ids)/100+j)%len(ids)]
			name := fmt.Sprintf("Changed %d-%d", i, j)
			if _, err := nd.CRM.UpdateCustomer(ctx, p, id, crm.CustomerFields{Name: &name}, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		inc, err := backup.Create(ctx, backup.CreateOptions{DB: nd.DB, Root: root, Kind: backup.Incremental, Destinations: dests, Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		fullTime += full.Elapsed
		incTime += inc.Elapsed
		fullSize += full.Manifest.StoredBytes
		fullStream += full.Manifest.StreamBytes
		incSize += inc.Manifest.StoredBytes
		_ = d.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(fullStream)/1e6/fullTime.Seconds(), "full-MB/s")
	b.ReportMetric(float64(fullSize)/float64(b.N)/1e6, "full-MB-stored")
	b.ReportMetric(100*incTime.Seconds()/fullTime.Seconds(), "inc/full-time-%")
	b.ReportMetric(100*float64(incSize)/float64(fullSize), "inc/full-size-%")
	if incTime*20 > fullTime || incSize*20 > fullSize {
		b.Errorf("an incremental after 1%% changes cost %.1f%% of a full backup's time and %.1f%% of its size; the target is at most 5%%",
			100*incTime.Seconds()/fullTime.Seconds(), 100*float64(incSize)/float64(fullSize))
	}
}

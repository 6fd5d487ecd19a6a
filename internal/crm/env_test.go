package crm_test

import (
	"context"
	"database/sql"
	"os"
	"sync/atomic"
	"testing"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// countingCipher counts decryptions, to prove searches are index probes.
type countingCipher struct {
	seal.GCM
	opens atomic.Int64
}

func (c *countingCipher) Open(k seal.Key, aad seal.AAD, ct []byte) ([]byte, error) {
	c.opens.Add(1)
	return c.GCM.Open(k, aad, ct)
}

type env struct {
	t       testing.TB
	ctx     context.Context
	n       *node.Node
	cfg     config.Config
	cipher  *countingCipher
	admin   access.Principal
	manager access.Principal
	s1, s2  access.Principal
	support access.Principal
}

// engines runs f once on SQLite and once on PostgreSQL.
func engines(t *testing.T, f func(t *testing.T, e *env)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { f(t, newEnv(t, engine, crm.Options{})) })
	}
}

func newEnv(t testing.TB, engine string, o crm.Options) *env {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if engine == "postgres" {
		cfg.DB = pgtest.Shared(t).NewDatabase(t)
	}
	cc := &countingCipher{}
	if o.Cipher == nil {
		o.Cipher = cc
	}
	ctx := context.Background()
	n, err := node.Open(ctx, cfg, node.Options{Create: true, CRM: o, Now: o.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	e := &env{t: t, ctx: ctx, n: n, cfg: cfg, cipher: cc}
	e.admin = e.user("admin@example.com", "admin")
	e.manager = e.user("manager@example.com", "manager")
	e.s1 = e.user("s1@example.com", "sales")
	e.s2 = e.user("s2@example.com", "sales")
	e.support = e.user("support@example.com", "support")
	return e
}

func (e *env) user(email, role string) access.Principal {
	e.t.Helper()
	u, err := e.n.Auth.CreateUser(e.ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: email, Name: "User " + role, Role: role, Password: "correct horse battery"})
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.n.CRM.Principal(e.ctx, access.Subject{UserID: u.ID, Actor: "user:" + u.ID, Role: role})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func str(s string) *string       { return &s }
func strs(s ...string) *[]string { return &s }
func (e *env) rawDB() *sql.DB {
	e.t.Helper()
	driver, dsn := "sqlite", e.cfg.DatabaseDSN()
	if e.cfg.DB != "" {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = db.Close() })
	return db
}

func (e *env) create(p access.Principal, name string, mod func(*crm.CustomerFields)) crm.Customer {
	e.t.Helper()
	f := crm.CustomerFields{Name: &name}
	if mod != nil {
		mod(&f)
	}
	c, err := e.n.CRM.CreateCustomer(e.ctx, p, f)
	if err != nil {
		e.t.Fatalf("create %q: %v", name, err)
	}
	return c
}

func (e *env) auditCount(action, outcome string) int {
	e.t.Helper()
	n := 0
	err := e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(e.ctx, 0, 100000)
		for _, ev := range evs {
			if ev.Action == action && ev.Outcome == outcome {
				n++
			}
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

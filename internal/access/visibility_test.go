package access_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// visibilityWorlds is how many random worlds each engine checks. Each world
// is generated from its seed alone, so a failing one reruns with
//
//	go test ./internal/access -run 'TestVisibilityMatchesReference/<engine>/seed-<n>$'
const visibilityWorlds = 25

// visNow is the fixed "now" of every world (whole microseconds: the store
// keeps microseconds, so boundaries such as "expires exactly now" survive).
var visNow = time.Date(2031, 3, 14, 15, 9, 26, 535897000, time.UTC)

// TestVisibilityMatchesReference checks, for random role hierarchies, users,
// customers (owned, pooled, hidden, deleted) and shares (by user or role,
// read or edit, expired, expiring exactly now, revoked), that the SQL
// visibility predicate the store builds from access.CustomerScope returns
// exactly the customers a plain in-memory reading of the rules allows:
//
// A principal (user u holding role R) with the read permission sees a
// customer c iff c is not deleted, c is not hidden or the principal has
// view_hidden, and one of: R is see-all; u owns c; c's owner holds a role
// strictly below R; a share on c that is neither revoked nor expired
// (expires_at NULL or strictly after now) names u or R and c has an owner
// (shares do not reach pool customers: the pool is reached by claim); c is
// in the pool and the principal has claim. Without read it sees nothing.
func TestVisibilityMatchesReference(t *testing.T) {
	engines := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "custos.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.Shared(t).NewDatabase(t) }},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for seed := range uint64(visibilityWorlds) {
				t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
					w := newVisWorld(seed)
					db := openVisDB(t, e.dsn(t))
					w.store(t, db)
					w.check(t, db)
				})
			}
		})
	}
}

func openVisDB(t *testing.T, dsn string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// --- the world -------------------------------------------------------------------

type visRole struct {
	name, parent string
	seeAll       bool
	perms        []string
}

type visUser struct {
	id, role string
}

type visCustomer struct {
	id      string
	owner   string // "" for the pool
	hidden  bool
	deleted bool
}

type visShare struct {
	id, customer string
	user, role   string // exactly one set
	level        string
	expires      *time.Time
	revoked      *time.Time
	expiryKind   string // for failure reports
}

type visWorld struct {
	seed      uint64
	roles     []visRole // parents before children
	users     []visUser
	customers []visCustomer
	shares    []visShare
}

func newVisWorld(seed uint64) *visWorld {
	rng := rand.New(rand.NewPCG(seed, 0x5ee_d0f_c057_05))
	w := &visWorld{seed: seed}

	// A random forest: each role's parent, if any, comes earlier, so there
	// is no cycle and parents are stored first.
	for i := range 3 + rng.IntN(6) {
		r := visRole{name: fmt.Sprintf("r%d", i)}
		if i > 0 && rng.IntN(4) != 0 {
			r.parent = w.roles[rng.IntN(i)].name
		}
		r.seeAll = rng.IntN(5) == 0
		for _, p := range []struct {
			name string
			odds int // out of 10
		}{{"read", 8}, {"claim", 5}, {"view_hidden", 4}, {"update", 3}} {
			if rng.IntN(10) < p.odds {
				r.perms = append(r.perms, p.name)
			}
		}
		w.roles = append(w.roles, r)
	}
	for i := range 3 + rng.IntN(8) {
		w.users = append(w.users, visUser{id: fmt.Sprintf("u%02d", i), role: w.roles[rng.IntN(len(w.roles))].name})
	}
	for i := range 20 + rng.IntN(41) {
		c := visCustomer{id: fmt.Sprintf("c%03d", i)}
		if rng.IntN(4) != 0 {
			c.owner = w.users[rng.IntN(len(w.users))].id
		}
		c.hidden = rng.IntN(10) < 3
		c.deleted = rng.IntN(7) == 0
		w.customers = append(w.customers, c)
	}
	expiries := []struct {
		kind string
		at   *time.Time
	}{
		{"none", nil},
		{"past", ptrTo(visNow.Add(-time.Hour))},
		{"now-1us", ptrTo(visNow.Add(-time.Microsecond))},
		{"exactly-now", ptrTo(visNow)},
		{"now+1us", ptrTo(visNow.Add(time.Microsecond))},
		{"future", ptrTo(visNow.Add(24 * time.Hour))},
	}
	for i := range rng.IntN(31) {
		s := visShare{id: fmt.Sprintf("s%02d", i), customer: w.customers[rng.IntN(len(w.customers))].id, level: "read"}
		if rng.IntN(2) == 0 {
			s.user = w.users[rng.IntN(len(w.users))].id
		} else {
			s.role = w.roles[rng.IntN(len(w.roles))].name
		}
		if rng.IntN(2) == 0 {
			s.level = "edit"
		}
		e := expiries[rng.IntN(len(expiries))]
		s.expires, s.expiryKind = e.at, e.kind
		if rng.IntN(4) == 0 {
			s.revoked = ptrTo(visNow.Add(-time.Duration(1+rng.IntN(600)) * time.Second))
		}
		w.shares = append(w.shares, s)
	}
	return w
}

func ptrTo[T any](v T) *T { return &v }

func (w *visWorld) storeRoles() []store.Role {
	out := make([]store.Role, len(w.roles))
	for i, r := range w.roles {
		out[i] = store.Role{Name: r.name, Label: r.name, Parent: r.parent, SeeAll: r.seeAll,
			Permissions: strings.Join(r.perms, " "), Fields: "{}", UpdatedAt: visNow.Add(-time.Hour)}
	}
	return out
}

func (w *visWorld) store(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := t.Context()
	created := visNow.Add(-30 * 24 * time.Hour)
	err := db.Write(ctx, func(tx *store.Tx) error {
		for _, r := range w.storeRoles() {
			if err := tx.InsertRole(ctx, r); err != nil {
				return fmt.Errorf("InsertRole(%s): %w", r.Name, err)
			}
		}
		for _, u := range w.users {
			if err := tx.InsertUser(ctx, store.User{
				ID: u.id, EmailBidx: []byte("bidx:" + u.id), Email: []byte("sealed-email:" + u.id), Name: []byte("sealed-name:" + u.id),
				Role: u.role, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$" + u.id, KeyVersion: 1,
				CreatedAt: created, UpdatedAt: created, PasswordChangedAt: created,
			}); err != nil {
				return fmt.Errorf("InsertUser(%s): %w", u.id, err)
			}
		}
		for _, c := range w.customers {
			if err := tx.InsertCustomer(ctx, store.Customer{
				ID: c.id, Kind: "company", OwnerID: c.owner, Industry: "manufacturing", Level: "A", Source: "referral", Status: "active",
				KeyVersion: 1, Name: []byte("sealed-name:" + c.id), CreatedBy: "user:u00", CreatedAt: created, UpdatedAt: created,
				Hidden: c.hidden,
			}); err != nil {
				return fmt.Errorf("InsertCustomer(%s): %w", c.id, err)
			}
			if c.deleted {
				if err := tx.SoftDeleteCustomer(ctx, c.id, visNow.Add(-time.Minute)); err != nil {
					return fmt.Errorf("SoftDeleteCustomer(%s): %w", c.id, err)
				}
			}
		}
		for _, s := range w.shares {
			if err := tx.InsertShare(ctx, store.Share{
				ID: s.id, CustomerID: s.customer, UserID: s.user, Role: s.role, Level: s.level, GrantedBy: "user:u00",
				CreatedAt: created, ExpiresAt: s.expires, RevokedAt: s.revoked,
			}); err != nil {
				return fmt.Errorf("InsertShare(%s): %w", s.id, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed %d: storing the world: %v", w.seed, err)
	}
}

// --- the reference ------------------------------------------------------------------

func (w *visWorld) role(name string) visRole {
	for _, r := range w.roles {
		if r.name == name {
			return r
		}
	}
	panic("no role " + name)
}

func (w *visWorld) userRole(id string) string {
	for _, u := range w.users {
		if u.id == id {
			return u.role
		}
	}
	return ""
}

// strictlyBelow reports whether role sub lies strictly below role sup: sup
// is reached by following parent links up from sub at least once.
func (w *visWorld) strictlyBelow(sub, sup string) bool {
	for cur, steps := w.role(sub).parent, 0; cur != ""; cur, steps = w.role(cur).parent, steps+1 {
		if steps > len(w.roles) {
			panic("cycle in generated roles")
		}
		if cur == sup {
			return true
		}
	}
	return false
}

// shareInForce reports whether s is neither revoked nor expired at visNow.
func shareInForce(s visShare) bool {
	return s.revoked == nil && (s.expires == nil || s.expires.After(visNow))
}

// sharesReaching lists the shares on customer in force that name user or role.
func (w *visWorld) sharesReaching(customer, user, role string) []visShare {
	var out []visShare
	for _, s := range w.shares {
		if s.customer == customer && shareInForce(s) && ((s.user != "" && s.user == user) || (s.role != "" && s.role == role)) {
			out = append(out, s)
		}
	}
	return out
}

// bestShareLevel is "edit" if an edit share reaches, else "read" if a read
// share does, else "".
func (w *visWorld) bestShareLevel(customer, user, role string) string {
	best := ""
	for _, s := range w.sharesReaching(customer, user, role) {
		if s.level == "edit" {
			return "edit"
		}
		best = "read"
	}
	return best
}

// reaches reports whether user u reaches c on any ground, ignoring the
// deleted and hidden conditions (but not the read permission).
func (w *visWorld) reaches(u visUser, c visCustomer) bool {
	r := w.role(u.role)
	if !slices.Contains(r.perms, "read") {
		return false
	}
	switch {
	case r.seeAll:
		return true
	case c.owner != "" && c.owner == u.id:
		return true
	case c.owner != "" && w.strictlyBelow(w.userRole(c.owner), r.name):
		return true
	case c.owner != "" && len(w.sharesReaching(c.id, u.id, r.name)) > 0:
		return true
	case c.owner == "" && slices.Contains(r.perms, "claim"):
		return true
	}
	return false
}

// visible is the reference: does user u see customer c under hidden mode h?
func (w *visWorld) visible(u visUser, c visCustomer, h store.Hidden) bool {
	if c.deleted || !w.reaches(u, c) {
		return false
	}
	switch h {
	case store.HiddenExclude:
		return !c.hidden
	case store.HiddenOnly:
		return c.hidden
	}
	return true
}

// --- the comparison -----------------------------------------------------------------

type visResult struct {
	list      []string
	owners    map[string]string // customer -> owner role, as listed
	count     int
	get       map[string]error // nil: found
	getOwners map[string]string
}

func (w *visWorld) query(ctx context.Context, db *store.DB, sc store.Scope) (visResult, error) {
	res := visResult{owners: map[string]string{}, get: map[string]error{}, getOwners: map[string]string{}}
	err := db.Read(ctx, func(tx *store.Tx) error {
		cs, err := tx.ListCustomers(ctx, store.CustomerQuery{Scope: sc})
		if err != nil {
			return fmt.Errorf("ListCustomers: %w", err)
		}
		for _, c := range cs {
			res.list = append(res.list, c.ID)
			res.owners[c.ID] = c.OwnerRole
		}
		if res.count, err = tx.CountCustomers(ctx, store.CustomerQuery{Scope: sc}); err != nil {
			return fmt.Errorf("CountCustomers: %w", err)
		}
		for _, c := range append(slices.Clone(w.customers), visCustomer{id: "c-missing"}) {
			got, err := tx.GetCustomer(ctx, sc, c.id)
			switch {
			case err == nil:
				res.get[c.id] = nil
				res.getOwners[c.id] = got.OwnerRole
			case errors.Is(err, store.ErrNotFound):
				res.get[c.id] = err
			default:
				return fmt.Errorf("GetCustomer(%s): %w", c.id, err)
			}
		}
		return nil
	})
	return res, err
}

func (w *visWorld) check(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := t.Context()
	roles := w.storeRoles()
	failures := 0
	fail := func(format string, args ...any) {
		t.Helper()
		failures++
		if failures <= 12 {
			t.Errorf("seed %d: "+format, append([]any{w.seed}, args...)...)
		}
	}
	for _, u := range w.users {
		p, err := access.Resolve(access.Subject{UserID: u.id, Actor: "user:" + u.id, Role: u.role}, roles, nil, false)
		if err != nil {
			t.Fatalf("seed %d: Resolve(%s): %v", w.seed, u.id, err)
		}
		r := w.role(u.role)
		sc := access.CustomerScope(p, visNow)

		// The scope's hidden mode follows view_hidden.
		wantHidden := store.HiddenExclude
		if slices.Contains(r.perms, "view_hidden") {
			wantHidden = store.HiddenInclude
		}
		if slices.Contains(r.perms, "read") && sc.Hidden != wantHidden {
			fail("user %s (%s): CustomerScope.Hidden = %v, want %v", u.id, w.describeRole(r.name), sc.Hidden, wantHidden)
		}

		// The scope as given, and for view_hidden holders the list views
		// that leave hidden customers out or show only them.
		modes := []store.Hidden{sc.Hidden}
		if sc.Hidden == store.HiddenInclude {
			modes = append(modes, store.HiddenExclude, store.HiddenOnly)
		}
		for _, h := range modes {
			msc := sc
			msc.Hidden = h
			refHidden := h
			if !slices.Contains(r.perms, "view_hidden") {
				refHidden = store.HiddenExclude // without view_hidden, hidden customers are never visible
			}
			var want []string
			for _, c := range w.customers {
				if w.visible(u, c, refHidden) {
					want = append(want, c.id)
				}
			}
			res, err := w.query(ctx, db, msc)
			if err != nil {
				t.Fatalf("seed %d: user %s, hidden mode %v: %v", w.seed, u.id, h, err)
			}
			got := slices.Sorted(slices.Values(res.list))
			if !slices.Equal(got, want) {
				extra, missing := diff(got, want), diff(want, got)
				fail("user %s (%s), hidden mode %v: ListCustomers disagrees with the reference\n  returned but not allowed: %v\n  allowed but not returned: %v\n%s",
					u.id, w.describeRole(r.name), h, extra, missing, w.describeCustomers(u, append(extra, missing...)))
			}
			if res.count != len(want) {
				fail("user %s (%s), hidden mode %v: CountCustomers = %d, want %d", u.id, w.describeRole(r.name), h, res.count, len(want))
			}
			for _, c := range w.customers {
				found := res.get[c.id] == nil
				if want := slices.Contains(want, c.id); found != want {
					fail("user %s (%s), hidden mode %v: GetCustomer(%s) found = %v, want %v\n%s",
						u.id, w.describeRole(r.name), h, c.id, found, want, w.describeCustomers(u, []string{c.id}))
				}
				if found && res.getOwners[c.id] != w.userRole(c.owner) {
					fail("GetCustomer(%s).OwnerRole = %q, want %q", c.id, res.getOwners[c.id], w.userRole(c.owner))
				}
				if o, ok := res.owners[c.id]; ok && o != w.userRole(c.owner) {
					fail("ListCustomers: %s.OwnerRole = %q, want %q", c.id, o, w.userRole(c.owner))
				}
			}
			if res.get["c-missing"] == nil {
				fail("user %s: GetCustomer of a missing id found something", u.id)
			}
		}

		// The Go relation agrees with the SQL scope: a live customer the
		// principal may see (hidden aside) is reached by some relation, and
		// one it may not see by none.
		for _, c := range w.customers {
			if c.deleted {
				continue
			}
			rel := access.RelationTo(p, c.owner, w.userRole(c.owner), w.bestShareLevel(c.id, u.id, r.name))
			if want := w.reaches(u, c); (rel != access.RelNone) != want {
				fail("user %s (%s): RelationTo(%s) = %v, but the reference says reachable = %v\n%s",
					u.id, w.describeRole(r.name), c.id, rel, want, w.describeCustomers(u, []string{c.id}))
			}
		}
	}
	if failures > 12 {
		t.Errorf("seed %d: ... and %d more failures", w.seed, failures-12)
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// describeRole shows a role, its ancestry and its permissions.
func (w *visWorld) describeRole(name string) string {
	r := w.role(name)
	chain := []string{name}
	for cur := r.parent; cur != ""; cur = w.role(cur).parent {
		chain = append(chain, cur)
	}
	return fmt.Sprintf("role %s [chain %s] see_all=%v perms=%q", name, strings.Join(chain, "<"), r.seeAll, strings.Join(r.perms, " "))
}

func (w *visWorld) describeCustomers(u visUser, ids []string) string {
	var b strings.Builder
	for _, id := range ids {
		for _, c := range w.customers {
			if c.id != id {
				continue
			}
			owner := "pool"
			if c.owner != "" {
				owner = fmt.Sprintf("%s (%s)", c.owner, w.describeRole(w.userRole(c.owner)))
			}
			fmt.Fprintf(&b, "  customer %s: owner %s, hidden=%v, deleted=%v\n", c.id, owner, c.hidden, c.deleted)
			for _, s := range w.shares {
				if s.customer != c.id {
					continue
				}
				to := "user " + s.user
				if s.role != "" {
					to = "role " + s.role
				}
				fmt.Fprintf(&b, "    share %s to %s, %s, expires %s, revoked=%v, in force=%v, reaches %s=%v\n",
					s.id, to, s.level, s.expiryKind, s.revoked != nil, shareInForce(s), u.id,
					shareInForce(s) && (s.user == u.id || (s.role != "" && s.role == u.role)))
			}
		}
	}
	fmt.Fprintf(&b, "  (roles: ")
	for i, r := range w.roles {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(w.describeRole(r.name))
	}
	b.WriteString(")")
	return b.String()
}

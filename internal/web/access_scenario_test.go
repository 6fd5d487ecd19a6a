package web_test

// TestAccessScenarios is the access-control acceptance suite over the real
// HTTP API (an httptest listener, net/http requests with bearer tokens): for
// every data role, every kind of record and every operation it states whether
// the request is allowed or denied, whether the record shows in lists,
// searches, counts and exports, and that no response body ever carries a
// value the principal may not read.
//
// The expectations are derived here, from an independent statement of the
// rules (roles, field policies, relations), not from internal/access: if the
// product or the shipped role templates drift from the rules, this fails.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
)

// --- the clock -----------------------------------------------------------------

// acsClock is the injected clock read by the node and the web server.
type acsClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *acsClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *acsClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// --- the rules ---------------------------------------------------------------------

// acsLevel is a field level, weakest first.
type acsLevel int

const (
	lvHidden acsLevel = iota
	lvMasked
	lvRead
	lvEdit
)

func (l acsLevel) String() string { return [...]string{"hidden", "masked", "read", "edit"}[l] }

// acsRel is how a principal reaches a record, weakest first.
type acsRel int

const (
	relNone acsRel = iota
	relPool
	relShareRead
	relShareEdit
	relFull
)

func (r acsRel) String() string {
	return [...]string{"none", "pool", "shared-read", "shared-edit", "full"}[r]
}

// The governed fields. The value of each is unique per record.
const (
	fName    = "name"
	fPhone   = "phone"
	fEmail   = "email"
	fAddress = "address"
	fID      = "id_number"
	fNotes   = "notes"
	fTags    = "tags"
)

var acsFields = []string{fName, fPhone, fEmail, fAddress, fID, fNotes, fTags}

// acsRole is one acting principal: a user holding a role, and what that role
// may do, as the product's documentation states it.
type acsRole struct {
	key    string // user key and subtest prefix
	role   string
	seeAll bool
	below  []string // roles whose holders' customers it sees
	perms  []string
	fields map[string]acsLevel
}

func (r acsRole) can(p string) bool { return slices.Contains(r.perms, p) }

func allLevels(l acsLevel, kv ...any) map[string]acsLevel {
	m := map[string]acsLevel{}
	for _, f := range acsFields {
		m[f] = l
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(acsLevel)
	}
	return m
}

var dataPerms = []string{"create", "read", "update", "delete", "import", "export", "reveal", "view_hidden", "hide", "claim", "assign", "share"}

var acsRoles = []acsRole{
	{key: "director", role: "sales_director", seeAll: true, below: []string{"manager", "sales"}, perms: dataPerms, fields: allLevels(lvEdit)},
	{key: "manager", role: "manager", below: []string{"sales"},
		perms:  []string{"create", "read", "update", "delete", "import", "export", "reveal", "claim", "assign", "share"},
		fields: allLevels(lvEdit, fID, lvMasked)},
	{key: "rep", role: "sales",
		perms:  []string{"create", "read", "update", "delete", "reveal", "claim", "share"},
		fields: allLevels(lvEdit, fID, lvMasked)},
	{key: "support", role: "support", seeAll: true, perms: []string{"read", "update", "reveal"},
		fields: map[string]acsLevel{fName: lvRead, fPhone: lvMasked, fEmail: lvMasked, fAddress: lvMasked, fNotes: lvEdit, fTags: lvEdit}},
	{key: "finance", role: "finance", seeAll: true, perms: []string{"read", "reveal"},
		fields: map[string]acsLevel{fName: lvRead, fPhone: lvMasked, fEmail: lvMasked, fAddress: lvRead, fID: lvMasked, fTags: lvRead}},
	{key: "auditor", role: "auditor", perms: []string{"read_audit"}, fields: map[string]acsLevel{}},
	{key: "admin", role: "admin", seeAll: true, perms: dataPerms, fields: allLevels(lvEdit)},
}

// acsUsers are the users of the suite and their roles: the actors above plus
// two more sales reps, "peer" and "other", who own records.
var acsUsers = map[string]string{
	"director": "sales_director", "manager": "manager", "rep": "sales", "peer": "sales", "other": "sales",
	"support": "support", "finance": "finance", "auditor": "auditor", "admin": "admin",
}

// fieldLevel is the level at which r sees field f of a record it reaches by
// rel: the role's policy, read-only without update, capped at read for a
// read-only share, and for a pool customer contact fields masked, notes
// hidden, nothing above read.
func (r acsRole) fieldLevel(f string, rel acsRel) acsLevel {
	l := r.fields[f]
	if l == lvEdit && !r.can("update") {
		l = lvRead
	}
	switch rel {
	case relNone:
		return lvHidden
	case relShareRead:
		l = min(l, lvRead)
	case relPool:
		switch f {
		case fPhone, fEmail, fAddress, fID:
			l = min(l, lvMasked)
		case fNotes:
			l = lvHidden
		}
		l = min(l, lvRead)
	}
	return l
}

// canSearch: a search or filter may only probe a field the role may read.
func (r acsRole) canSearch(f string) bool { return r.fields[f] >= lvRead }

// --- the records -----------------------------------------------------------------

// acsKind is a kind of record, seen from the sales rep "rep".
type acsKind struct {
	kind     string
	code     string // two CJK characters unique to the kind
	owner    string // user key; "" is the public pool
	share    string // "read" or "edit": shared with rep
	expiring bool   // the share has expired
	revoked  bool   // the share was revoked
	hidden   bool
}

var acsKinds = []acsKind{
	{kind: "own", code: "自有", owner: "rep"},
	{kind: "subordinate", code: "下属", owner: "peer"}, // a rep's: the manager's subordinate
	{kind: "peer", code: "同僚", owner: "other"},       // another rep's, from rep's viewpoint
	{kind: "superior", code: "上级", owner: "manager"},
	{kind: "director", code: "总监", owner: "director"}, // above the manager
	{kind: "shared", code: "共享", owner: "other", share: "read"},
	{kind: "shared-edit", code: "共编", owner: "other", share: "edit"},
	{kind: "expired", code: "过期", owner: "other", share: "read", expiring: true},
	{kind: "revoked", code: "撤销", owner: "other", share: "read", revoked: true},
	{kind: "pool", code: "公海", owner: ""},
	{kind: "hidden", code: "隐藏", owner: "rep", hidden: true},
	{kind: "hidden-shared", code: "密享", owner: "other", share: "edit", hidden: true},
}

var acsPrefixes = []string{"甲方", "乙方", "丙方", "丁方", "戊方", "己方", "庚方", "辛方", "壬方", "癸方"}

// acsRecord is one created customer and every value each field ever held.
type acsRecord struct {
	acsKind
	set    int
	id     string
	name   string
	phone  string // as typed (national digits); stored as +86...
	email  string
	addr   string
	idNo   string
	tag    string
	values map[string][]string
	// The customer's contact and interaction (first fixture set only):
	// their values are governed by the customer's field levels (contact
	// name, phone, email and notes; an interaction summary like notes).
	contactID string
	contact   map[string]string
	summary   string
}

// universe lists every value of the record with the field governing it.
func (r *acsRecord) universe() [][2]string {
	var out [][2]string
	for _, f := range acsFields {
		for _, v := range r.values[f] {
			out = append(out, [2]string{f, v})
		}
	}
	for _, f := range []string{fName, fPhone, fEmail, fNotes} {
		out = append(out, [2]string{f, r.contact[f]})
	}
	return append(out, [2]string{fNotes, r.summary})
}

// prcID completes 17 digits with the ISO 7064 MOD 11-2 check character.
func prcID(base17 string) string {
	w := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, c := range base17 {
		sum += int(c-'0') * w[i]
	}
	return base17 + string("10X98765432"[sum%11])
}

func newRecord(k acsKind, set, idx int) *acsRecord {
	p := acsPrefixes[set]
	r := &acsRecord{acsKind: k, set: set,
		name:  p + k.code + "科技有限公司",
		phone: fmt.Sprintf("139%04d%04d", 2000+set, 3000+idx),
		email: fmt.Sprintf("c%02d.%s.s%d@jiafang-kehu.cn", idx, k.kind, set),
		addr:  "北京市海淀区中关村大街" + p + k.code + "大厦",
		idNo:  prcID(fmt.Sprintf("110105198%d%02d%02d%03d", set%10, 1+idx%12, 10+set, 100+idx)),
		tag:   fmt.Sprintf("tag-%s-s%d", k.kind, set),
	}
	r.values = map[string][]string{
		fName: {r.name}, fPhone: {r.phone}, fEmail: {r.email}, fAddress: {r.addr}, fID: {r.idNo},
		fNotes: {"机密备注：" + p + k.code + "客户的底价"}, fTags: {r.tag},
	}
	r.contact = map[string]string{
		fName:  "联系人" + p + k.code + "先生",
		fPhone: fmt.Sprintf("137%04d%04d", 2000+set, 3000+idx),
		fEmail: fmt.Sprintf("lx%02d.%s.s%d@kehu-lianxi.cn", idx, k.kind, set),
		fNotes: "联系人私事：" + p + k.code + "的家庭住址",
	}
	r.summary = "通话纪要：" + p + k.code + "同意了报价"
	return r
}

// --- the client --------------------------------------------------------------------

type acsResp struct {
	status int
	ctype  string
	body   string
}

type acsSuite struct {
	t      *testing.T
	h      *harness
	clock  *acsClock
	srv    *httptest.Server
	ids    map[string]string // user key -> id
	tokens map[string]string // user key -> bearer token
	// all holds every record of every fixture set (the universe of values
	// that body checks look for).
	all []*acsRecord
}

func (s *acsSuite) do(t *testing.T, as, method, path string, body any) acsResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	rq, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		rq.Header.Set("Content-Type", "application/json")
	}
	if as != "" {
		rq.Header.Set("Authorization", "Bearer "+s.tokens[as])
	}
	res, err := s.srv.Client().Do(rq)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return acsResp{status: res.StatusCode, ctype: res.Header.Get("Content-Type"), body: string(b)}
}

// must sends a request of the set-up and fails unless it gets status.
func (s *acsSuite) must(as, method, path string, body any, status int) map[string]any {
	s.t.Helper()
	r := s.do(s.t, as, method, path, body)
	if r.status != status {
		s.t.Fatalf("set-up %s %s as %s: %d, want %d: %s", method, path, as, r.status, status, r.body)
	}
	var m map[string]any
	if strings.HasPrefix(r.ctype, "application/json") {
		if err := json.Unmarshal([]byte(r.body), &m); err != nil {
			s.t.Fatalf("set-up %s %s: %v: %s", method, path, err, r.body)
		}
	}
	return m
}

func newAcsSuite(t *testing.T) *acsSuite {
	clock := &acsClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	h := newHarnessAt(t, clock.Now)
	srv := httptest.NewServer(h.h)
	t.Cleanup(srv.Close)
	s := &acsSuite{t: t, h: h, clock: clock, srv: srv, ids: map[string]string{}, tokens: map[string]string{}}
	ctx := context.Background()
	for key, role := range acsUsers {
		if id, ok := h.ids[key]; ok { // admin and manager come with the harness
			s.ids[key], s.tokens[key] = id, h.tokens[key]
			continue
		}
		u, err := h.n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: key + "@example.com", Name: key, Role: role, Password: "correct horse battery"})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := h.n.Auth.CreateToken(ctx, audit.Event{Actor: "test"}, u.ID, "test", 0)
		if err != nil {
			t.Fatal(err)
		}
		s.ids[key], s.tokens[key] = u.ID, tok
	}
	return s
}

// fixture creates one set of records through the API as the admin: owners
// assigned, shares granted, the expiring share run out by advancing the
// clock, the hidden one hidden.
func (s *acsSuite) fixture(set int, rich bool) map[string]*acsRecord {
	s.t.Helper()
	recs := map[string]*acsRecord{}
	for i, k := range acsKinds {
		r := newRecord(k, set, i)
		in := map[string]any{"name": r.name, "phone": r.phone, "email": r.email, "address": r.addr, "id_number": r.idNo,
			"notes": r.values[fNotes][0], "tags": []string{r.tag}, "owner_id": s.ids[k.owner]}
		if k.owner == "" {
			in["owner_id"] = ""
		}
		c := s.must("admin", "POST", "/api/v1/customers", in, 201)
		r.id = c["id"].(string)
		if got, _ := c["owner_id"].(string); got != s.ids[k.owner] {
			s.t.Fatalf("set-up: %s created with owner_id %q, want %q", k.kind, got, s.ids[k.owner])
		}
		if rich {
			ct := s.must("admin", "POST", "/api/v1/customers/"+r.id+"/contacts", map[string]any{"name": r.contact[fName],
				"phone": r.contact[fPhone], "email": r.contact[fEmail], "notes": r.contact[fNotes]}, 201)
			r.contactID = ct["id"].(string)
			s.must("admin", "POST", "/api/v1/customers/"+r.id+"/interactions", map[string]any{"kind": "call", "summary": r.summary}, 201)
		}
		if k.share != "" {
			sh := map[string]any{"user_id": s.ids["rep"], "level": k.share}
			if k.expiring {
				sh["expires_at"] = s.clock.Now().Add(time.Hour).Format(time.RFC3339)
			}
			shID := s.must("admin", "POST", "/api/v1/customers/"+r.id+"/shares", sh, 201)["id"].(string)
			if k.revoked {
				s.must("admin", "DELETE", "/api/v1/shares/"+shID, nil, 204)
			}
		}
		if k.hidden {
			c := s.must("admin", "PATCH", "/api/v1/customers/"+r.id, map[string]any{"hidden": true}, 200)
			if c["hidden"] != true {
				s.t.Fatalf("set-up: PATCH hidden gave %v", c["hidden"])
			}
		}
		recs[k.kind] = r
		s.all = append(s.all, r)
	}
	// The expiring share is in force, then runs out.
	exp := recs["expired"]
	if r := s.do(s.t, "rep", "GET", "/api/v1/customers/"+exp.id, nil); r.status != 200 || !strings.Contains(r.body, exp.name) {
		s.t.Fatalf("set-up: a share in force does not show the customer: %d %s", r.status, r.body)
	}
	s.clock.Advance(2 * time.Hour)
	if r := s.do(s.t, "rep", "GET", "/api/v1/customers/"+exp.id, nil); r.status != 404 {
		s.t.Fatalf("set-up: an expired share still shows the customer: %d %s", r.status, r.body)
	}
	return recs
}

// relation is how role reaches rec (after any expiring share has run out).
func relation(r acsRole, rec *acsRecord) acsRel {
	switch {
	case !r.can("read"):
		return relNone
	case rec.hidden && !r.can("view_hidden"):
		return relNone
	case r.seeAll:
		return relFull
	case rec.owner != "" && rec.owner == r.key:
		return relFull
	case rec.owner != "" && slices.Contains(r.below, acsUsers[rec.owner]):
		return relFull
	case r.key == "rep" && rec.share == "edit" && !rec.expiring && !rec.revoked:
		return relShareEdit
	case r.key == "rep" && rec.share == "read" && !rec.expiring && !rec.revoked:
		return relShareRead
	case rec.owner == "" && r.can("claim"):
		return relPool
	}
	return relNone
}

// listed: the record shows in r's lists (hidden ones never do by default).
func listed(r acsRole, rec *acsRecord) bool { return relation(r, rec) != relNone && !rec.hidden }

// --- body checks -------------------------------------------------------------------

// checkBody fails if body holds a value r may not read: any value of a
// record out of reach, a field below read, or (in an error) any value at all.
func (s *acsSuite) checkBody(t *testing.T, r acsRole, res acsResp) {
	t.Helper()
	ok := res.status/100 == 2
	for _, rec := range s.all {
		rel := relation(r, rec)
		for _, fv := range rec.universe() {
			f, v := fv[0], fv[1]
			if !strings.Contains(res.body, v) {
				continue
			}
			switch {
			case !ok:
				t.Errorf("error body (%d) contains the %s of %s/%d (%q): %s", res.status, f, rec.kind, rec.set, v, res.body)
			case r.fieldLevel(f, rel) < lvRead:
				t.Errorf("body contains the %s of %s/%d (%q), which %s reaches as %s at level %s: %s",
					f, rec.kind, rec.set, v, r.key, rel, r.fieldLevel(f, rel), res.body)
			}
		}
	}
	if !ok && !strings.HasPrefix(res.ctype, "application/problem+json") {
		t.Errorf("error content type %q, want application/problem+json", res.ctype)
	}
}

func wantStatus(t *testing.T, res acsResp, want int, what string) bool {
	t.Helper()
	if res.status != want {
		t.Errorf("%s: status %d, want %d: %s", what, res.status, want, res.body)
		return false
	}
	return true
}

type acsPage struct {
	Items []map[string]any `json:"items"`
	Next  string           `json:"next"`
}

func pageIDs(t *testing.T, res acsResp) []string {
	t.Helper()
	var p acsPage
	if err := json.Unmarshal([]byte(res.body), &p); err != nil {
		t.Fatalf("list body: %v: %s", err, res.body)
	}
	ids := make([]string, 0, len(p.Items))
	for _, it := range p.Items {
		if _, ok := it["owner_id"]; !ok {
			t.Errorf("customer JSON lacks owner_id: %v", it)
		}
		id, _ := it["id"].(string)
		ids = append(ids, id)
	}
	if p.Next != "" {
		t.Errorf("unexpected second page")
	}
	return ids
}

// searches are the indexed fields a customer is found by, and the query
// that finds rec by each.
var acsSearches = []struct {
	op    string
	field string
	query func(*acsRecord) url.Values
}{
	{"name", fName, func(r *acsRecord) url.Values { return url.Values{"q": {r.code + "科技"}} }},
	{"phone", fPhone, func(r *acsRecord) url.Values { return url.Values{"q": {r.phone}} }},
	{"email", fEmail, func(r *acsRecord) url.Values { return url.Values{"q": {r.email}} }},
	{"id_number", fID, func(r *acsRecord) url.Values { return url.Values{"q": {r.idNo}} }},
	{"tag", fTags, func(r *acsRecord) url.Values { return url.Values{"tag": {r.tag}} }},
	// A customer is found by its contacts' phones and emails too.
	{"contact_phone", fPhone, func(r *acsRecord) url.Values { return url.Values{"q": {r.contact[fPhone]}} }},
	{"contact_email", fEmail, func(r *acsRecord) url.Values { return url.Values{"q": {r.contact[fEmail]}} }},
}

// expectSearch: the status of a search by field for r, and whether rec is
// found. A probe of a contact field leaves the pool out for a role that
// does not see everything.
func expectSearch(r acsRole, rec *acsRecord, field string) (int, bool) {
	if !r.can("read") || !r.canSearch(field) {
		return 403, false
	}
	found := listed(r, rec)
	if found && relation(r, rec) == relPool && (field == fPhone || field == fEmail || field == fID) {
		found = false
	}
	return 200, found
}

// --- the suite -----------------------------------------------------------------------

func TestAccessScenarios(t *testing.T) {
	s := newAcsSuite(t)
	// The values must be told apart by substring.
	check := map[string]string{}
	add := func(r *acsRecord) {
		for _, fv := range r.universe() {
			if w, dup := check[fv[1]]; dup {
				t.Fatalf("test value %q used twice: %s", fv[1], w)
			}
			check[fv[1]] = fmt.Sprintf("%s/%d/%s", r.kind, r.set, fv[0])
		}
	}
	for set := range acsPrefixes[:1+len(acsRoles)] {
		for i, k := range acsKinds {
			add(newRecord(k, set, i))
		}
	}
	for i := range acsPromiseCodes {
		add(promiseRecord(i))
	}
	for a, wa := range check {
		for b, wb := range check {
			if a != b && strings.Contains(a, b) {
				t.Fatalf("test values overlap: %s %q contains %s %q", wa, a, wb, b)
			}
		}
	}

	recs := s.fixture(0, true)
	subtests := 0
	run := func(name string, f func(t *testing.T)) {
		subtests++
		t.Run(name, f)
	}

	// Reads: list, get, contacts, search and count by each indexed field, export.
	for _, r := range acsRoles {
		// The whole list under each filter: exactly the records expected,
		// and the count agrees with it.
		for _, flt := range []struct {
			name, query, perm string
			want              func(*acsRecord) bool
		}{
			{"count", "", "read", func(rec *acsRecord) bool { return listed(r, rec) }},
			{"count:hidden=include", "hidden=include", "view_hidden", func(rec *acsRecord) bool { return relation(r, rec) != relNone }},
			{"count:hidden=only", "hidden=only", "view_hidden", func(rec *acsRecord) bool { return relation(r, rec) != relNone && rec.hidden }},
			{"count:pool=true", "pool=true", "read", func(rec *acsRecord) bool { return listed(r, rec) && rec.owner == "" }},
		} {
			run(r.key+"/all/"+flt.name, func(t *testing.T) {
				res := s.do(t, r.key, "GET", "/api/v1/customers/count?"+flt.query, nil)
				s.checkBody(t, r, res)
				lres := s.do(t, r.key, "GET", "/api/v1/customers?"+flt.query, nil)
				s.checkBody(t, r, lres)
				if !r.can("read") || !r.can(flt.perm) {
					wantStatus(t, res, 403, "count")
					wantStatus(t, lres, 403, "list")
					return
				}
				if !wantStatus(t, res, 200, "count") || !wantStatus(t, lres, 200, "list") {
					return
				}
				var c struct{ Count int }
				if err := json.Unmarshal([]byte(res.body), &c); err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, k := range acsKinds {
					if flt.want(recs[k.kind]) {
						want = append(want, k.kind)
					}
				}
				var got []string
				ids := pageIDs(t, lres)
				for _, k := range acsKinds {
					if slices.Contains(ids, recs[k.kind].id) {
						got = append(got, k.kind)
					}
				}
				if !slices.Equal(got, want) || len(ids) != len(want) {
					t.Errorf("list has %v (%d items), want %v", got, len(ids), want)
				}
				if c.Count != len(ids) {
					t.Errorf("count %d, but the list has %d", c.Count, len(ids))
				}
			})
		}
		for _, k := range acsKinds {
			rec := recs[k.kind]
			rel := relation(r, rec)
			name := r.key + "/" + rec.kind + "/"

			run(name+"list", func(t *testing.T) {
				res := s.do(t, r.key, "GET", "/api/v1/customers", nil)
				s.checkBody(t, r, res)
				if !r.can("read") {
					wantStatus(t, res, 403, "list")
					return
				}
				if wantStatus(t, res, 200, "list") {
					if got := slices.Contains(pageIDs(t, res), rec.id); got != listed(r, rec) {
						t.Errorf("record listed: %v, want %v", got, listed(r, rec))
					}
				}
			})

			run(name+"get", func(t *testing.T) {
				res := s.do(t, r.key, "GET", "/api/v1/customers/"+rec.id, nil)
				s.checkBody(t, r, res)
				switch {
				case !r.can("read"):
					wantStatus(t, res, 403, "get")
				case rel == relNone:
					wantStatus(t, res, 404, "get")
				default:
					if wantStatus(t, res, 200, "get") {
						s.checkView(t, r, rec, rel, res)
					}
				}
			})

			for _, op := range []string{"contacts", "contact"} {
				path := "/api/v1/customers/" + rec.id + "/contacts"
				if op == "contact" {
					path = "/api/v1/contacts/" + rec.contactID
				}
				run(name+op, func(t *testing.T) {
					res := s.do(t, r.key, "GET", path, nil)
					s.checkBody(t, r, res)
					switch {
					case !r.can("read"):
						wantStatus(t, res, 403, op)
					case rel == relNone:
						wantStatus(t, res, 404, op)
					default:
						if !wantStatus(t, res, 200, op) {
							return
						}
						for _, f := range []string{fName, fPhone, fEmail, fNotes} {
							if got, want := strings.Contains(res.body, rec.contact[f]), r.fieldLevel(f, rel) >= lvRead; got != want {
								t.Errorf("contact %s shown: %v, want %v", f, got, want)
							}
						}
						if r.fieldLevel(fPhone, rel) == lvMasked && !strings.Contains(res.body, rec.contact[fPhone][:3]+"****"+rec.contact[fPhone][7:]) {
							t.Errorf("contact phone not shown masked: %s", res.body)
						}
					}
				})
			}

			run(name+"interactions", func(t *testing.T) {
				res := s.do(t, r.key, "GET", "/api/v1/customers/"+rec.id+"/interactions", nil)
				s.checkBody(t, r, res)
				switch {
				case !r.can("read"):
					wantStatus(t, res, 403, "interactions")
				case rel == relNone:
					wantStatus(t, res, 404, "interactions")
				case rel == relPool: // the history of a pool customer needs claiming it
					wantStatus(t, res, 403, "interactions")
				default:
					if !wantStatus(t, res, 200, "interactions") {
						return
					}
					l := r.fieldLevel(fNotes, rel)
					if got := strings.Contains(res.body, rec.summary); got != (l >= lvRead) {
						t.Errorf("summary shown: %v, want %v (notes %s)", got, l >= lvRead, l)
					}
					if l == lvMasked && !strings.Contains(res.body, `"summary":"****"`) {
						t.Errorf("summary not masked: %s", res.body)
					}
				}
			})

			for _, sr := range acsSearches {
				q := sr.query(rec).Encode()
				wantCode, wantFound := expectSearch(r, rec, sr.field)
				var listN = -1
				run(name+"search:"+sr.op, func(t *testing.T) {
					res := s.do(t, r.key, "GET", "/api/v1/customers?"+q, nil)
					s.checkBody(t, r, res)
					if !wantStatus(t, res, wantCode, "search") || wantCode != 200 {
						return
					}
					ids := pageIDs(t, res)
					listN = len(ids)
					if got := slices.Contains(ids, rec.id); got != wantFound {
						t.Errorf("found: %v, want %v (ids %v)", got, wantFound, ids)
					}
					if len(ids) > 1 {
						t.Errorf("a search for one record's value found %d", len(ids))
					}
				})
				run(name+"count:"+sr.op, func(t *testing.T) {
					res := s.do(t, r.key, "GET", "/api/v1/customers/count?"+q, nil)
					s.checkBody(t, r, res)
					if !wantStatus(t, res, wantCode, "count") || wantCode != 200 {
						return
					}
					var c struct{ Count *int }
					if err := json.Unmarshal([]byte(res.body), &c); err != nil || c.Count == nil {
						t.Fatalf("count body: %v: %s", err, res.body)
					}
					want := 0
					if wantFound {
						want = 1
					}
					if *c.Count != want {
						t.Errorf("count %d, want %d", *c.Count, want)
					}
					if listN >= 0 && *c.Count != listN {
						t.Errorf("count %d, but the list with the same filter has %d", *c.Count, listN)
					}
				})
			}

			run(name+"export", func(t *testing.T) {
				res := s.do(t, r.key, "GET", "/api/v1/customers/export", nil)
				s.checkBody(t, r, res)
				if !r.can("export") {
					wantStatus(t, res, 403, "export")
					return
				}
				if !wantStatus(t, res, 200, "export") {
					return
				}
				if !strings.HasPrefix(res.body, "\ufeffname,kind,phone") {
					t.Errorf("not a customer CSV: %.80q", res.body)
				}
				if got := strings.Contains(res.body, rec.name); got != listed(r, rec) {
					t.Errorf("record exported: %v, want %v", got, listed(r, rec))
				}
			})

			// An export searched by each indexed field follows the search.
			for _, sr := range acsSearches {
				q := sr.query(rec).Encode()
				wantCode, wantFound := expectSearch(r, rec, sr.field)
				if !r.can("export") {
					wantCode, wantFound = 403, false
				}
				run(name+"export:"+sr.op, func(t *testing.T) {
					res := s.do(t, r.key, "GET", "/api/v1/customers/export?"+q, nil)
					s.checkBody(t, r, res)
					if !wantStatus(t, res, wantCode, "export") || wantCode != 200 {
						return
					}
					if got := strings.Contains(res.body, rec.name); got != wantFound {
						t.Errorf("record exported: %v, want %v", got, wantFound)
					}
					if n := strings.Count(res.body, "\n"); n > 2 {
						t.Errorf("an export searched for one record's value has %d lines", n)
					}
				})
			}

			// Reveal unmasks a masked field, with a reason, and nothing else.
			for _, f := range []string{fPhone, fID} {
				run(name+"reveal:"+f, func(t *testing.T) {
					want := 200
					l := r.fieldLevel(f, rel)
					switch {
					case !r.can("reveal"):
						want = 403
					case rel == relNone:
						want = 404
					case rel == relPool, l == lvHidden:
						want = 403
					case l >= lvRead:
						want = 422
					}
					res := s.do(t, r.key, "POST", "/api/v1/customers/"+rec.id+"/reveal", map[string]any{"field": f, "reason": "回电核实"})
					if want != 200 {
						s.checkBody(t, r, res)
					}
					if !wantStatus(t, res, want, "reveal") || want != 200 {
						return
					}
					var out struct{ Field, Value string }
					_ = json.Unmarshal([]byte(res.body), &out)
					full := rec.idNo
					if f == fPhone {
						full = "+86" + rec.phone
					}
					if out.Field != f || out.Value != full {
						t.Errorf("reveal gave %+v, want %s", out, full)
					}
				})
			}
		}
	}

	// Interface promises (on records of their own, outside the matrix).
	s.promises(t, run)

	// Updates: every role on every record, after all reads.
	for ri, r := range acsRoles {
		for _, k := range acsKinds {
			rec := recs[k.kind]
			rel := relation(r, rec)
			name := r.key + "/" + rec.kind + "/"
			run(name+"update:notes", func(t *testing.T) {
				notes := "更新备注：" + r.key + "改" + rec.code
				want := 200
				switch {
				case !r.can("update"):
					want = 403
				case rel == relNone:
					want = 404
				case rel < relShareEdit, r.fieldLevel(fNotes, rel) < lvEdit:
					want = 403
				}
				if want == 200 {
					// The new value is the record's now: who may read
					// the old one may read the new one, nobody else.
					rec.values[fNotes] = append(rec.values[fNotes], notes)
				}
				res := s.do(t, r.key, "PATCH", "/api/v1/customers/"+rec.id, map[string]any{"notes": notes})
				s.checkBody(t, r, res)
				if wantStatus(t, res, want, "update") && want == 200 && !strings.Contains(res.body, notes) {
					t.Errorf("update response lacks the new notes: %s", res.body)
				}
				if want != 200 {
					// Nothing changed.
					g := s.do(t, "admin", "GET", "/api/v1/customers/"+rec.id, nil)
					if strings.Contains(g.body, notes) {
						t.Errorf("a refused update changed the notes")
					}
				}
			})
			for _, f := range []string{fPhone, fID} {
				run(name+"update:"+f, func(t *testing.T) {
					var v string
					body := map[string]any{}
					if f == fPhone {
						v = fmt.Sprintf("136%02d%02d%04d", ri, rec.set, 3000+slices.Index(acsKinds, k))
						body["phone"] = v
					} else {
						v = prcID(fmt.Sprintf("1101051979%02d%02d%03d", 1+ri, 1+slices.Index(acsKinds, k), 500))
						body["id_number"] = v
					}
					want := 200
					switch {
					case !r.can("update"):
						want = 403
					case rel == relNone:
						want = 404
					case rel < relShareEdit, r.fieldLevel(f, rel) < lvEdit:
						want = 403
					}
					if want == 200 {
						rec.values[f] = append(rec.values[f], v)
					}
					res := s.do(t, r.key, "PATCH", "/api/v1/customers/"+rec.id, body)
					s.checkBody(t, r, res)
					if wantStatus(t, res, want, "update") && want == 200 && !strings.Contains(res.body, v) {
						t.Errorf("update response lacks the new %s: %s", f, res.body)
					}
					if g := s.do(t, "admin", "GET", "/api/v1/customers/"+rec.id, nil); strings.Contains(g.body, v) != (want == 200) {
						t.Errorf("the %s is changed: %v, want %v", f, strings.Contains(g.body, v), want == 200)
					}
				})
			}
			run(name+"update:status", func(t *testing.T) {
				status := "won-" + r.key // one per role: a repeated value would change nothing
				want := 200
				switch {
				case !r.can("update"):
					want = 403
				case rel == relNone:
					want = 404
				case rel < relShareEdit:
					want = 403
				}
				res := s.do(t, r.key, "PATCH", "/api/v1/customers/"+rec.id, map[string]any{"status": status})
				s.checkBody(t, r, res)
				if wantStatus(t, res, want, "update") && want == 200 && !strings.Contains(res.body, `"status":"`+status+`"`) {
					t.Errorf("update response lacks the new status: %s", res.body)
				}
			})
		}
	}

	// Deletes: every role on a fresh set of records of its own.
	for ri, r := range acsRoles {
		fresh := s.fixture(1+ri, true)
		for _, k := range acsKinds {
			rec := fresh[k.kind]
			rel := relation(r, rec)
			run(r.key+"/"+rec.kind+"/delete", func(t *testing.T) {
				want := 204
				switch {
				case !r.can("delete"):
					want = 403
				case rel == relNone:
					want = 404
				case rel < relFull:
					want = 403
				}
				res := s.do(t, r.key, "DELETE", "/api/v1/customers/"+rec.id, nil)
				s.checkBody(t, r, res)
				wantStatus(t, res, want, "delete")
				after := s.do(t, "admin", "GET", "/api/v1/customers/"+rec.id, nil)
				if gone := after.status == 404; gone != (want == 204) {
					t.Errorf("after delete (%d) the admin gets %d", res.status, after.status)
				}
				// A deleted customer is gone from search and with it its contacts.
				for _, p := range []string{"/api/v1/customers/count?hidden=include&q=" + url.QueryEscape(rec.phone),
					"/api/v1/customers/count?hidden=include&q=" + url.QueryEscape(rec.contact[fPhone]),
					"/api/v1/customers/count?hidden=include&q=" + url.QueryEscape(acsPrefixes[rec.set]+rec.code+"科技")} {
					c := s.do(t, "admin", "GET", p, nil)
					if wantN := map[bool]string{true: `{"count":0}`, false: `{"count":1}`}[want == 204]; strings.TrimSpace(c.body) != wantN {
						t.Errorf("admin %s after delete (%d): %s, want %s", p, res.status, c.body, wantN)
					}
				}
				if c := s.do(t, "admin", "GET", "/api/v1/contacts/"+rec.contactID, nil); (c.status == 404) != (want == 204) {
					t.Errorf("contact of a customer after delete (%d): %d", res.status, c.status)
				}
			})
		}
	}

	// The server log never holds a personal value or a search text.
	logs := s.h.log.String()
	for _, rec := range s.all {
		for _, fv := range rec.universe() {
			if strings.Contains(logs, fv[1]) {
				t.Errorf("server log contains the %s of %s/%d", fv[0], rec.kind, rec.set)
			}
		}
	}
	t.Logf("%d scenarios: %d roles x %d records x ops", subtests, len(acsRoles), len(acsKinds))
}

// checkView checks one customer as r gets it: how it is reached, owner_id,
// and each field shown, masked or hidden as its level says.
func (s *acsSuite) checkView(t *testing.T, r acsRole, rec *acsRecord, rel acsRel, res acsResp) {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(res.body), &c); err != nil {
		t.Fatalf("customer body: %v: %s", err, res.body)
	}
	if c["access"] != rel.String() {
		t.Errorf("access %v, want %s", c["access"], rel)
	}
	if owner, ok := c["owner_id"]; !ok || owner != s.ids[rec.owner] {
		t.Errorf("owner_id %v (present %v), want %q", owner, ok, s.ids[rec.owner])
	}
	strs := func(k string) []string {
		var out []string
		l, _ := c[k].([]any)
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	masked, hidden := strs("masked_fields"), strs("hidden_fields")
	for _, f := range acsFields {
		l := r.fieldLevel(f, rel)
		if f == fTags && l == lvMasked {
			l = lvHidden
		}
		cur := rec.values[f][len(rec.values[f])-1]
		switch l {
		case lvHidden:
			if !slices.Contains(hidden, f) {
				t.Errorf("%s should be hidden: hidden_fields %v", f, hidden)
			}
		case lvMasked:
			if !slices.Contains(masked, f) {
				t.Errorf("%s should be masked: masked_fields %v", f, masked)
			}
			if f == fPhone {
				if m := rec.phone[:3] + "****" + rec.phone[7:]; c["phone"] != m {
					t.Errorf("masked phone %v, want %s", c["phone"], m)
				}
			}
		default:
			if slices.Contains(masked, f) || slices.Contains(hidden, f) {
				t.Errorf("%s is readable for %s but listed masked %v / hidden %v", f, r.key, masked, hidden)
			}
			if !strings.Contains(res.body, cur) {
				t.Errorf("%s %q missing though readable", f, cur)
			}
		}
	}
}

// promises checks the interface promises: reassignment, hiding, the user
// list and reveal.
func (s *acsSuite) promises(t *testing.T, run func(string, func(*testing.T))) {
	// Records of their own, in the universe of values checked.
	mk := func(idx int) *acsRecord {
		rec := promiseRecord(idx)
		in := map[string]any{"name": rec.name, "phone": rec.phone, "email": rec.email, "address": rec.addr, "id_number": rec.idNo,
			"notes": rec.values[fNotes][0], "tags": []string{rec.tag}, "owner_id": s.ids["rep"]}
		rec.id = s.must("admin", "POST", "/api/v1/customers", in, 201)["id"].(string)
		s.all = append(s.all, rec)
		return rec
	}
	role := func(key string) acsRole {
		i := slices.IndexFunc(acsRoles, func(r acsRole) bool { return r.key == key })
		return acsRoles[i]
	}
	get := func(t *testing.T, as, id string) acsResp { return s.do(t, as, "GET", "/api/v1/customers/"+id, nil) }

	moved := mk(0)
	run("promise/reassign", func(t *testing.T) {
		path := "/api/v1/customers/" + moved.id
		if res := s.do(t, "rep", "PATCH", path, map[string]any{"owner_id": s.ids["peer"]}); !wantStatus(t, res, 403, "sales reassigns") {
			return
		}
		res := s.do(t, "manager", "PATCH", path, map[string]any{"owner_id": s.ids["director"]})
		wantStatus(t, res, 403, "manager assigns to a superior")
		res = s.do(t, "manager", "PATCH", path, map[string]any{"owner_id": s.ids["peer"]})
		if !wantStatus(t, res, 200, "manager reassigns") {
			return
		}
		var c map[string]any
		_ = json.Unmarshal([]byte(res.body), &c)
		moved.owner = "peer"
		if c["owner_id"] != s.ids["peer"] {
			t.Errorf("owner_id after reassignment %v, want peer %s", c["owner_id"], s.ids["peer"])
		}
		wantStatus(t, get(t, "rep", moved.id), 404, "the former owner gets it")
		if res := get(t, "peer", moved.id); wantStatus(t, res, 200, "the new owner gets it") && !strings.Contains(res.body, moved.phone) {
			t.Errorf("the new owner does not see the phone: %s", res.body)
		}
	})

	hid := mk(1)
	run("promise/hide", func(t *testing.T) {
		path := "/api/v1/customers/" + hid.id
		res := s.do(t, "rep", "PATCH", path, map[string]any{"hidden": true})
		s.checkBody(t, role("rep"), res)
		wantStatus(t, res, 403, "sales hides")
		res = s.do(t, "admin", "PATCH", path, map[string]any{"hidden": true})
		if !wantStatus(t, res, 200, "admin hides") || !strings.Contains(res.body, `"hidden":true`) {
			t.Fatalf("hide: %s", res.body)
		}
		hid.hidden = true
		res = get(t, "rep", hid.id)
		wantStatus(t, res, 404, "owner gets a hidden customer")
		if strings.Contains(res.body, hid.name) || strings.Contains(res.body, hid.phone) {
			t.Errorf("hidden customer's values shown: %s", res.body)
		}
		for _, p := range []string{"/api/v1/customers", "/api/v1/customers?q=" + url.QueryEscape(hid.phone), "/api/v1/customers?q=" + url.QueryEscape(hid.code+"科技")} {
			if res := s.do(t, "rep", "GET", p, nil); res.status != 200 || strings.Contains(res.body, hid.id) || strings.Contains(res.body, hid.phone) {
				t.Errorf("%s shows a hidden customer: %d %s", p, res.status, res.body)
			}
		}
		wantStatus(t, get(t, "admin", hid.id), 200, "admin gets a hidden customer")
		if res := s.do(t, "admin", "PATCH", path, map[string]any{"hidden": false}); !wantStatus(t, res, 200, "admin unhides") || !strings.Contains(res.body, `"hidden":false`) {
			return
		}
		hid.hidden = false
		if res := get(t, "rep", hid.id); wantStatus(t, res, 200, "owner gets an unhidden customer") && !strings.Contains(res.body, hid.phone) {
			t.Errorf("unhidden customer lacks its phone: %s", res.body)
		}
	})

	run("promise/users", func(t *testing.T) {
		res := s.do(t, "admin", "GET", "/api/v1/users", nil)
		if !wantStatus(t, res, 200, "admin lists users") {
			return
		}
		var p struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal([]byte(res.body), &p); err != nil {
			t.Fatal(err)
		}
		byID := map[string]map[string]any{}
		for _, u := range p.Items {
			for _, k := range []string{"id", "email", "role"} {
				if _, ok := u[k].(string); !ok {
					t.Errorf("user lacks %s: %v", k, u)
				}
			}
			byID[fmt.Sprint(u["id"])] = u
		}
		for key, roleName := range acsUsers {
			u := byID[s.ids[key]]
			if u == nil || u["role"] != roleName || u["email"] != key+"@example.com" {
				t.Errorf("user %s: %v, want role %s", key, u, roleName)
			}
		}
		if strings.Contains(res.body, "password") {
			t.Errorf("user list mentions passwords: %s", res.body)
		}
		for _, key := range []string{"rep", "support", "finance", "manager"} {
			res := s.do(t, key, "GET", "/api/v1/users", nil)
			s.checkBody(t, role(key), res)
			wantStatus(t, res, 403, key+" lists users")
		}
	})

	rv := mk(2)
	run("promise/reveal", func(t *testing.T) {
		sup := role("support")
		path := "/api/v1/customers/" + rv.id
		before := get(t, "support", rv.id)
		if !wantStatus(t, before, 200, "support gets") || strings.Contains(before.body, rv.phone) {
			t.Fatalf("support sees the full phone before reveal: %s", before.body)
		}
		res := s.do(t, "support", "POST", path+"/reveal", map[string]any{"field": "phone", "reason": "callback"})
		if !wantStatus(t, res, 200, "reveal") {
			return
		}
		var out struct {
			Field, Value string
		}
		if err := json.Unmarshal([]byte(res.body), &out); err != nil {
			t.Fatal(err)
		}
		if out.Field != "phone" || out.Value != "+86"+rv.phone {
			t.Errorf("reveal gave %+v, want +86%s", out, rv.phone)
		}
		// Only that response: the record is masked again everywhere else.
		for _, p := range []string{path, "/api/v1/customers", "/api/v1/customers?q=" + url.QueryEscape(rv.code+"科技")} {
			res := s.do(t, "support", "GET", p, nil)
			s.checkBody(t, sup, res)
			if res.status != 200 || strings.Contains(res.body, rv.phone) {
				t.Errorf("after reveal %s: %d %s", p, res.status, res.body)
			}
		}
		// A field support may read is not revealed; one it may not see at
		// all (hidden) is refused; the pool is revealed only once claimed.
		res = s.do(t, "support", "POST", path+"/reveal", map[string]any{"field": "name", "reason": "callback"})
		s.checkBody(t, sup, res)
		wantStatus(t, res, 422, "reveal of a readable field")
		res = s.do(t, "support", "POST", path+"/reveal", map[string]any{"field": "id_number", "reason": "callback"})
		s.checkBody(t, sup, res)
		wantStatus(t, res, 403, "reveal of a hidden field")
		res = s.do(t, "support", "POST", path+"/reveal", map[string]any{"field": "phone", "reason": ""})
		s.checkBody(t, sup, res)
		wantStatus(t, res, 422, "reveal without a reason")
		res = s.do(t, "auditor", "POST", path+"/reveal", map[string]any{"field": "phone", "reason": "callback"})
		s.checkBody(t, role("auditor"), res)
		wantStatus(t, res, 403, "auditor reveals")
	})
}

// acsPromiseCodes name the records of the interface promises.
var acsPromiseCodes = []string{"转派", "藏起", "揭示"}

// promiseRecord is record idx of the promises, owned by rep.
func promiseRecord(idx int) *acsRecord {
	kind := []string{"reassigned", "hide-toggle", "revealed"}[idx]
	return newRecord(acsKind{kind: kind, code: acsPromiseCodes[idx], owner: "rep"}, len(acsPrefixes)-1, 20+idx)
}

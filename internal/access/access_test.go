package access

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/custos/custos/internal/store"
)

func principal(t *testing.T, role string) Principal {
	t.Helper()
	p, err := Resolve(Subject{UserID: "u1", Actor: "user:u1", Role: role}, Templates, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTemplatesAreValid(t *testing.T) {
	if err := ValidateHierarchy(Templates); err != nil {
		t.Fatal(err)
	}
	for _, r := range Templates {
		if _, err := ParseRole(r); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
		if r.TemplateVersion != TemplateVersion {
			t.Errorf("%s: template version %d", r.Name, r.TemplateVersion)
		}
	}
	for _, name := range append([]string{"admin", "manager", "sales", "support", "security_officer", "auditor", "sales_director", "finance"}, MFARoles...) {
		if !slices.ContainsFunc(Templates, func(r store.Role) bool { return r.Name == name }) {
			t.Errorf("no template %q", name)
		}
	}
	// The interface promise: the shipped support role sees phone and email masked.
	support := principal(t, "support")
	for _, f := range []string{FieldPhone, FieldEmail} {
		if got := support.FieldLevel(f, RelFull); got != Masked {
			t.Errorf("support sees %s %s, want masked", f, got)
		}
	}
	// The auditor reads the audit trail and nothing else.
	if a := principal(t, "auditor"); !slices.Equal(a.Perms, []Permission{ReadAudit}) || a.SeeAll {
		t.Errorf("auditor = %+v", a)
	}
	// The security officer has no customer data.
	so := principal(t, "security_officer")
	for _, perm := range DataPermissions {
		if so.Can(perm) {
			t.Errorf("security officer can %s", perm)
		}
	}
}

func TestResolveHierarchyGrantsAndSeparation(t *testing.T) {
	if got := principal(t, "sales_director").Below; !slices.Equal(got, []string{"manager", "sales"}) {
		t.Errorf("director below = %v", got)
	}
	if got := principal(t, "manager").Below; !slices.Equal(got, []string{"sales"}) {
		t.Errorf("manager below = %v", got)
	}
	if got := principal(t, "sales").Below; len(got) != 0 {
		t.Errorf("sales below = %v", got)
	}
	p, err := Resolve(Subject{UserID: "u1", Role: "sales"}, Templates, []Permission{Export, Read}, false)
	if err != nil || !p.Can(Export) || len(slices.Compact(slices.Sorted(slices.Values(p.Perms)))) != len(p.Perms) {
		t.Fatalf("grant: %+v %v", p.Perms, err)
	}
	if _, err := Resolve(Subject{UserID: "u1", Role: "ghost"}, Templates, nil, false); err == nil {
		t.Fatal("unknown role resolved")
	}
	// Strict separation: the admin keeps user and configuration duties only,
	// and a grant of data access does not bring it back.
	admin, err := Resolve(Subject{UserID: "u1", Role: "admin"}, Templates, []Permission{Read, ReadAudit}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(admin.Perms, AdminPermissions) || admin.SeeAll || !admin.Separated {
		t.Fatalf("separated admin = %+v", admin)
	}
	if sc := CustomerScope(admin, time.Now()); sc.All || sc.UserID != "" {
		t.Fatalf("separated admin scope = %+v", sc)
	}
	if err := Require(admin, Read); !errors.Is(err, ErrDenied) {
		t.Fatalf("Require(read) = %v", err)
	}
	// Strict separation leaves everyone else alone.
	dir, _ := Resolve(Subject{UserID: "u1", Role: "sales_director"}, Templates, nil, true)
	if !dir.SeeAll || dir.Separated || !dir.Can(Read) {
		t.Fatalf("director under strict separation = %+v", dir)
	}
}

func TestCustomerScope(t *testing.T) {
	now := time.Unix(1700000000, 0)
	cases := []struct {
		name string
		p    Principal
		want store.Scope
	}{
		{"admin sees all, hidden too", principal(t, "admin"), store.Scope{All: true, Hidden: store.HiddenInclude, Now: now}},
		{"director sees all", principal(t, "sales_director"), store.Scope{All: true, Hidden: store.HiddenInclude, Now: now}},
		{"manager: own, reps', shares, pool", principal(t, "manager"),
			store.Scope{UserID: "u1", Role: "manager", OwnerRoles: []string{"sales"}, Pool: true, Now: now}},
		{"sales: own, shares, pool", principal(t, "sales"), store.Scope{UserID: "u1", Role: "sales", Pool: true, Now: now}},
		{"support sees all but hidden", principal(t, "support"), store.Scope{All: true, Now: now}},
		{"auditor sees nothing", principal(t, "auditor"), store.Scope{}},
		{"no read permission sees nothing", Principal{UserID: "u1", SeeAll: true, Perms: []Permission{Create}}, store.Scope{}},
		{"zero principal sees nothing", Principal{}, store.Scope{}},
		{"reader without a user sees nothing", Principal{Perms: []Permission{Read}}, store.Scope{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CustomerScope(tc.p, now)
			if got.All != tc.want.All || got.Pool != tc.want.Pool || got.UserID != tc.want.UserID || got.Role != tc.want.Role ||
				!slices.Equal(got.OwnerRoles, tc.want.OwnerRoles) || got.Hidden != tc.want.Hidden || !got.Now.Equal(tc.want.Now) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRelationAndFieldLevels(t *testing.T) {
	sales, mgr, support := principal(t, "sales"), principal(t, "manager"), principal(t, "support")
	cases := []struct {
		p                         Principal
		owner, ownerRole, share   string
		want                      Relation
		phone, idNumber, notesLvl Level
	}{
		{sales, "u1", "sales", "", RelFull, Editable, Masked, Editable},
		{sales, "u2", "sales", "", RelNone, Hidden, Hidden, Hidden},
		{sales, "u2", "sales", "read", RelShareRead, Readable, Masked, Readable},
		{sales, "u2", "sales", "edit", RelShareEdit, Editable, Masked, Editable},
		{sales, "", "", "", RelPool, Masked, Masked, Hidden},
		{mgr, "u2", "sales", "", RelFull, Editable, Masked, Editable},
		{mgr, "u2", "sales_director", "", RelNone, Hidden, Hidden, Hidden},
		{support, "u2", "sales", "", RelFull, Masked, Hidden, Editable},
		{Principal{}, "u1", "sales", "edit", RelNone, Hidden, Hidden, Hidden},
	}
	for i, tc := range cases {
		rel := RelationTo(tc.p, tc.owner, tc.ownerRole, tc.share)
		if rel != tc.want {
			t.Errorf("%d: %s relation = %s, want %s", i, tc.p.Role, rel, tc.want)
			continue
		}
		for _, f := range []struct {
			field string
			want  Level
		}{{FieldPhone, tc.phone}, {FieldIDNumber, tc.idNumber}, {FieldNotes, tc.notesLvl}} {
			if got := tc.p.FieldLevel(f.field, rel); got != f.want {
				t.Errorf("%d: %s sees %s at %s as %s, want %s", i, tc.p.Role, f.field, rel, got, f.want)
			}
		}
	}
	// Edit needs the update permission.
	fin := principal(t, "finance")
	if got := fin.FieldLevel(FieldAddress, RelFull); got != Readable {
		t.Errorf("finance address = %s", got)
	}
	if err := support.CanSearch(FieldPhone); !errors.Is(err, ErrDenied) {
		t.Errorf("support may search by phone: %v", err)
	}
	if err := support.CanSearch(FieldName); err != nil {
		t.Errorf("support may not search by name: %v", err)
	}
}

func TestPermissionsAndPolicies(t *testing.T) {
	if _, err := ParsePermissions("read fly"); err == nil {
		t.Fatal("unknown permission accepted")
	}
	if ps, err := ParsePermissions("read, export read"); err != nil || !slices.Equal(ps, []Permission{Read, Export}) {
		t.Fatalf("ParsePermissions = %v, %v", ps, err)
	}
	if _, err := Resolve(Subject{UserID: "u", Role: "x"}, []store.Role{{Name: "x", Permissions: "read sudo"}}, nil, false); err == nil {
		t.Fatal("role with unknown permission accepted")
	}
	for _, bad := range []string{`{"salary":"read"}`, `{"phone":"peek"}`, `[1]`} {
		if _, err := ParseFieldPolicy(bad); err == nil {
			t.Errorf("field policy %s accepted", bad)
		}
	}
	m, err := ParseFieldPolicy(FormatFieldPolicy(map[string]Level{FieldPhone: Masked, FieldName: Editable, FieldNotes: Hidden}))
	if err != nil || len(m) != 2 || m[FieldPhone] != Masked || m[FieldName] != Editable {
		t.Fatalf("round trip = %v, %v", m, err)
	}
	for _, tc := range []struct {
		roles []store.Role
		ok    bool
	}{
		{[]store.Role{{Name: "a"}, {Name: "b", Parent: "a"}}, true},
		{[]store.Role{{Name: "a", Parent: "b"}, {Name: "b", Parent: "a"}}, false},
		{[]store.Role{{Name: "a", Parent: "a"}}, false},
		{[]store.Role{{Name: "a", Parent: "ghost"}}, false},
	} {
		if err := ValidateHierarchy(tc.roles); (err == nil) != tc.ok {
			t.Errorf("ValidateHierarchy(%+v) = %v", tc.roles, err)
		}
	}
	if got := Descendants([]store.Role{{Name: "a", Parent: "b"}, {Name: "b", Parent: "a"}}, "a"); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Descendants on a cycle = %v", got)
	}
}

func TestOwnerOnCreate(t *testing.T) {
	sales, manager, op := principal(t, "sales"), principal(t, "manager"), Operator("root")
	cases := []struct {
		name      string
		p         Principal
		requested string
		set       bool
		want      string
		denied    bool
	}{
		{"sales owns what they create", sales, "", false, "u1", false},
		{"sales may name themselves", sales, "u1", true, "u1", false},
		{"sales may not assign others", sales, "u2", true, "", true},
		{"sales may not put into the pool", sales, "", true, "", true},
		{"manager assigns", manager, "u2", true, "u2", false},
		{"manager puts into the pool", manager, "", true, "", false},
		{"operator default is the pool", op, "", false, "", false},
		{"operator assigns", op, "u2", true, "u2", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OwnerOnCreate(tc.p, tc.requested, tc.set)
			if (err != nil) != tc.denied || (err != nil && !errors.Is(err, ErrDenied)) {
				t.Fatalf("err = %v", err)
			}
			if err == nil && got != tc.want {
				t.Fatalf("owner %q, want %q", got, tc.want)
			}
		})
	}
	if CanReassign(sales, RelFull) == nil || CanReassign(manager, RelFull) != nil || CanReassign(manager, RelShareEdit) == nil {
		t.Fatal("reassign rule")
	}
}

func TestCanManageUser(t *testing.T) {
	sales, admin := principal(t, "sales"), principal(t, "admin")
	if !CanManageUser(sales, "u1") || CanManageUser(sales, "u2") || !CanManageUser(admin, "u2") || CanManageUser(Principal{Perms: []Permission{Read}}, "") {
		t.Fatal("CanManageUser")
	}
}

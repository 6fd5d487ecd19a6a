package access

import (
	"errors"
	"slices"
	"testing"

	"github.com/custos/custos/internal/store"
)

func principal(t *testing.T, role string) Principal {
	t.Helper()
	for _, r := range Templates {
		if r.Name == role {
			p, err := NewPrincipal("u1", "user:u1", r)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatalf("no role %s", role)
	return Principal{}
}

func TestCustomerScope(t *testing.T) {
	cases := []struct {
		name string
		p    Principal
		want store.Scope
	}{
		{"admin sees all", principal(t, "admin"), store.Scope{All: true}},
		{"manager sees all", principal(t, "manager"), store.Scope{All: true}},
		{"sales sees own", principal(t, "sales"), store.Scope{Owners: []string{"u1"}}},
		{"support sees own", principal(t, "support"), store.Scope{Owners: []string{"u1"}}},
		{"no read permission sees nothing", Principal{UserID: "u1", SeeAll: true, Perms: []Permission{Create}}, store.Scope{}},
		{"zero principal sees nothing", Principal{}, store.Scope{}},
		{"reader without a user sees nothing", Principal{Perms: []Permission{Read}}, store.Scope{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CustomerScope(tc.p)
			if got.All != tc.want.All || got.Pool != tc.want.Pool || !slices.Equal(got.Owners, tc.want.Owners) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPermissions(t *testing.T) {
	want := map[string][]Permission{
		"admin":   AllPermissions,
		"manager": {Create, Read, Update, Delete, Import, Assign},
		"sales":   {Create, Read, Update, Delete},
		"support": {Create, Read, Update},
	}
	for role, perms := range want {
		p := principal(t, role)
		for _, perm := range AllPermissions {
			if got := p.Can(perm); got != slices.Contains(perms, perm) {
				t.Errorf("%s can %s = %v", role, perm, got)
			}
			if err := Require(p, perm); (err == nil) != slices.Contains(perms, perm) || (err != nil && !errors.Is(err, ErrDenied)) {
				t.Errorf("Require(%s, %s) = %v", role, perm, err)
			}
		}
	}
	if _, err := ParsePermissions("read fly"); err == nil {
		t.Fatal("unknown permission accepted")
	}
	if _, err := NewPrincipal("u", "user:u", store.Role{Name: "x", Permissions: "read sudo"}); err == nil {
		t.Fatal("role with unknown permission accepted")
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
	if CanReassign(sales) == nil || CanReassign(manager) != nil {
		t.Fatal("reassign rule")
	}
}

func TestCanManageUser(t *testing.T) {
	sales, admin := principal(t, "sales"), principal(t, "admin")
	if !CanManageUser(sales, "u1") || CanManageUser(sales, "u2") || !CanManageUser(admin, "u2") || CanManageUser(Principal{Perms: []Permission{Read}}, "") {
		t.Fatal("CanManageUser")
	}
}

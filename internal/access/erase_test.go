package access

import (
	"slices"
	"testing"
)

// Only the administrator's template may erase; strict separation takes it
// away with the data; the operator at the command line holds it.
func TestErasePermission(t *testing.T) {
	for _, r := range Templates {
		if got, want := principal(t, r.Name).Can(Erase), r.Name == "admin"; got != want {
			t.Errorf("template %s: can erase = %v, want %v", r.Name, got, want)
		}
	}
	if slices.Contains(DataPermissions, Erase) || slices.Contains(AdminPermissions, Erase) || !slices.Contains(AllPermissions, Erase) {
		t.Fatal("erase must be known, and be neither a data permission nor an administrator's duty")
	}
	if ps, err := ParsePermissions("read erase"); err != nil || !slices.Equal(ps, []Permission{Read, Erase}) {
		t.Fatalf("ParsePermissions: %v %v", ps, err)
	}
	admin, err := Resolve(Subject{UserID: "u1", Role: "admin"}, Templates, []Permission{Erase}, true)
	if err != nil || admin.Can(Erase) {
		t.Fatalf("separated admin can erase: %+v %v", admin.Perms, err)
	}
	if !Operator("root").Can(Erase) {
		t.Fatal("the operator cannot erase")
	}
	// A template nobody edited is upgraded: the shipped version is newer
	// than the one that had no erase.
	if TemplateVersion < 3 {
		t.Fatalf("TemplateVersion = %d: the admin template changed, bump it", TemplateVersion)
	}
}

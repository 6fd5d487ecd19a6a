// Package access decides who may do what to which customer. Every rule lives
// here and internal/crm applies it; handlers never decide.
//
// Deny by default: a principal has exactly the permissions of its role, and
// sees exactly the customers its Scope names (pushed into SQL by the store).
package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/internal/store"
)

// Permission is an object permission granted by a role.
type Permission string

// The permissions known to Custos.
const (
	Create      Permission = "create"       // create customers, contacts, interactions
	Read        Permission = "read"         // read customers in scope
	Update      Permission = "update"       // change customers in scope
	Delete      Permission = "delete"       // soft-delete customers in scope
	Import      Permission = "import"       // bulk import
	Export      Permission = "export"       // bulk export
	Assign      Permission = "assign"       // set or change a customer's owner
	ManageUsers Permission = "manage_users" // create, disable users; manage others' tokens
)

// AllPermissions lists every permission, for validation and docs.
var AllPermissions = []Permission{Create, Read, Update, Delete, Import, Export, Assign, ManageUsers}

// ParsePermissions parses a space-separated permission list.
func ParsePermissions(s string) ([]Permission, error) {
	var out []Permission
	for _, f := range strings.Fields(s) {
		p := Permission(f)
		if !slices.Contains(AllPermissions, p) {
			return nil, fmt.Errorf("unknown permission %q", f)
		}
		out = append(out, p)
	}
	return out, nil
}

// Template roles seeded at initialization. The access-control issue makes
// roles editable and hierarchical; this table is the starting point.
var Templates = []store.Role{
	{Name: "admin", SeeAll: true, Permissions: "create read update delete import export assign manage_users"},
	{Name: "manager", SeeAll: true, Permissions: "create read update delete import assign"},
	{Name: "sales", SeeAll: false, Permissions: "create read update delete"},
	{Name: "support", SeeAll: false, Permissions: "create read update"},
}

// MFARoles are the roles that require a second factor by default (the
// administrator can change this per role).
var MFARoles = []string{"admin", "manager", "security_officer"}

// Principal is who is acting: a user (through a session or API token) or an
// operator at the command line. It carries where the request came from, for
// the audit trail.
type Principal struct {
	UserID string // empty for the command-line operator
	Actor  string // "user:<id>", "token:<id>", "cli:<os user>"
	Role   string
	SeeAll bool
	Perms  []Permission

	IP        string
	UserAgent string
	RequestID string

	// Interactive is set for a browser session; AuthAt is when its user last
	// proved who they are. Sensitive actions need AuthAt within StepUpWindow.
	// API tokens and the command line are not interactive: they are
	// credentials deliberately issued by an authenticated person.
	Interactive bool
	AuthAt      time.Time
}

// StepUpWindow is how recent an interactive authentication must be for a
// sensitive action (export, user disable, role, key and backup changes).
const StepUpWindow = 5 * time.Minute

// ErrStepUp is returned when a sensitive action needs a fresh authentication.
var ErrStepUp = errors.New("this action needs a recent authentication: confirm your password or code (POST /api/v1/auth/reauth) and retry within 5 minutes")

// RequireRecentAuth enforces step-up for interactive principals.
func RequireRecentAuth(p Principal, now time.Time) error {
	if !p.Interactive || now.Sub(p.AuthAt) <= StepUpWindow {
		return nil
	}
	return ErrStepUp
}

// NewPrincipal builds the principal of a user holding role r.
func NewPrincipal(userID, actor string, r store.Role) (Principal, error) {
	perms, err := ParsePermissions(r.Permissions)
	if err != nil {
		return Principal{}, fmt.Errorf("role %s: %w", r.Name, err)
	}
	return Principal{UserID: userID, Actor: actor, Role: r.Name, SeeAll: r.SeeAll, Perms: perms}, nil
}

// Operator is the principal of someone running custos on the server itself
// with access to the data directory and root key: they could read everything
// anyway, so they act with the admin template, and are audited as such.
func Operator(osUser string) Principal {
	r := Templates[0]
	p, _ := NewPrincipal("", "cli:"+osUser, r)
	return p
}

// Can reports whether p holds permission perm.
func (p Principal) Can(perm Permission) bool { return slices.Contains(p.Perms, perm) }

// IsZero reports whether p is the zero principal (nobody).
func (p Principal) IsZero() bool { return p.Actor == "" }

// CustomerScope is the set of customers p may see.
func CustomerScope(p Principal) store.Scope {
	switch {
	case !p.Can(Read):
		return store.Scope{}
	case p.SeeAll:
		return store.Scope{All: true}
	case p.UserID != "":
		return store.Scope{Owners: []string{p.UserID}}
	default:
		return store.Scope{}
	}
}

// OwnerOnCreate decides the owner of a customer p creates: requested when p
// may assign, otherwise p itself. An empty result means the public pool.
func OwnerOnCreate(p Principal, requested string, requestedSet bool) (string, error) {
	if requestedSet && requested != p.UserID {
		if !p.Can(Assign) {
			return "", fmt.Errorf("%w: assigning a customer to someone else needs the assign permission", ErrDenied)
		}
		return requested, nil
	}
	if p.UserID == "" && !requestedSet {
		return "", nil
	}
	return p.UserID, nil
}

// CanReassign reports whether p may move a customer to another owner.
func CanReassign(p Principal) error {
	if !p.Can(Assign) {
		return fmt.Errorf("%w: changing a customer's owner needs the assign permission", ErrDenied)
	}
	return nil
}

// ErrDenied marks a refusal of permission.
var ErrDenied = fmt.Errorf("permission denied")

// Require returns ErrDenied (wrapped with what was missing) unless p holds perm.
func Require(p Principal, perm Permission) error {
	if p.Can(perm) {
		return nil
	}
	return fmt.Errorf("%w: role %q lacks %q", ErrDenied, p.Role, perm)
}

// CanManageUser reports whether p may act on the account (sessions, tokens,
// profile) of user ownerID: their own, or anyone's with manage_users.
func CanManageUser(p Principal, ownerID string) bool {
	return (p.UserID != "" && p.UserID == ownerID) || p.Can(ManageUsers)
}

// Package access decides who may do what to which customer. Every rule lives
// here and internal/crm applies it; handlers never decide.
//
// Deny by default: a principal holds exactly the permissions of its role
// (plus temporary grants in force), sees exactly the customers its Scope
// names (pushed into SQL by the store) and each field at the level its
// role's field policy gives, lowered by how it reaches the record.
package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/internal/store"
)

// Permission is an object permission granted by a role or a temporary grant.
type Permission string

// The permissions known to Custos.
const (
	Create     Permission = "create"      // create customers, contacts, interactions
	Read       Permission = "read"        // read customers in scope
	Update     Permission = "update"      // change customers in scope
	Delete     Permission = "delete"      // soft-delete customers in scope
	Import     Permission = "import"      // bulk import
	Export     Permission = "export"      // bulk export
	Reveal     Permission = "reveal"      // unmask one masked field of one record, with a reason
	ViewHidden Permission = "view_hidden" // see hidden customers
	Hide       Permission = "hide"        // hide and unhide customers
	Claim      Permission = "claim"       // see the public pool, claim from it, release to it
	Assign     Permission = "assign"      // set or change a customer's owner
	Share      Permission = "share"       // share customers one may fully access

	ManageUsers  Permission = "manage_users"  // create, disable, offboard users; change their roles
	ManageRoles  Permission = "manage_roles"  // edit roles, approve temporary grants
	ManageConfig Permission = "manage_config" // settings

	ManagePolicies Permission = "manage_policies" // login/MFA policies, strict separation, quotas
	ManageAlerts   Permission = "manage_alerts"   // handle alerts
	ApproveExport  Permission = "approve_export"  // approve others' export requests
	ReadAudit      Permission = "read_audit"      // read the audit trail

	// Erase crypto-shreds a customer for good (right to erasure): not a
	// data permission (it shows nothing), not an administrator's duty
	// (strict separation takes it away with the data).
	Erase Permission = "erase"
)

// DataPermissions reach customer data.
var DataPermissions = []Permission{Create, Read, Update, Delete, Import, Export, Reveal, ViewHidden, Hide, Claim, Assign, Share}

// AdminPermissions are the system administrator's duties.
var AdminPermissions = []Permission{ManageUsers, ManageRoles, ManageConfig}

// SecurityPermissions are the security officer's duties.
var SecurityPermissions = []Permission{ManagePolicies, ManageAlerts, ApproveExport}

// AllPermissions lists every permission, for validation and docs.
var AllPermissions = slices.Concat(DataPermissions, AdminPermissions, SecurityPermissions, []Permission{ReadAudit, Erase})

// ParsePermissions parses a space- or comma-separated permission list.
func ParsePermissions(s string) ([]Permission, error) {
	var out []Permission
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' }) {
		p := Permission(f)
		if !slices.Contains(AllPermissions, p) {
			return nil, fmt.Errorf("unknown permission %q (known: %s)", f, joinPerms(AllPermissions))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func joinPerms(ps []Permission) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, " ")
}

// FormatPermissions is the stored form of a permission list.
func FormatPermissions(ps []Permission) string { return joinPerms(ps) }

// Principal is who is acting: a user (through a session or API token) or an
// operator at the command line. It carries where the request came from, for
// the audit trail.
type Principal struct {
	UserID string // empty for the command-line operator
	Actor  string // "user:<id>", "token:<id>", "cli:<os user>"
	Role   string
	SeeAll bool
	Perms  []Permission
	// Below are the roles under Role in the hierarchy: their holders'
	// customers are visible to this principal.
	Below []string
	// Fields is the role's field policy; a field not named is hidden.
	Fields      map[string]Level
	RevealQuota int
	Pool        PoolLimits
	// Separated is set when strict separation took data access away.
	Separated bool

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

// PoolLimits are a role's claim limits (0: no limit).
type PoolLimits struct {
	ClaimDaily   int
	MaxOwned     int
	CooldownDays int
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

// Subject is what Resolve needs to know of a user.
type Subject struct {
	UserID string
	Actor  string
	Role   string
}

// Resolve builds the principal of a user from the roles (all of them, for
// the hierarchy), the user's grants in force, and the strict-separation
// setting. Under strict separation a holder of any administrator permission
// keeps only the administrator's duties: no customer data, no policies, no
// audit trail.
func Resolve(s Subject, roles []store.Role, grants []Permission, strict bool) (Principal, error) {
	byName := make(map[string]store.Role, len(roles))
	for _, r := range roles {
		byName[r.Name] = r
	}
	r, ok := byName[s.Role]
	if !ok {
		return Principal{}, fmt.Errorf("role %q does not exist", s.Role)
	}
	rp, err := ParseRole(r)
	if err != nil {
		return Principal{}, err
	}
	perms := slices.Clone(rp.Permissions)
	for _, g := range grants {
		if !slices.Contains(perms, g) {
			perms = append(perms, g)
		}
	}
	p := Principal{UserID: s.UserID, Actor: s.Actor, Role: r.Name, SeeAll: r.SeeAll, Perms: perms,
		Below: Descendants(roles, r.Name), Fields: rp.Fields, RevealQuota: r.RevealQuota,
		Pool: PoolLimits{ClaimDaily: r.ClaimDaily, MaxOwned: r.MaxOwned, CooldownDays: r.ClaimCooldownDays}}
	if strict && slices.ContainsFunc(p.Perms, func(x Permission) bool { return slices.Contains(AdminPermissions, x) }) {
		p.Perms = slices.DeleteFunc(p.Perms, func(x Permission) bool { return !slices.Contains(AdminPermissions, x) })
		p.SeeAll, p.Below, p.Fields, p.Separated = false, nil, nil, true
	}
	return p, nil
}

// Descendants lists the roles strictly below role, breadth first. A cycle
// (which role validation refuses) cannot loop.
func Descendants(roles []store.Role, role string) []string {
	children := map[string][]string{}
	for _, r := range roles {
		if r.Parent != "" {
			children[r.Parent] = append(children[r.Parent], r.Name)
		}
	}
	var out []string
	seen := map[string]bool{role: true}
	queue := []string{role}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, c := range children[cur] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Operator is the principal of someone running custos on the server itself
// with access to the data directory and root key: they could read everything
// anyway, so they act with every permission, and are audited as such.
func Operator(osUser string) Principal {
	fields := map[string]Level{}
	for _, f := range Fields {
		fields[f] = Editable
	}
	return Principal{Actor: "cli:" + osUser, Role: "operator", SeeAll: true, Perms: slices.Clone(AllPermissions), Fields: fields, RevealQuota: 1 << 30}
}

// Can reports whether p holds permission perm.
func (p Principal) Can(perm Permission) bool { return slices.Contains(p.Perms, perm) }

// IsZero reports whether p is the zero principal (nobody).
func (p Principal) IsZero() bool { return p.Actor == "" }

// CustomerScope is the set of customers p may reach at now, hidden ones
// included when p may view them (lists exclude them unless asked).
func CustomerScope(p Principal, now time.Time) store.Scope {
	if !p.Can(Read) || (p.UserID == "" && !p.SeeAll) {
		return store.Scope{}
	}
	sc := store.Scope{Now: now}
	if p.Can(ViewHidden) {
		sc.Hidden = store.HiddenInclude
	}
	if p.SeeAll {
		sc.All = true
		return sc
	}
	sc.UserID, sc.Role, sc.OwnerRoles, sc.Pool = p.UserID, p.Role, p.Below, p.Can(Claim)
	return sc
}

// Relation is how a principal reaches one record; it caps field levels and
// decides what may change.
type Relation int

// Relations, weakest first.
const (
	RelNone      Relation = iota // not reachable
	RelPool                      // in the public pool, reachable to claim
	RelShareRead                 // shared for reading
	RelShareEdit                 // shared for editing
	RelFull                      // own, a subordinate's, or everything (see-all)
)

func (r Relation) String() string {
	return [...]string{"none", "pool", "shared-read", "shared-edit", "full"}[r]
}

// RelationTo tells how p reaches a customer owned by ownerID (holding
// ownerRole; "" for the pool), given the level of the best share in force
// that reaches p ("", "read" or "edit").
func RelationTo(p Principal, ownerID, ownerRole, shareLevel string) Relation {
	if !p.Can(Read) {
		return RelNone
	}
	switch {
	case p.SeeAll:
		return RelFull
	case ownerID != "" && p.UserID != "" && ownerID == p.UserID:
		return RelFull
	case ownerID != "" && slices.Contains(p.Below, ownerRole):
		return RelFull
	case ownerID != "" && shareLevel == "edit": // shares reach owned customers only
		return RelShareEdit
	case ownerID != "" && shareLevel == "read":
		return RelShareRead
	case ownerID == "" && p.Can(Claim):
		return RelPool
	}
	return RelNone
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

// CanReassign reports whether p may move a customer it reaches by rel to
// another owner.
func CanReassign(p Principal, rel Relation) error {
	if !p.Can(Assign) {
		return fmt.Errorf("%w: changing a customer's owner needs the assign permission", ErrDenied)
	}
	if rel != RelFull && !(rel == RelPool && p.Can(Claim)) {
		return fmt.Errorf("%w: only the owner's superiors may reassign this customer", ErrDenied)
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
	if p.Separated && slices.Contains(DataPermissions, perm) {
		return fmt.Errorf("%w: strict separation keeps administrators away from customer data", ErrDenied)
	}
	return fmt.Errorf("%w: role %q lacks %q", ErrDenied, p.Role, perm)
}

// CanManageUser reports whether p may act on the account (sessions, tokens,
// profile) of user ownerID: their own, or anyone's with manage_users.
func CanManageUser(p Principal, ownerID string) bool {
	return (p.UserID != "" && p.UserID == ownerID) || p.Can(ManageUsers)
}

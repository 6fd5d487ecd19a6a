package crm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/normalize"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// --- roles ---------------------------------------------------------------------

// Role is a role as the API shows it.
type Role struct {
	Name              string                  `json:"name"`
	Label             string                  `json:"label"`
	Parent            string                  `json:"parent"`
	SeeAll            bool                    `json:"see_all"`
	Permissions       []access.Permission     `json:"permissions"`
	Fields            map[string]access.Level `json:"fields"`
	RevealQuota       int                     `json:"reveal_quota"`
	ClaimDaily        int                     `json:"claim_daily"`
	MaxOwned          int                     `json:"max_owned"`
	ClaimCooldownDays int                     `json:"claim_cooldown_days"`
	Template          bool                    `json:"template"` // an unedited shipped template
	Below             []string                `json:"below"`    // roles under this one
	UpdatedAt         time.Time               `json:"updated_at"`
}

// RoleInput creates (all set) or patches (nil = unchanged) a role.
type RoleInput struct {
	Label             *string
	Parent            *string
	SeeAll            *bool
	Permissions       *[]string
	Fields            *map[string]string // field -> level; a patch merges
	RevealQuota       *int
	ClaimDaily        *int
	MaxOwned          *int
	ClaimCooldownDays *int
}

var roleName = regexp.MustCompile(`^[a-z][a-z0-9_]{1,31}$`)

func roleView(r store.Role, all []store.Role) (Role, error) {
	spec, err := access.ParseRole(r)
	if err != nil {
		return Role{}, err
	}
	fields := map[string]access.Level{}
	for _, f := range access.Fields {
		fields[f] = spec.Fields[f]
	}
	below := access.Descendants(all, r.Name)
	if below == nil {
		below = []string{}
	}
	return Role{Name: r.Name, Label: r.Label, Parent: r.Parent, SeeAll: r.SeeAll, Permissions: spec.Permissions, Fields: fields,
		RevealQuota: r.RevealQuota, ClaimDaily: r.ClaimDaily, MaxOwned: r.MaxOwned, ClaimCooldownDays: r.ClaimCooldownDays,
		Template: r.TemplateVersion > 0, Below: below, UpdatedAt: r.UpdatedAt}, nil
}

// ListRoles lists the roles. Anyone signed in may read them: role names and
// policies are not customer data, and the UI needs them.
func (s *Service) ListRoles(ctx context.Context, p access.Principal) ([]Role, error) {
	var out []Role
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		all, err := tx.Roles(ctx)
		if err != nil {
			return err
		}
		for _, r := range all {
			v, err := roleView(r, all)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// GetRole returns one role.
func (s *Service) GetRole(ctx context.Context, p access.Principal, name string) (Role, error) {
	roles, err := s.ListRoles(ctx, p)
	if err != nil {
		return Role{}, err
	}
	i := slices.IndexFunc(roles, func(r Role) bool { return r.Name == name })
	if i < 0 {
		return Role{}, ErrNotFound
	}
	return roles[i], nil
}

// applyRole validates in onto r, returning the names of changed attributes.
func applyRole(r *store.Role, in RoleInput) ([]string, error) {
	var fe fieldErrs
	var changed []string
	set := func(name string, cond bool) {
		if cond {
			changed = append(changed, name)
		}
	}
	if in.Label != nil {
		v, err := normalize.Text(*in.Label, 60)
		if err != nil {
			fe.add("label", err)
		}
		set("label", v != r.Label)
		r.Label = v
	}
	if in.Parent != nil {
		set("parent", *in.Parent != r.Parent)
		r.Parent = *in.Parent
	}
	if in.SeeAll != nil {
		set("see_all", *in.SeeAll != r.SeeAll)
		r.SeeAll = *in.SeeAll
	}
	if in.Permissions != nil {
		perms, err := access.ParsePermissions(strings.Join(*in.Permissions, " "))
		if err != nil {
			fe.add("permissions", err)
		} else {
			v := access.FormatPermissions(perms)
			set("permissions", v != r.Permissions)
			r.Permissions = v
		}
	}
	if in.Fields != nil {
		cur, err := access.ParseFieldPolicy(r.Fields)
		if err != nil {
			cur = map[string]access.Level{}
		}
		for f, lv := range *in.Fields {
			l, err := access.ParseLevel(lv)
			if err != nil || !slices.Contains(access.Fields, f) {
				fe.addf("fields."+f, "must be a known field (%s) set to hidden, masked, read or edit", strings.Join(access.Fields, ", "))
				continue
			}
			cur[f] = l
		}
		v := access.FormatFieldPolicy(cur)
		set("fields", v != r.Fields)
		r.Fields = v
	}
	for _, x := range []struct {
		name string
		in   *int
		dst  *int
		max  int
	}{{"reveal_quota", in.RevealQuota, &r.RevealQuota, 100000}, {"claim_daily", in.ClaimDaily, &r.ClaimDaily, 100000},
		{"max_owned", in.MaxOwned, &r.MaxOwned, 10000000}, {"claim_cooldown_days", in.ClaimCooldownDays, &r.ClaimCooldownDays, 3650}} {
		if x.in == nil {
			continue
		}
		if *x.in < 0 || *x.in > x.max {
			fe.addf(x.name, "must be between 0 and %d", x.max)
			continue
		}
		set(x.name, *x.in != *x.dst)
		*x.dst = *x.in
	}
	return changed, fe.err()
}

// roleChange runs a validated change to the role set: permission and
// step-up, the hierarchy check, the audit event, and the self-grant alert
// when an administrator widens their own role's data access.
func (s *Service) roleChange(ctx context.Context, p access.Principal, action, name string,
	fn func(tx *store.Tx, roles []store.Role, now time.Time) (before, after store.Role, changed []string, err error)) (Role, error) {
	if err := access.Require(p, access.ManageRoles); err != nil {
		return Role{}, s.deny(ctx, p, action, "role", name, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return Role{}, s.deny(ctx, p, action, "role", name, err)
	}
	now := s.now().UTC()
	var out Role
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		roles, err := tx.Roles(ctx)
		if err != nil {
			return err
		}
		before, after, changed, err := fn(tx, roles, now)
		if err != nil {
			return err
		}
		all, err := tx.Roles(ctx)
		if err != nil {
			return err
		}
		if err := access.ValidateHierarchy(all); err != nil {
			return &ValidationError{Fields: []FieldError{{Field: "parent", Message: err.Error()}}}
		}
		if after.Name != "" {
			if out, err = roleView(after, all); err != nil {
				return err
			}
		}
		ev := event(p, action, "role", name)
		ev.Details = map[string]any{"fields": changed, "permissions_before": before.Permissions, "permissions_after": after.Permissions,
			"field_policy_after": after.Fields, "parent_after": after.Parent, "see_all_after": after.SeeAll}
		seq, err := audit.Record(ctx, tx, now, ev)
		if err != nil {
			return err
		}
		// An administrator editing their own role (under strict
		// separation any edit may lift the separation), or placing a role
		// under their own, widens their reach: alerted.
		if name == p.Role && (widensData(before, after) || p.Separated) {
			return s.raiseSelfGrant(ctx, tx, p, now, seq, "own role changed: "+name)
		}
		if len(access.Descendants(all, p.Role)) > len(access.Descendants(roles, p.Role)) {
			return s.raiseSelfGrant(ctx, tx, p, now, seq, "role placed under own role: "+name)
		}
		return nil
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) || errors.Is(err, ErrInvalid) {
			return Role{}, err
		}
		if errors.Is(err, store.ErrConflict) {
			return Role{}, fmt.Errorf("%w: %v", ErrConflict, err)
		}
		return Role{}, s.denyOr(ctx, p, action, "role", name, err)
	}
	return out, nil
}

func parentExists(roles []store.Role, r store.Role) error {
	if r.Parent == "" || slices.ContainsFunc(roles, func(x store.Role) bool { return x.Name == r.Parent }) {
		return nil
	}
	return &ValidationError{Fields: []FieldError{{Field: "parent", Message: "no such role"}}}
}

// widensData reports whether after reaches customer data that before did not.
func widensData(before, after store.Role) bool {
	if after.SeeAll && !before.SeeAll {
		return true
	}
	b, _ := access.ParsePermissions(before.Permissions)
	a, _ := access.ParsePermissions(after.Permissions)
	for _, perm := range a {
		if slices.Contains(access.DataPermissions, perm) && !slices.Contains(b, perm) {
			return true
		}
	}
	bf, _ := access.ParseFieldPolicy(before.Fields)
	af, _ := access.ParseFieldPolicy(after.Fields)
	for f, l := range af {
		if l > bf[f] {
			return true
		}
	}
	return false
}

// raiseSelfGrant records an alert when an administrator gives themselves
// data access (their own role, a grant, a role change).
func (s *Service) raiseSelfGrant(ctx context.Context, tx *store.Tx, p access.Principal, now time.Time, seq int64, what string) error {
	if !slices.ContainsFunc(p.Perms, func(x access.Permission) bool { return slices.Contains(access.AdminPermissions, x) }) {
		return nil
	}
	_, err := monitor.Raise(ctx, tx, now, monitor.Alert{Rule: monitor.RuleSelfGrant, Severity: monitor.High, ActorID: actorKey(p),
		Evidence: []int64{seq}, Details: map[string]any{"what": what}})
	return err
}

// CreateRole creates a role; from names a role to copy first.
func (s *Service) CreateRole(ctx context.Context, p access.Principal, name, from string, in RoleInput) (Role, error) {
	if !roleName.MatchString(name) {
		return Role{}, &ValidationError{Fields: []FieldError{{Field: "name", Message: "2-32 characters: a-z, 0-9 and _, starting with a letter"}}}
	}
	return s.roleChange(ctx, p, "role.create", name, func(tx *store.Tx, roles []store.Role, now time.Time) (store.Role, store.Role, []string, error) {
		r := store.Role{Name: name, Fields: "{}", RevealQuota: 50}
		if from != "" {
			i := slices.IndexFunc(roles, func(x store.Role) bool { return x.Name == from })
			if i < 0 {
				return r, r, nil, &ValidationError{Fields: []FieldError{{Field: "from", Message: "no such role"}}}
			}
			r = roles[i]
			r.Name = name
		}
		changed, err := applyRole(&r, in)
		if err == nil {
			err = parentExists(roles, r)
		}
		if err != nil {
			return r, r, nil, err
		}
		r.TemplateVersion, r.UpdatedAt = 0, now
		if err := tx.InsertRole(ctx, r); err != nil {
			return r, r, nil, err
		}
		return store.Role{}, r, changed, tx.EnsureRolePolicy(ctx, store.RolePolicy{Role: name})
	})
}

// UpdateRole patches a role; the change applies from the next request of
// every holder.
func (s *Service) UpdateRole(ctx context.Context, p access.Principal, name string, in RoleInput) (Role, error) {
	return s.roleChange(ctx, p, "role.update", name, func(tx *store.Tx, roles []store.Role, now time.Time) (store.Role, store.Role, []string, error) {
		i := slices.IndexFunc(roles, func(x store.Role) bool { return x.Name == name })
		if i < 0 {
			return store.Role{}, store.Role{}, nil, store.ErrNotFound
		}
		before := roles[i]
		after := before
		changed, err := applyRole(&after, in)
		if err == nil {
			err = parentExists(roles, after)
		}
		if err != nil || len(changed) == 0 {
			return before, after, changed, err
		}
		after.TemplateVersion, after.UpdatedAt = 0, now
		return before, after, changed, tx.UpdateRole(ctx, after)
	})
}

// DeleteRole removes a role nobody holds and no role descends from.
func (s *Service) DeleteRole(ctx context.Context, p access.Principal, name string) error {
	_, err := s.roleChange(ctx, p, "role.delete", name, func(tx *store.Tx, roles []store.Role, now time.Time) (store.Role, store.Role, []string, error) {
		i := slices.IndexFunc(roles, func(x store.Role) bool { return x.Name == name })
		if i < 0 {
			return store.Role{}, store.Role{}, nil, store.ErrNotFound
		}
		return roles[i], store.Role{}, []string{"deleted"}, tx.DeleteRole(ctx, name)
	})
	return err
}

// SetUserRole moves a user to another role ("changing post"): it applies
// from their next request. An administrator moving themselves to a role
// with more data access raises an alert.
func (s *Service) SetUserRole(ctx context.Context, p access.Principal, userID, role string) error {
	const action = "user.role"
	if err := access.Require(p, access.ManageUsers); err != nil {
		return s.deny(ctx, p, action, "user", userID, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return s.deny(ctx, p, action, "user", userID, err)
	}
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, userID)
		if err != nil {
			return err
		}
		to, err := tx.GetRole(ctx, role)
		if errors.Is(err, store.ErrNotFound) {
			return &ValidationError{Fields: []FieldError{{Field: "role", Message: "no such role"}}}
		}
		if err != nil {
			return err
		}
		if u.Role == role {
			return nil
		}
		from, err := tx.GetRole(ctx, u.Role)
		if err != nil {
			return err
		}
		prev := u.Role
		u.Role, u.UpdatedAt = role, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		ev := event(p, action, "user", userID)
		ev.Details = map[string]any{"from": prev, "to": role}
		seq, err := audit.Record(ctx, tx, now, ev)
		if err != nil {
			return err
		}
		// An administrator changing their own role is alerted whatever the
		// roles: under strict separation any data role is a gain.
		if userID == p.UserID && (widensData(from, to) || p.Separated || from.Permissions != to.Permissions) {
			return s.raiseSelfGrant(ctx, tx, p, now, seq, "own role changed to "+role)
		}
		return nil
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return s.denyOr(ctx, p, action, "user", userID, err)
	}
	return nil
}

// --- shares ----------------------------------------------------------------------

// Share is a share as the API shows it.
type Share struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customer_id"`
	UserID     string     `json:"user_id,omitempty"`
	Role       string     `json:"role,omitempty"`
	Level      string     `json:"level"`
	GrantedBy  string     `json:"granted_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Active     bool       `json:"active"`
}

// ShareInput shares a customer with a user or a role.
type ShareInput struct {
	UserID    string
	Role      string
	Level     string // read or edit
	ExpiresAt *time.Time
}

func shareView(sh store.Share, now time.Time) Share {
	return Share{ID: sh.ID, CustomerID: sh.CustomerID, UserID: sh.UserID, Role: sh.Role, Level: sh.Level, GrantedBy: sh.GrantedBy,
		CreatedAt: sh.CreatedAt, ExpiresAt: sh.ExpiresAt, RevokedAt: sh.RevokedAt, Active: sh.Active(now)}
}

// ShareCustomer shares a customer p fully reaches (own, a subordinate's, or
// see-all) with a user or role, for reading or editing, until an optional
// expiry. An expired share stops working at once: the visibility predicate
// compares its expiry with the request's time.
func (s *Service) ShareCustomer(ctx context.Context, p access.Principal, customerID string, in ShareInput) (Share, error) {
	const action = "share.create"
	if err := access.Require(p, access.Share); err != nil {
		return Share{}, s.deny(ctx, p, action, "customer", customerID, err)
	}
	now := s.now().UTC()
	var fe fieldErrs
	if (in.UserID == "") == (in.Role == "") {
		fe.addf("user_id", "give exactly one of user_id and role")
	}
	if in.UserID != "" && !validID(in.UserID) {
		fe.addf("user_id", "not a valid id")
	}
	if in.UserID != "" && in.UserID == p.UserID {
		fe.addf("user_id", "you cannot share with yourself")
	}
	if in.Level == "" {
		in.Level = "read"
	}
	if in.Level != "read" && in.Level != "edit" {
		fe.addf("level", `must be "read" or "edit"`)
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		fe.addf("expires_at", "must be in the future")
	}
	if err := fe.err(); err != nil {
		return Share{}, err
	}
	sh := store.Share{ID: newID(), CustomerID: customerID, UserID: in.UserID, Role: in.Role, Level: in.Level, GrantedBy: p.Actor,
		CreatedAt: now, ExpiresAt: in.ExpiresAt}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if _, _, err := s.reachFor(ctx, tx, p, customerID, access.RelFull, "sharing", true); err != nil {
			return err
		}
		if in.UserID != "" {
			u, err := tx.GetUser(ctx, in.UserID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
				return &ValidationError{Fields: []FieldError{{Field: "user_id", Message: "no such active user"}}}
			}
			if err != nil {
				return err
			}
		} else if _, err := tx.GetRole(ctx, in.Role); errors.Is(err, store.ErrNotFound) {
			return &ValidationError{Fields: []FieldError{{Field: "role", Message: "no such role"}}}
		} else if err != nil {
			return err
		}
		if err := tx.InsertShare(ctx, sh); err != nil {
			return err
		}
		ev := event(p, action, "share", sh.ID)
		ev.Details = map[string]any{"customer_id": customerID, "user_id": in.UserID, "role": in.Role, "level": in.Level, "expires": in.ExpiresAt != nil}
		if in.ExpiresAt != nil {
			ev.Details["expires_at"] = in.ExpiresAt.UTC()
		}
		ev.Customers = []string{customerID}
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return Share{}, err
		}
		return Share{}, s.denyOr(ctx, p, action, "customer", customerID, err)
	}
	return shareView(sh, now), nil
}

// ListShares lists the shares of a customer p fully reaches.
func (s *Service) ListShares(ctx context.Context, p access.Principal, customerID string) ([]Share, error) {
	const action = "share.list"
	if err := access.Require(p, access.Read); err != nil {
		return nil, s.deny(ctx, p, action, "customer", customerID, err)
	}
	now := s.now().UTC()
	out := []Share{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		if _, _, err := s.reachFor(ctx, tx, p, customerID, access.RelFull, "listing the shares of", false); err != nil {
			return err
		}
		shares, err := tx.CustomerShares(ctx, customerID)
		for _, sh := range shares {
			out = append(out, shareView(sh, now))
		}
		return err
	})
	if err != nil {
		return nil, s.denyOr(ctx, p, action, "customer", customerID, err)
	}
	if err := s.recordChildren(ctx, p, action, customerID, len(out), func(i int) string { return out[i].ID }); err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeShare ends a share of a customer p fully reaches.
func (s *Service) RevokeShare(ctx context.Context, p access.Principal, shareID string) error {
	const action = "share.revoke"
	if err := access.Require(p, access.Share); err != nil {
		return s.deny(ctx, p, action, "share", shareID, err)
	}
	if !validID(shareID) {
		return s.deny(ctx, p, action, "share", shareID, ErrNotFound)
	}
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		sh, err := tx.GetShare(ctx, shareID)
		if err != nil {
			return err
		}
		if _, _, err := s.reachFor(ctx, tx, p, sh.CustomerID, access.RelFull, "revoking a share of", true); err != nil {
			return err
		}
		if err := tx.RevokeShare(ctx, shareID, now); err != nil {
			return err
		}
		ev := event(p, action, "share", shareID)
		ev.Details = map[string]any{"customer_id": sh.CustomerID, "user_id": sh.UserID, "role": sh.Role, "level": sh.Level}
		ev.Customers = []string{sh.CustomerID}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	return s.denyOr(ctx, p, action, "share", shareID, err)
}

// --- temporary grants ------------------------------------------------------------

// Grant is a temporary grant as the API shows it (the reason stays sealed).
type Grant struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Permission string     `json:"permission"`
	ApprovedBy string     `json:"approved_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Active     bool       `json:"active"`
}

// MaxGrant is the longest a temporary grant may last.
const MaxGrant = 90 * 24 * time.Hour

func grantView(g store.Grant, now time.Time) Grant {
	return Grant{ID: g.ID, UserID: g.UserID, Permission: g.Permission, ApprovedBy: g.ApprovedBy, CreatedAt: g.CreatedAt,
		ExpiresAt: g.ExpiresAt, RevokedAt: g.RevokedAt, Active: g.RevokedAt == nil && g.ExpiresAt.After(now)}
}

// CreateGrant gives a user one permission until expiresAt, approved by p (an
// administrator with manage_roles), with a reason kept sealed under the
// user's key. It ends by itself: the principal is built from grants in force.
func (s *Service) CreateGrant(ctx context.Context, p access.Principal, userID, permission, reason string, expiresAt time.Time) (Grant, error) {
	const action = "grant.create"
	if err := access.Require(p, access.ManageRoles); err != nil {
		return Grant{}, s.deny(ctx, p, action, "user", userID, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return Grant{}, s.deny(ctx, p, action, "user", userID, err)
	}
	now := s.now().UTC()
	var fe fieldErrs
	if !validID(userID) {
		fe.addf("user_id", "not a valid id")
	}
	perm, err := access.ParsePermissions(permission)
	if err != nil || len(perm) != 1 {
		fe.addf("permission", "must be one known permission")
	}
	reason, rerr := normalize.Text(reason, maxReason)
	if rerr != nil || strings.TrimSpace(reason) == "" {
		fe.addf("reason", "is required (at most %d characters)", maxReason)
	}
	if !expiresAt.After(now) || expiresAt.Sub(now) > MaxGrant {
		fe.addf("expires_at", "must be in the future and at most 90 days away")
	}
	if err := fe.err(); err != nil {
		return Grant{}, err
	}
	g := store.Grant{ID: newID(), UserID: userID, Permission: string(perm[0]), ApprovedBy: actorKey(p), CreatedAt: now, ExpiresAt: expiresAt.UTC()}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, userID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
			return &ValidationError{Fields: []FieldError{{Field: "user_id", Message: "no such active user"}}}
		}
		if err != nil {
			return err
		}
		dk, err := s.keys.DataKey(ctx, tx, u.ID, u.KeyVersion)
		if err != nil {
			return err
		}
		z := &sealer{s: s, key: dk, table: "grants", id: g.ID}
		g.Reason, g.KeyVersion = z.str("reason", reason), dk.Version
		if z.err != nil {
			return z.err
		}
		if err := tx.InsertGrant(ctx, g); err != nil {
			return err
		}
		ev := event(p, action, "grant", g.ID)
		ev.Details = map[string]any{"user_id": userID, "permission": g.Permission, "expires_at": g.ExpiresAt}
		seq, err := audit.Record(ctx, tx, now, ev)
		if err != nil {
			return err
		}
		if userID == p.UserID && slices.Contains(access.DataPermissions, perm[0]) {
			return s.raiseSelfGrant(ctx, tx, p, now, seq, "grant of "+g.Permission+" to self")
		}
		return nil
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return Grant{}, err
		}
		return Grant{}, s.denyOr(ctx, p, action, "user", userID, err)
	}
	return grantView(g, now), nil
}

// ListGrants lists grants: everyone's for manage_roles, else p's own.
func (s *Service) ListGrants(ctx context.Context, p access.Principal, userID string) ([]Grant, error) {
	if !p.Can(access.ManageRoles) {
		if userID != "" && userID != p.UserID {
			return nil, s.deny(ctx, p, "grant.list", "user", userID, fmt.Errorf("%w: role %q lacks %q", access.ErrDenied, p.Role, access.ManageRoles))
		}
		userID = p.UserID
	}
	now := s.now().UTC()
	out := []Grant{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		gs, err := tx.Grants(ctx, userID)
		for _, g := range gs {
			out = append(out, grantView(g, now))
		}
		return err
	})
	return out, err
}

// RevokeGrant ends a grant before its expiry.
func (s *Service) RevokeGrant(ctx context.Context, p access.Principal, id string) error {
	const action = "grant.revoke"
	if err := access.Require(p, access.ManageRoles); err != nil {
		return s.deny(ctx, p, action, "grant", id, err)
	}
	if !validID(id) {
		return s.deny(ctx, p, action, "grant", id, ErrNotFound)
	}
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.RevokeGrant(ctx, id, now); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, now, event(p, action, "grant", id))
		return err
	})
	return s.denyOr(ctx, p, action, "grant", id, err)
}

// --- settings ----------------------------------------------------------------------

// Setting is a setting as the API shows it.
type Setting struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Default   string `json:"default"`
	Source    string `json:"source"` // stored, environment or default
	Doc       string `json:"doc"`
	UpdatedBy string `json:"updated_by,omitempty"`
}

// Settings lists the effective settings (per-level pool overrides included).
func (s *Service) Settings(ctx context.Context, p access.Principal) ([]Setting, error) {
	if !p.Can(access.ManageConfig) && !p.Can(access.ManagePolicies) {
		return nil, s.deny(ctx, p, "config.list", "setting", "", fmt.Errorf("%w: role %q lacks %q", access.ErrDenied, p.Role, access.ManageConfig))
	}
	var out []Setting
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		stored, err := tx.Settings(ctx)
		if err != nil {
			return err
		}
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		keys := settings.Keys()
		for k := range stored {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			d, ok := settings.Lookup(k)
			if !ok {
				continue
			}
			v, src := vals.Get(k)
			out = append(out, Setting{Key: k, Value: v, Default: d.Default, Source: src, Doc: d.Doc, UpdatedBy: stored[k].UpdatedBy})
		}
		return nil
	})
	return out, err
}

// SetSetting changes a setting ("" resets it). Strict separation is the
// security officer's (manage_policies); turning it off raises an alert.
func (s *Service) SetSetting(ctx context.Context, p access.Principal, key, value string) (Setting, error) {
	const action = "config.set"
	defer s.forgetSettings()
	key = settings.CanonicalKey(key)
	d, ok := settings.Lookup(key)
	if !ok {
		_, err := settings.Validate(key, value)
		return Setting{}, &ValidationError{Fields: []FieldError{{Field: "key", Message: err.Error()}}}
	}
	if err := access.Require(p, access.Permission(d.Permission)); err != nil {
		return Setting{}, s.deny(ctx, p, action, "setting", key, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return Setting{}, s.deny(ctx, p, action, "setting", key, err)
	}
	v, err := settings.Validate(key, value)
	if err != nil {
		return Setting{}, &ValidationError{Fields: []FieldError{{Field: "value", Message: err.Error()}}}
	}
	now := s.now().UTC()
	var out Setting
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		before, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		old, _ := before.Get(key)
		if err := tx.PutSetting(ctx, store.Setting{Key: key, Value: v, UpdatedAt: now, UpdatedBy: p.Actor}); err != nil {
			return err
		}
		after, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		nv, src := after.Get(key)
		out = Setting{Key: key, Value: nv, Default: d.Default, Source: src, Doc: d.Doc, UpdatedBy: p.Actor}
		ev := event(p, action, "setting", key)
		ev.Details = map[string]any{"from": old, "to": nv}
		seq, err := audit.Record(ctx, tx, now, ev)
		if err != nil {
			return err
		}
		if key == settings.StrictSeparation && old == "on" && nv == "off" {
			_, err = monitor.Raise(ctx, tx, now, monitor.Alert{Rule: monitor.RuleSeparationDisabled, Severity: monitor.High,
				ActorID: actorKey(p), Evidence: []int64{seq}})
		}
		// Loosening a defence (a higher threshold, a detector turned off)
		// is a way to prepare an exfiltration: a second pair of eyes.
		if err == nil && old != nv && weakens(key, old, nv) {
			_, err = monitor.Raise(ctx, tx, now, monitor.Alert{Rule: monitor.RuleDefenceWeakened, Severity: monitor.High,
				ActorID: actorKey(p), Evidence: []int64{seq}, Details: map[string]any{"setting": key, "from": old, "to": nv}})
		}
		return err
	})
	if err != nil {
		return Setting{}, err
	}
	return out, nil
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// SeedRoles ensures the template roles and their default login policies.
// A template upgraded in place is audited; one whose upgrade widens access
// to customer data (say, a role that saw its own customers now sees all)
// also raises an alert, so nobody's reach grows unnoticed.
func (s *Service) SeedRoles(ctx context.Context, templates []store.Role, mfaRoles []string) error {
	now := s.now().UTC()
	return s.db.Write(ctx, func(tx *store.Tx) error {
		for _, r := range templates {
			before, err := tx.GetRole(ctx, r.Name)
			existed := err == nil
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := tx.EnsureRole(ctx, r); err != nil {
				return err
			}
			if err := tx.EnsureRolePolicy(ctx, store.RolePolicy{Role: r.Name, MFARequired: slices.Contains(mfaRoles, r.Name)}); err != nil {
				return err
			}
			after, err := tx.GetRole(ctx, r.Name)
			if err != nil {
				return err
			}
			if !existed || before.TemplateVersion == after.TemplateVersion {
				continue
			}
			ev := audit.Event{Actor: "system", Action: "role.template_upgrade", ObjectType: "role", ObjectID: r.Name, Outcome: audit.OK,
				Details: map[string]any{"from_version": before.TemplateVersion, "to_version": after.TemplateVersion,
					"permissions_before": before.Permissions, "permissions_after": after.Permissions, "see_all_before": before.SeeAll, "see_all_after": after.SeeAll}}
			seq, err := audit.Record(ctx, tx, now, ev)
			if err != nil {
				return err
			}
			if widensData(before, after) {
				if _, err := monitor.Raise(ctx, tx, now, monitor.Alert{Rule: monitor.RuleTemplateWidened, Severity: monitor.Medium,
					Evidence: []int64{seq}, Details: map[string]any{"role": r.Name}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// WatchAccountAction raises an alert when an administrator kept away from
// customer data by strict separation creates a user or sets someone's
// password: either lets them sign in as a person who can read the data.
func (s *Service) WatchAccountAction(ctx context.Context, p access.Principal, userID, what string) error {
	if !p.Separated {
		return nil
	}
	return s.db.Write(ctx, func(tx *store.Tx) error {
		_, err := monitor.Raise(ctx, tx, s.now(), monitor.Alert{Rule: monitor.RuleSeparatedAccountAction, Severity: monitor.Medium,
			ActorID: actorKey(p), Details: map[string]any{"user_id": userID, "what": what}})
		return err
	})
}

// weakens reports whether changing a detector, lockout or export-approval
// setting from old to nv loosens it: a higher threshold, 0 or off.
func weakens(key, old, nv string) bool {
	if !strings.HasPrefix(key, "monitor.") && !strings.HasPrefix(key, "auth.lockout") && key != settings.ExportApprovalRows {
		return false
	}
	switch key {
	case settings.ExportApprovalRows: // 0: every export needs approval
		if old == "0" || nv == "0" {
			return old == "0"
		}
		return atoi(nv) > atoi(old)
	case settings.WorkHours:
		return old != "off" // off, or a different window that may be wider
	case settings.LockoutWindowMinutes, settings.LockoutMinutes, settings.RoleChangeHours:
		// Shorter windows and locks, a shorter watch after a role change.
		return nv == "0" || atoi(nv) < atoi(old)
	}
	return nv == "off" || nv == "0" || atoi(nv) > atoi(old)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

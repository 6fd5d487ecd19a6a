package crm

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/store"
)

// The administration pages (internal/web/ui_admin.go) need what the JSON
// API leaves to separate calls: the state of each account (locked, second
// factor) next to its profile, a staff directory to pick a user from, and
// the permission and step-up checks of the user actions that internal/auth
// performs without a principal. Each read and each refusal is audited.

// UserAccount is a user as an administrator sees it: the profile and the
// state of the account.
type UserAccount struct {
	ID          string
	Name        string
	Email       string
	Role        string
	Disabled    bool
	Suspended   bool       // a detector suspended the user until an alert handler reinstates them
	MFA         bool       // a confirmed TOTP factor or a passkey
	LockedUntil *time.Time // set while failed logins keep the account locked
	CreatedAt   time.Time
}

// Status is the account's state: disabled, suspended, locked or active.
func (u UserAccount) Status() string {
	switch {
	case u.Disabled:
		return "disabled"
	case u.Suspended:
		return "suspended"
	case u.LockedUntil != nil:
		return "locked"
	}
	return "active"
}

// UserQuery filters and pages the accounts.
type UserQuery struct {
	Q      string // part of the name or email, any case
	Cursor string // the Next of the previous page
	Limit  int    // 1..500, default 100
}

// StaffMember is a user as a picker shows them.
type StaffMember struct {
	ID     string
	Name   string
	Email  string
	Role   string
	Active bool // not disabled: may receive a share or a grant
}

// accountLockKey is the key of an account's failed-login counter; it is
// internal/auth's (throttleKeys), built from the same blind index.
func (s *Service) accountLockKey(email string) string {
	return "acct:" + base64.RawURLEncoding.EncodeToString(s.keys.Indexer().Term("user-email:"+email))
}

func (s *Service) userAccount(ctx context.Context, tx *store.Tx, u store.User, now time.Time) (UserAccount, error) {
	name, email, err := s.openUser(ctx, tx, u)
	if err != nil {
		return UserAccount{}, err
	}
	a := UserAccount{ID: u.ID, Name: name, Email: email, Role: u.Role, Disabled: u.Disabled, Suspended: u.Suspended, CreatedAt: u.CreatedAt}
	f, err := tx.GetTOTP(ctx, u.ID)
	switch {
	case err == nil:
		a.MFA = f.ConfirmedAt != nil
	case !errors.Is(err, store.ErrNotFound):
		return UserAccount{}, err
	}
	if !a.MFA {
		n, err := tx.CountUserPasskeys(ctx, u.ID)
		if err != nil {
			return UserAccount{}, err
		}
		a.MFA = n > 0
	}
	if email != "" {
		t, err := tx.GetLoginThrottle(ctx, s.accountLockKey(email))
		if err != nil {
			return UserAccount{}, err
		}
		if t.LockedUntil != nil && t.LockedUntil.After(now) {
			a.LockedUntil = t.LockedUntil
		}
	}
	return a, nil
}

// UserAccounts lists the accounts, in order of creation, one page at a
// time. It needs manage_users.
func (s *Service) UserAccounts(ctx context.Context, p access.Principal, q UserQuery) (Page[UserAccount], error) {
	const action = "user.list"
	if err := access.Require(p, access.ManageUsers); err != nil {
		return Page[UserAccount]{}, s.deny(ctx, p, action, "user", "", err)
	}
	switch {
	case q.Limit == 0:
		q.Limit = 100
	case q.Limit < 1 || q.Limit > 500:
		return Page[UserAccount]{}, invalid("limit", "must be from 1 to 500")
	}
	if q.Cursor != "" && !validID(q.Cursor) {
		return Page[UserAccount]{}, invalid("cursor", "is not a cursor this service returned")
	}
	needle := strings.ToLower(strings.TrimSpace(q.Q))
	now := s.now()
	out := Page[UserAccount]{Items: []UserAccount{}}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		us, err := tx.Users(ctx) // by id: UUIDv7, the order of creation
		if err != nil {
			return err
		}
		for _, u := range us {
			if q.Cursor != "" && u.ID <= q.Cursor {
				continue
			}
			a, err := s.userAccount(ctx, tx, u, now)
			if err != nil {
				return err
			}
			if needle != "" && !strings.Contains(strings.ToLower(a.Name), needle) && !strings.Contains(strings.ToLower(a.Email), needle) {
				continue
			}
			if len(out.Items) == q.Limit {
				out.Next = out.Items[len(out.Items)-1].ID
				return nil
			}
			out.Items = append(out.Items, a)
		}
		return nil
	})
	if err != nil {
		return Page[UserAccount]{}, err
	}
	ev := event(p, action, "user", "")
	ev.Details = map[string]any{"count": len(out.Items), "filtered": needle != ""}
	if err := audit.RecordAlone(ctx, s.db, s.now(), ev); err != nil {
		return Page[UserAccount]{}, err
	}
	return out, nil
}

// UserAccount returns one account. It needs manage_users; an unknown id is
// ErrNotFound.
func (s *Service) UserAccount(ctx context.Context, p access.Principal, userID string) (UserAccount, error) {
	const action = "user.view"
	if err := access.Require(p, access.ManageUsers); err != nil {
		return UserAccount{}, s.deny(ctx, p, action, "user", userID, err)
	}
	if !validID(userID) {
		return UserAccount{}, s.deny(ctx, p, action, "user", userID, ErrNotFound)
	}
	var a UserAccount
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, userID)
		if err != nil {
			return err
		}
		a, err = s.userAccount(ctx, tx, u, s.now())
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return UserAccount{}, s.deny(ctx, p, action, "user", userID, ErrNotFound)
	}
	if err != nil {
		return UserAccount{}, err
	}
	if err := audit.RecordAlone(ctx, s.db, s.now(), event(p, action, "user", userID)); err != nil {
		return UserAccount{}, err
	}
	return a, nil
}

// Staff lists every user by name, for choosing whom to share a customer
// with, grant a permission to or hand customers over to. It needs share,
// manage_users or manage_roles.
func (s *Service) Staff(ctx context.Context, p access.Principal) ([]StaffMember, error) {
	const action = "user.directory"
	if !p.Can(access.ManageUsers) && !p.Can(access.ManageRoles) {
		if err := access.Require(p, access.Share); err != nil {
			return nil, s.deny(ctx, p, action, "user", "", err)
		}
	}
	out := []StaffMember{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		us, err := tx.Users(ctx)
		if err != nil {
			return err
		}
		for _, u := range us {
			name, email, err := s.openUser(ctx, tx, u)
			if err != nil {
				return err
			}
			out = append(out, StaffMember{ID: u.ID, Name: name, Email: email, Role: u.Role, Active: !u.Disabled})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b StaffMember) int { return strings.Compare(a.Name, b.Name) })
	ev := event(p, action, "user", "")
	ev.Details = map[string]any{"count": len(out)}
	if err := audit.RecordAlone(ctx, s.db, s.now(), ev); err != nil {
		return nil, err
	}
	return out, nil
}

// AuthorizeSensitive checks that p holds perm and signed in recently
// (step-up), as the API demands for changes to people's access, before an
// action of internal/auth (which has no principal). A refusal is audited as
// a denial of action on objType objID.
func (s *Service) AuthorizeSensitive(ctx context.Context, p access.Principal, perm access.Permission, action, objType, objID string) error {
	if err := access.Require(p, perm); err != nil {
		return s.deny(ctx, p, action, objType, objID, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return s.deny(ctx, p, action, objType, objID, err)
	}
	return nil
}

// AuthorizeRolePolicy checks that p may change the login policy of role:
// manage_policies and a recent sign-in (as PUT /api/v1/roles/{name}/policy).
func (s *Service) AuthorizeRolePolicy(ctx context.Context, p access.Principal, role string) error {
	return s.AuthorizeSensitive(ctx, p, access.ManagePolicies, "role.policy.update", "role", role)
}

// The audit actions of the user actions that internal/auth performs (and
// audits) after AuthorizeUserAction.
const (
	ActionUserCreate        = "user.create"
	ActionUserDisable       = "user.disable"
	ActionUserEnable        = "user.enable"
	ActionUserUnlock        = "user.unlock"
	ActionUserPasswordReset = "user.password.reset"
	ActionUserSessionsEnd   = "session.revoke_all"
)

// AuthorizeUserAction checks that p may perform action (user.create,
// user.disable, user.password.reset, ...) on the account userID: the
// manage_users permission and a recent sign-in. A refusal is audited as a
// denial of action; the action itself is audited by internal/auth.
func (s *Service) AuthorizeUserAction(ctx context.Context, p access.Principal, action, userID string) error {
	return s.AuthorizeSensitive(ctx, p, access.ManageUsers, action, "user", userID)
}

// AdminRoles lists the roles for their editor. Unlike ListRoles (open to
// everyone signed in: the pages need role names) it needs manage_roles; a
// refusal is audited.
func (s *Service) AdminRoles(ctx context.Context, p access.Principal) ([]Role, error) {
	if err := access.Require(p, access.ManageRoles); err != nil {
		return nil, s.deny(ctx, p, "role.list", "role", "", err)
	}
	return s.ListRoles(ctx, p)
}

// AdminGrants lists every temporary grant for the page that manages them.
// Unlike ListGrants (which shows anyone their own) it needs manage_roles; a
// refusal is audited.
func (s *Service) AdminGrants(ctx context.Context, p access.Principal) ([]Grant, error) {
	if err := access.Require(p, access.ManageRoles); err != nil {
		return nil, s.deny(ctx, p, "grant.list", "grant", "", err)
	}
	return s.ListGrants(ctx, p, "")
}

// AdminRole returns a role for its editor, with every role (for the choice
// of parent). It needs manage_roles; a refusal is audited.
func (s *Service) AdminRole(ctx context.Context, p access.Principal, name string) (Role, []Role, error) {
	if err := access.Require(p, access.ManageRoles); err != nil {
		return Role{}, nil, s.deny(ctx, p, "role.view", "role", name, err)
	}
	roles, err := s.ListRoles(ctx, p)
	if err != nil {
		return Role{}, nil, err
	}
	i := slices.IndexFunc(roles, func(r Role) bool { return r.Name == name })
	if i < 0 {
		return Role{}, nil, s.deny(ctx, p, "role.view", "role", name, ErrNotFound)
	}
	return roles[i], roles, nil
}

// CustomerShares lists the shares of a customer for the page that manages
// them: it needs the share permission as well as full reach of the
// customer (ListShares).
func (s *Service) CustomerShares(ctx context.Context, p access.Principal, customerID string) ([]Share, error) {
	if err := access.Require(p, access.Share); err != nil {
		return nil, s.deny(ctx, p, "share.list", "customer", customerID, err)
	}
	if !validID(customerID) {
		return nil, s.deny(ctx, p, "share.list", "customer", customerID, ErrNotFound)
	}
	return s.ListShares(ctx, p, customerID)
}

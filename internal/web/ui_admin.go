package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/store"
)

// The administration pages: users (create, change role, disable, unlock,
// reset the password, offboard, end sessions), roles (permissions, quotas
// and the field-policy matrix), temporary grants, and the shares of one
// customer. They call the same services as the JSON API (handlers.go,
// handlers_access.go), which check the permissions, demand a recent sign-in
// for what acts on other people's access, and audit every read, change and
// refusal.

// uiAdminRoutes are the pages of this area (see ui_app.go).
func (s *Server) uiAdminRoutes() []UIRoute {
	return []UIRoute{
		{Method: "GET", Pattern: "/admin/users", Handler: s.uiAdminUsers},
		{Method: "POST", Pattern: "/admin/users", Handler: s.uiAdminCreateUser},
		{Method: "GET", Pattern: "/admin/users/{id}", Handler: s.uiAdminUser},
		{Method: "POST", Pattern: "/admin/users/{id}/role", Handler: s.uiAdminUserRole},
		{Method: "POST", Pattern: "/admin/users/{id}/disable", Handler: s.uiAdminUserDisable},
		{Method: "POST", Pattern: "/admin/users/{id}/enable", Handler: s.uiAdminUserEnable},
		{Method: "POST", Pattern: "/admin/users/{id}/unlock", Handler: s.uiAdminUserUnlock},
		{Method: "POST", Pattern: "/admin/users/{id}/reset-password", Handler: s.uiAdminUserReset},
		{Method: "POST", Pattern: "/admin/users/{id}/offboard", Handler: s.uiAdminUserOffboard},
		{Method: "POST", Pattern: "/admin/users/{id}/revoke-sessions", Handler: s.uiAdminUserSessions},
		{Method: "GET", Pattern: "/admin/roles", Handler: s.uiAdminRoles},
		{Method: "POST", Pattern: "/admin/roles", Handler: s.uiAdminCreateRole},
		{Method: "GET", Pattern: "/admin/roles/{name}", Handler: s.uiAdminRole},
		{Method: "POST", Pattern: "/admin/roles/{name}", Handler: s.uiAdminUpdateRole},
		{Method: "POST", Pattern: "/admin/roles/{name}/delete", Handler: s.uiAdminDeleteRole},
		{Method: "POST", Pattern: "/admin/roles/{name}/policy", Handler: s.uiAdminRolePolicy},
		{Method: "GET", Pattern: "/admin/grants", Handler: s.uiAdminGrants},
		{Method: "POST", Pattern: "/admin/grants", Handler: s.uiAdminCreateGrant},
		{Method: "POST", Pattern: "/admin/grants/{id}/revoke", Handler: s.uiAdminRevokeGrant},
		{Method: "GET", Pattern: "/customers/{id}/shares", Handler: s.uiShares},
		{Method: "POST", Pattern: "/customers/{id}/shares", Handler: s.uiCreateShare},
		{Method: "POST", Pattern: "/customers/{id}/shares/{sid}/revoke", Handler: s.uiRevokeShare},
	}
}

// adminDateTime is the value format of <input type="datetime-local">.
const adminDateTime = "2006-01-02T15:04"

// adminValidID reports whether id is a well-formed id (as pathID checks).
func adminValidID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// adminIDPath is base/id for the language switch, or "" for an id that names
// nothing (the page will say not found).
func adminIDPath(base, id string) string {
	if !adminValidID(id) {
		return ""
	}
	return base + id
}

// adminNotice shows the notice of a finished action (?done=...) when it
// is one of the page's own.
func adminNotice(pg *page, r *http.Request, allowed ...string) {
	if d := r.URL.Query().Get("done"); slices.Contains(allowed, d) {
		pg.Notice = pg.msg(fmt.Sprintf("admin.done.%s", d))
	}
}

// adminMessages translate the service's messages that the shared
// catalogue does not know; the first fragment found wins.
var adminMessages = []struct{ fragment, key string }{
	{"must be between 0 and", "admin.valid.range"},
	{"no such role", "admin.valid.no_role"},
	{"cannot share with yourself", "admin.valid.self_share"},
	{"at most 90 days", "admin.valid.grant_expiry"},
	{"must be in the future", "admin.valid.future"},
	{"not both", "admin.valid.offboard_to"},
	{"successor must be someone else", "admin.valid.successor"},
	{"cannot offboard yourself", "admin.valid.offboard_self"},
	{"a-z, 0-9 and _", "admin.valid.role_name"},
	{"one known permission", "admin.valid.permission"},
	{"hidden, masked, read or edit", "admin.valid.level"},
	{"cycle", "admin.valid.parent_cycle"},
	{"exactly one of user_id and role", "admin.valid.share_to"},
}

// adminErrors translates a validation error by field.
func adminErrors(pg *page, ve *crm.ValidationError) map[string]string {
	out := fieldErrors(pg, ve)
	for _, f := range ve.Fields {
		for _, m := range adminMessages {
			if strings.Contains(f.Message, m.fragment) {
				out[f.Field] = pg.msg(m.key)
				break
			}
		}
	}
	return out
}

// adminFormFailed prepares a form to be shown again with its errors; it reports
// false when err is not a validation error.
func adminFormFailed(pg *page, err error) bool {
	var ve *crm.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	pg.Errors = adminErrors(pg, ve)
	pg.Error = pg.msg("admin.form_errors")
	return true
}

// adminFieldFailed is adminFormFailed for an error the page found itself.
func adminFieldFailed(pg *page, field, key string) {
	if pg.Errors == nil {
		pg.Errors = map[string]string{}
	}
	pg.Errors[field] = pg.msg(key)
	pg.Error = pg.msg("admin.form_errors")
}

// adminRoleOption is a role in a list or a select.
type adminRoleOption struct {
	Name, Label string
}

// adminRoleLabel is the role's name for people: a shipped role whose label
// nobody changed (its permissions or fields may have been) has its label in
// the catalogue; the others keep their own.
func adminRoleLabel(pg *page, r crm.Role) string {
	key := fmt.Sprintf("admin.role.%s", r.Name)
	shipped := r.Template || slices.ContainsFunc(access.Templates, func(t store.Role) bool { return t.Name == r.Name && t.Label == r.Label })
	if shipped && pg.loc.has(key) {
		return pg.msg(key)
	}
	if r.Label != "" {
		return r.Label
	}
	return r.Name
}

func adminRoleOptions(pg *page, roles []crm.Role) []adminRoleOption {
	out := make([]adminRoleOption, len(roles))
	for i, r := range roles {
		out[i] = adminRoleOption{Name: r.Name, Label: adminRoleLabel(pg, r)}
	}
	return out
}

func adminRoleLabels(pg *page, roles []crm.Role) map[string]string {
	out := make(map[string]string, len(roles))
	for _, r := range roles {
		out[r.Name] = adminRoleLabel(pg, r)
	}
	return out
}

// adminPermLabel is a permission's name for people.
func adminPermLabel(pg *page, perm string) string {
	if key := fmt.Sprintf("admin.perm.%s", perm); pg.loc.has(key) {
		return pg.msg(key)
	}
	return perm
}

// === users ========================================================================

type adminUserForm struct {
	Name, Email, Role string
}

type adminUsersData struct {
	Users    []crm.UserAccount
	Roles    []adminRoleOption
	RoleName map[string]string
	Q        string
	NextHref string
	Form     adminUserForm
	Self     string
}

func (s *Server) uiAdminUsers(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/admin/users", appOpts{active: "users"})
	if !ok {
		return
	}
	adminNotice(pg, r)
	s.showUsers(w, r, pg, p, adminUserForm{Role: "sales"}, http.StatusOK)
}

func (s *Server) showUsers(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, form adminUserForm, status int) {
	ctx := r.Context()
	q := r.URL.Query()
	d := &adminUsersData{Q: strings.TrimSpace(q.Get("q")), Form: form, Self: p.UserID}
	res, err := s.crm.UserAccounts(ctx, p, crm.UserQuery{Q: d.Q, Cursor: q.Get("cursor")})
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	roles, err := s.crm.ListRoles(ctx, p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	d.Users, d.Roles, d.RoleName = res.Items, adminRoleOptions(pg, roles), adminRoleLabels(pg, roles)
	if res.Next != "" {
		v := url.Values{"cursor": {res.Next}}
		if d.Q != "" {
			v.Set("q", d.Q)
		}
		d.NextHref = "/admin/users?" + v.Encode()
	}
	pg.Data = d
	s.render(w, r, status, "admin_users", pg)
}

// adminUserErrors translates internal/auth's refusal of a new user, by field;
// nil when err is something else.
func adminUserErrors(pg *page, err error) map[string]string {
	switch {
	case errors.Is(err, auth.ErrUserExists):
		return map[string]string{"email": pg.msg("admin.valid.email_taken")}
	case !errors.Is(err, auth.ErrInvalid):
		return nil
	}
	msg := strings.TrimPrefix(err.Error(), auth.ErrInvalid.Error()+": ")
	switch {
	case strings.HasPrefix(msg, "email:"):
		return map[string]string{"email": pg.msg("valid.email")}
	case strings.HasPrefix(msg, "name:"):
		return map[string]string{"name": pg.msg("admin.valid.name")}
	case strings.HasPrefix(msg, "password:"):
		return map[string]string{"password": passwordMessage(pg, err)}
	case strings.Contains(msg, "unknown role"):
		return map[string]string{"role": pg.msg("admin.valid.no_role")}
	}
	return map[string]string{"name": pg.msg("valid.other", msg)}
}

// uiAdminCreateUser creates a user as the API does, with the password the
// administrator gives or, when none, a generated one shown once.
func (s *Server) uiAdminCreateUser(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/admin/users", appOpts{active: "users"})
	if !ok {
		return
	}
	ctx := r.Context()
	pg.BackHref = "/admin/users"
	form := adminUserForm{Name: strings.TrimSpace(r.PostForm.Get("name")), Email: strings.TrimSpace(r.PostForm.Get("email")), Role: r.PostForm.Get("role")}
	if err := s.crm.AuthorizeUserAction(ctx, p, crm.ActionUserCreate, ""); err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	password, generated := r.PostForm.Get("password"), false
	if password == "" {
		var err error
		if password, err = auth.GeneratePassword(); err != nil {
			s.uiInternal(w, r, pg, err)
			return
		}
		generated = true
	}
	u, err := s.auth.CreateUser(ctx, eventOf(p), auth.NewUser{Email: form.Email, Name: form.Name, Role: form.Role, Password: password})
	if err == nil {
		err = s.crm.WatchAccountAction(ctx, p, u.ID, "user created")
	}
	if err != nil {
		if errs := adminUserErrors(pg, err); errs != nil {
			pg.Errors, pg.Error = errs, pg.msg("admin.form_errors")
			s.showUsers(w, r, pg, p, form, http.StatusBadRequest)
			return
		}
		s.uiFail(w, r, pg, err)
		return
	}
	if !generated {
		uiRedirect(w, r, "/admin/users/"+u.ID+"?done=created")
		return
	}
	s.showPassword(w, r, pg, u.ID, u.Name, u.Email, password, true)
}

// adminPasswordData is a password shown once: a new user's or a reset.
type adminPasswordData struct {
	UserID, Name, Email, Password string
	Created                       bool
}

func (s *Server) showPassword(w http.ResponseWriter, r *http.Request, pg *page, id, name, email, password string, created bool) {
	pg.Path = "" // switching the language would lose the password
	pg.Data = &adminPasswordData{UserID: id, Name: name, Email: email, Password: password, Created: created}
	s.render(w, r, http.StatusOK, "admin_password", pg)
}

type adminUserData struct {
	User       crm.UserAccount
	RoleLabel  string
	Roles      []adminRoleOption
	Successors []crm.StaffMember
	Self       bool
	To         string // the offboarding form's choice
}

func (s *Server) uiAdminUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg, p, ok := s.appPage(w, r, adminIDPath("/admin/users/", id), appOpts{active: "users"})
	if !ok {
		return
	}
	adminNotice(pg, r, "created", "role", "disabled", "enabled", "unlocked", "sessions")
	if r.URL.Query().Get("done") == "offboarded" {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		pg.Notice = pg.msg("admin.done.offboarded", n)
	}
	s.showUser(w, r, pg, p, id, "", http.StatusOK)
}

func (s *Server) showUser(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, id, to string, status int) {
	ctx := r.Context()
	pg.BackHref = "/admin/users"
	u, err := s.crm.UserAccount(ctx, p, id)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	roles, err := s.crm.ListRoles(ctx, p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	staff, err := s.crm.Staff(ctx, p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	d := &adminUserData{User: u, RoleLabel: adminRoleLabels(pg, roles)[u.Role], Roles: adminRoleOptions(pg, roles), Self: u.ID == p.UserID, To: to}
	if d.RoleLabel == "" {
		d.RoleLabel = u.Role
	}
	for _, m := range staff {
		if m.Active && m.ID != u.ID {
			d.Successors = append(d.Successors, m)
		}
	}
	pg.Data = d
	s.render(w, r, status, "admin_user", pg)
}

// userAction runs one action on the account {id} and goes back to its
// page with done ("": the action answered itself); a validation error shows
// the page again.
func (s *Server) userAction(w http.ResponseWriter, r *http.Request, done string, act func(pg *page, p access.Principal, id string) error) {
	id := r.PathValue("id")
	pg, p, ok := s.appPage(w, r, adminIDPath("/admin/users/", id), appOpts{active: "users"})
	if !ok {
		return
	}
	pg.BackHref = "/admin/users"
	if !adminValidID(id) {
		s.uiErrorPage(w, r, pg, http.StatusNotFound, "error.not_found")
		return
	}
	if err := act(pg, p, id); err != nil {
		if errors.Is(err, errAdminSelfDisable) {
			s.uiErrorPage(w, r, pg, http.StatusConflict, "admin.users.self_disable")
			return
		}
		if adminFormFailed(pg, err) {
			s.showUser(w, r, pg, p, id, r.PostForm.Get("to"), http.StatusBadRequest)
			return
		}
		s.uiFail(w, r, pg, err)
		return
	}
	if done != "" {
		uiRedirect(w, r, "/admin/users/"+id+"?done="+done)
	}
}

// errAdminSelfDisable refuses an administrator's disabling of their own account.
var errAdminSelfDisable = errors.New("you cannot disable yourself")

func (s *Server) uiAdminUserRole(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, "role", func(pg *page, p access.Principal, id string) error {
		return s.crm.SetUserRole(r.Context(), p, id, r.PostForm.Get("role"))
	})
}

func (s *Server) setUserDisabled(w http.ResponseWriter, r *http.Request, disabled bool) {
	action, done := crm.ActionUserEnable, "enabled"
	if disabled {
		action, done = crm.ActionUserDisable, "disabled"
	}
	s.userAction(w, r, done, func(pg *page, p access.Principal, id string) error {
		if err := s.crm.AuthorizeUserAction(r.Context(), p, action, id); err != nil {
			return err
		}
		if disabled && id == p.UserID {
			return errAdminSelfDisable
		}
		return s.auth.SetDisabled(r.Context(), eventOf(p), id, disabled)
	})
}

func (s *Server) uiAdminUserDisable(w http.ResponseWriter, r *http.Request) {
	s.setUserDisabled(w, r, true)
}

func (s *Server) uiAdminUserEnable(w http.ResponseWriter, r *http.Request) {
	s.setUserDisabled(w, r, false)
}

func (s *Server) uiAdminUserUnlock(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, "unlocked", func(pg *page, p access.Principal, id string) error {
		if err := s.crm.AuthorizeUserAction(r.Context(), p, crm.ActionUserUnlock, id); err != nil {
			return err
		}
		return s.auth.Unlock(r.Context(), eventOf(p), id)
	})
}

func (s *Server) uiAdminUserSessions(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, "sessions", func(pg *page, p access.Principal, id string) error {
		if err := s.crm.AuthorizeUserAction(r.Context(), p, crm.ActionUserSessionsEnd, id); err != nil {
			return err
		}
		return s.auth.RevokeAllSessions(r.Context(), eventOf(p), id)
	})
}

// uiAdminUserReset sets a generated temporary password, shown once; the
// user must change it at the next sign-in, and every session of theirs ends.
func (s *Server) uiAdminUserReset(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, "", func(pg *page, p access.Principal, id string) error {
		ctx := r.Context()
		if err := s.crm.AuthorizeUserAction(ctx, p, crm.ActionUserPasswordReset, id); err != nil {
			return err
		}
		u, err := s.auth.GetUser(ctx, id)
		if err != nil {
			return err
		}
		password, err := auth.GeneratePassword()
		if err != nil {
			return err
		}
		err = s.auth.ResetPassword(ctx, eventOf(p), id, password)
		if err == nil {
			err = s.crm.WatchAccountAction(ctx, p, id, "password reset")
		}
		if err != nil {
			return err
		}
		s.showPassword(w, r, pg, u.ID, u.Name, u.Email, password, false)
		return nil
	})
}

// uiAdminUserOffboard hands a departing user's customers to a successor or
// the pool, disables the account and ends its access (crm.Offboard).
func (s *Server) uiAdminUserOffboard(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, "", func(pg *page, p access.Principal, id string) error {
		to := r.PostForm.Get("to")
		successor, toPool := to, to == "pool"
		if toPool {
			successor = ""
		}
		rep, err := s.crm.Offboard(r.Context(), p, id, successor, toPool)
		if err != nil {
			return err
		}
		uiRedirect(w, r, "/admin/users/"+id+"?done=offboarded&n="+strconv.Itoa(rep.Customers))
		return nil
	})
}

// === roles ========================================================================

type adminRoleRow struct {
	Role   crm.Role
	Label  string
	Parent string // the parent's label
	Perms  int
}

type adminRoleCreateForm struct {
	Name, From string
}

type adminRolesData struct {
	Roles []adminRoleRow
	Form  adminRoleCreateForm
}

func (s *Server) uiAdminRoles(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/admin/roles", appOpts{active: "roles"})
	if !ok {
		return
	}
	adminNotice(pg, r, "deleted")
	s.showRoles(w, r, pg, p, adminRoleCreateForm{}, http.StatusOK)
}

func (s *Server) showRoles(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, form adminRoleCreateForm, status int) {
	roles, err := s.crm.AdminRoles(r.Context(), p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	labels := adminRoleLabels(pg, roles)
	d := &adminRolesData{Form: form}
	for _, ro := range roles {
		d.Roles = append(d.Roles, adminRoleRow{Role: ro, Label: labels[ro.Name], Parent: labels[ro.Parent], Perms: len(ro.Permissions)})
	}
	pg.Data = d
	s.render(w, r, status, "admin_roles", pg)
}

func (s *Server) uiAdminCreateRole(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/admin/roles", appOpts{active: "roles"})
	if !ok {
		return
	}
	pg.BackHref = "/admin/roles"
	form := adminRoleCreateForm{Name: strings.TrimSpace(r.PostForm.Get("name")), From: r.PostForm.Get("from")}
	role, err := s.crm.CreateRole(r.Context(), p, form.Name, form.From, crm.RoleInput{})
	if err != nil {
		if adminFormFailed(pg, err) {
			s.showRoles(w, r, pg, p, form, http.StatusBadRequest)
			return
		}
		if errors.Is(err, crm.ErrConflict) {
			adminFieldFailed(pg, "name", "admin.valid.role_taken")
			s.showRoles(w, r, pg, p, form, http.StatusConflict)
			return
		}
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/admin/roles/"+url.PathEscape(role.Name)+"?done=role_created")
}

// adminPermOption is a permission's checkbox.
type adminPermOption struct {
	Name, Label string
	Checked     bool
}

// adminPermGroup is a fieldset of permissions.
type adminPermGroup struct {
	Key   string // catalogue key of the legend
	Perms []adminPermOption
}

// adminMatrixRow is one governed field of the field-policy matrix.
type adminMatrixRow struct {
	Field, Label, Level string
}

type adminRoleForm struct {
	Label, Parent                                        string
	SeeAll                                               bool
	RevealQuota, ClaimDaily, MaxOwned, ClaimCooldownDays string
}

type adminRoleData struct {
	Role    crm.Role
	Label   string
	Form    adminRoleForm
	Parents []adminRoleOption
	Groups  []adminPermGroup
	Matrix  []adminMatrixRow
	Levels  []string
	Quotas  []adminQuotaField
	Below   []string // labels of the roles under this one
	// The role's login policy: shown to holders of manage_users or
	// manage_policies, changed by the latter.
	Policy     *adminPolicyForm
	PolicyEdit bool
}

type adminPolicyForm struct {
	MFARequired        bool
	IPAllowlist, Hours string
}

// adminQuotaField is one of a role's limits.
type adminQuotaField struct {
	Name, Value string
	Max         int
}

// adminLevels are the field levels, weakest first (the matrix's columns).
var adminLevels = []string{access.Hidden.String(), access.Masked.String(), access.Readable.String(), access.Editable.String()}

func (s *Server) uiAdminRole(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	pg, p, ok := s.appPage(w, r, "/admin/roles/"+url.PathEscape(name), appOpts{active: "roles"})
	if !ok {
		return
	}
	adminNotice(pg, r, "role_created", "role_saved", "policy_saved")
	s.showRole(w, r, pg, p, name, nil, http.StatusOK)
}

// showRole shows the role editor: the stored role, or what was posted when
// posted is set (a form with errors).
func (s *Server) showRole(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, name string, posted url.Values, status int) {
	s.showRoleWith(w, r, pg, p, name, posted, nil, status)
}

// showRoleWith is showRole with a posted login policy (a form with errors).
func (s *Server) showRoleWith(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, name string, posted url.Values, policy *adminPolicyForm, status int) {
	pg.BackHref = "/admin/roles"
	role, roles, err := s.crm.AdminRole(r.Context(), p, name)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	labels := adminRoleLabels(pg, roles)
	d := &adminRoleData{Role: role, Label: labels[role.Name], Levels: adminLevels}
	for _, b := range role.Below {
		d.Below = append(d.Below, labels[b])
	}
	for _, ro := range roles {
		if ro.Name != role.Name && !slices.Contains(role.Below, ro.Name) {
			d.Parents = append(d.Parents, adminRoleOption{Name: ro.Name, Label: labels[ro.Name]})
		}
	}
	perms := make([]string, len(role.Permissions))
	for i, pm := range role.Permissions {
		perms[i] = string(pm)
	}
	d.Form = adminRoleForm{Label: role.Label, Parent: role.Parent, SeeAll: role.SeeAll, RevealQuota: strconv.Itoa(role.RevealQuota),
		ClaimDaily: strconv.Itoa(role.ClaimDaily), MaxOwned: strconv.Itoa(role.MaxOwned), ClaimCooldownDays: strconv.Itoa(role.ClaimCooldownDays)}
	fields := map[string]string{}
	for f, l := range role.Fields {
		fields[f] = l.String()
	}
	if posted != nil {
		d.Form = adminRoleForm{Label: posted.Get("label"), Parent: posted.Get("parent"), SeeAll: posted.Get("see_all") != "",
			RevealQuota: posted.Get("reveal_quota"), ClaimDaily: posted.Get("claim_daily"), MaxOwned: posted.Get("max_owned"),
			ClaimCooldownDays: posted.Get("claim_cooldown_days")}
		perms = posted["perm"]
		for _, f := range access.Fields {
			fields[f] = posted.Get("fields." + f)
		}
	}
	for _, g := range []struct {
		key   string
		perms []access.Permission
	}{
		{"admin.perm_group.data", access.DataPermissions},
		{"admin.perm_group.admin", access.AdminPermissions},
		{"admin.perm_group.security", access.SecurityPermissions},
		{"admin.perm_group.other", adminOtherPermissions()},
	} {
		grp := adminPermGroup{Key: g.key}
		for _, pm := range g.perms {
			grp.Perms = append(grp.Perms, adminPermOption{Name: string(pm), Label: adminPermLabel(pg, string(pm)), Checked: slices.Contains(perms, string(pm))})
		}
		d.Groups = append(d.Groups, grp)
	}
	d.Quotas = []adminQuotaField{{"reveal_quota", d.Form.RevealQuota, 100000}, {"claim_daily", d.Form.ClaimDaily, 100000},
		{"max_owned", d.Form.MaxOwned, 10000000}, {"claim_cooldown_days", d.Form.ClaimCooldownDays, 3650}}
	for _, f := range access.Fields {
		d.Matrix = append(d.Matrix, adminMatrixRow{Field: f, Label: pg.msg("field." + f), Level: adminOr(fields[f], access.Hidden.String())})
	}
	if p.Can(access.ManageUsers) || p.Can(access.ManagePolicies) {
		d.Policy, d.PolicyEdit = policy, p.Can(access.ManagePolicies)
		if d.Policy == nil {
			pol, err := s.auth.RolePolicy(r.Context(), name)
			if err != nil {
				s.uiFail(w, r, pg, err)
				return
			}
			d.Policy = &adminPolicyForm{MFARequired: pol.MFARequired, IPAllowlist: strings.Join(strings.Fields(pol.IPAllowlist), "\n"), Hours: pol.LoginHours}
		}
	}
	pg.Data = d
	s.render(w, r, status, "admin_role", pg)
}

func adminOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// adminOtherPermissions are the permissions in no group of their own.
func adminOtherPermissions() []access.Permission {
	var out []access.Permission
	for _, pm := range access.AllPermissions {
		if !slices.Contains(access.DataPermissions, pm) && !slices.Contains(access.AdminPermissions, pm) && !slices.Contains(access.SecurityPermissions, pm) {
			out = append(out, pm)
		}
	}
	return out
}

// uiAdminUpdateRole saves the whole editor: label, parent, see-all,
// permissions, the field policy and the quotas.
func (s *Server) uiAdminUpdateRole(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	pg, p, ok := s.appPage(w, r, "/admin/roles/"+url.PathEscape(name), appOpts{active: "roles"})
	if !ok {
		return
	}
	pg.BackHref = "/admin/roles"
	f := r.PostForm
	label, parent, seeAll := f.Get("label"), f.Get("parent"), f.Get("see_all") != ""
	perms := f["perm"]
	if perms == nil {
		perms = []string{}
	}
	fields := map[string]string{}
	for _, fl := range access.Fields {
		fields[fl] = adminOr(f.Get("fields."+fl), access.Hidden.String())
	}
	in := crm.RoleInput{Label: &label, Parent: &parent, SeeAll: &seeAll, Permissions: &perms, Fields: &fields}
	for _, q := range []struct {
		field string
		dst   **int
	}{{"reveal_quota", &in.RevealQuota}, {"claim_daily", &in.ClaimDaily}, {"max_owned", &in.MaxOwned}, {"claim_cooldown_days", &in.ClaimCooldownDays}} {
		n, err := strconv.Atoi(strings.TrimSpace(f.Get(q.field)))
		if err != nil {
			adminFieldFailed(pg, q.field, "admin.valid.number")
			continue
		}
		*q.dst = &n
	}
	if pg.Errors != nil {
		s.showRole(w, r, pg, p, name, f, http.StatusBadRequest)
		return
	}
	if _, err := s.crm.UpdateRole(r.Context(), p, name, in); err != nil {
		if adminFormFailed(pg, err) {
			s.showRole(w, r, pg, p, name, f, http.StatusBadRequest)
			return
		}
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/admin/roles/"+url.PathEscape(name)+"?done=role_saved")
}

// uiAdminRolePolicy changes a role's login policy: second factor
// required, address allowlist, login hours (as PUT /api/v1/roles/{name}/policy).
func (s *Server) uiAdminRolePolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	pg, p, ok := s.appPage(w, r, "/admin/roles/"+url.PathEscape(name), appOpts{active: "roles"})
	if !ok {
		return
	}
	ctx := r.Context()
	pg.BackHref = "/admin/roles/" + url.PathEscape(name)
	f := r.PostForm
	form := &adminPolicyForm{MFARequired: f.Get("mfa_required") != "", IPAllowlist: f.Get("ip_allowlist"), Hours: strings.TrimSpace(f.Get("login_hours"))}
	if err := s.crm.AuthorizeRolePolicy(ctx, p, name); err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	pol := store.RolePolicy{Role: name, MFARequired: form.MFARequired, IPAllowlist: strings.Join(strings.FieldsFunc(form.IPAllowlist, func(c rune) bool {
		return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t'
	}), " "), LoginHours: form.Hours}
	if err := s.auth.SetRolePolicy(ctx, eventOf(p), pol); err != nil {
		if errors.Is(err, auth.ErrInvalid) {
			if strings.Contains(err.Error(), "ip allowlist") {
				adminFieldFailed(pg, "ip_allowlist", "admin.valid.ip_allowlist")
			} else {
				adminFieldFailed(pg, "login_hours", "admin.valid.login_hours")
			}
			s.showRoleWith(w, r, pg, p, name, nil, form, http.StatusBadRequest)
			return
		}
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/admin/roles/"+url.PathEscape(name)+"?done=policy_saved")
}

// uiAdminDeleteRole deletes a role nobody holds and no role descends from.
func (s *Server) uiAdminDeleteRole(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	pg, p, ok := s.appPage(w, r, "/admin/roles/"+url.PathEscape(name), appOpts{active: "roles"})
	if !ok {
		return
	}
	pg.BackHref = "/admin/roles/" + url.PathEscape(name)
	if err := s.crm.DeleteRole(r.Context(), p, name); err != nil {
		if errors.Is(err, crm.ErrConflict) {
			s.uiErrorPage(w, r, pg, http.StatusConflict, "admin.roles.in_use")
			return
		}
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/admin/roles?done=deleted")
}

// === temporary grants =================================================================

type adminGrantRow struct {
	Grant      crm.Grant
	User       string
	Email      string
	Permission string
	By         string
}

type adminGrantForm struct {
	UserID, Permission, Reason, Expires string
}

type adminGrantsData struct {
	Grants []adminGrantRow
	Users  []crm.StaffMember
	Perms  []adminPermOption
	Form   adminGrantForm
	All    bool // ended grants too
	MaxDay int
}

func (s *Server) uiAdminGrants(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/admin/grants", appOpts{active: "grants"})
	if !ok {
		return
	}
	adminNotice(pg, r, "granted", "revoked")
	expires := s.now().In(pg.location()).Add(24 * time.Hour).Format(adminDateTime)
	s.showGrants(w, r, pg, p, adminGrantForm{Expires: expires}, http.StatusOK)
}

func (s *Server) showGrants(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, form adminGrantForm, status int) {
	ctx := r.Context()
	pg.BackHref = "/admin/grants"
	gs, err := s.crm.AdminGrants(ctx, p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	staff, err := s.crm.Staff(ctx, p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	byID := map[string]crm.StaffMember{}
	d := &adminGrantsData{Form: form, All: r.URL.Query().Get("all") == "1", MaxDay: int(crm.MaxGrant / (24 * time.Hour))}
	for _, m := range staff {
		byID[m.ID] = m
		if m.Active {
			d.Users = append(d.Users, m)
		}
	}
	for _, g := range gs {
		if !g.Active && !d.All {
			continue
		}
		u := byID[g.UserID]
		d.Grants = append(d.Grants, adminGrantRow{Grant: g, User: adminOr(u.Name, g.UserID), Email: u.Email, Permission: adminPermLabel(pg, g.Permission),
			By: adminOr(byID[g.ApprovedBy].Name, g.ApprovedBy)})
	}
	for _, pm := range access.AllPermissions {
		d.Perms = append(d.Perms, adminPermOption{Name: string(pm), Label: adminPermLabel(pg, string(pm)), Checked: string(pm) == form.Permission})
	}
	pg.Data = d
	s.render(w, r, status, "admin_grants", pg)
}

func (s *Server) uiAdminCreateGrant(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/admin/grants", appOpts{active: "grants"})
	if !ok {
		return
	}
	f := r.PostForm
	form := adminGrantForm{UserID: f.Get("user_id"), Permission: f.Get("permission"), Reason: f.Get("reason"), Expires: strings.TrimSpace(f.Get("expires_at"))}
	var expires time.Time
	switch t, err := time.ParseInLocation(adminDateTime, form.Expires, pg.location()); {
	case form.Expires == "":
		adminFieldFailed(pg, "expires_at", "valid.required")
	case err != nil:
		adminFieldFailed(pg, "expires_at", "valid.date")
	default:
		expires = t
	}
	if pg.Errors == nil {
		_, err := s.crm.CreateGrant(r.Context(), p, form.UserID, form.Permission, form.Reason, expires)
		if err == nil {
			uiRedirect(w, r, "/admin/grants?done=granted")
			return
		}
		if !adminFormFailed(pg, err) {
			s.uiFail(w, r, pg, err)
			return
		}
	}
	s.showGrants(w, r, pg, p, form, http.StatusBadRequest)
}

func (s *Server) uiAdminRevokeGrant(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/admin/grants", appOpts{active: "grants"})
	if !ok {
		return
	}
	pg.BackHref = "/admin/grants"
	if err := s.crm.RevokeGrant(r.Context(), p, r.PathValue("id")); err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/admin/grants?done=revoked")
}

// === the shares of a customer ===========================================================

type adminShareRow struct {
	Share crm.Share
	Name  string // the user's, or the role's label
	Email string
	Role  bool // shared with a role
	By    string
}

type adminShareForm struct {
	UserID, Level, Expires string
}

type adminSharesData struct {
	Customer crm.Customer
	Shares   []adminShareRow
	Users    []crm.StaffMember
	Form     adminShareForm
}

func (s *Server) uiShares(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg, p, ok := s.appPage(w, r, adminIDPath("/customers/", id)+"/shares", appOpts{active: "customers", customerData: true})
	if !ok {
		return
	}
	adminNotice(pg, r, "shared", "unshared")
	s.showShares(w, r, pg, p, id, adminShareForm{Level: "read"}, http.StatusOK)
}

func (s *Server) showShares(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, id string, form adminShareForm, status int) {
	ctx := r.Context()
	pg.BackHref = "/customers"
	shares, err := s.crm.CustomerShares(ctx, p, id)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	c, err := s.crm.GetCustomer(ctx, p, id)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	staff, err := s.crm.Staff(ctx, p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	roles, err := s.crm.ListRoles(ctx, p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	labels := adminRoleLabels(pg, roles)
	byID := map[string]crm.StaffMember{}
	d := &adminSharesData{Customer: c, Form: form}
	for _, m := range staff {
		byID[m.ID] = m
		if m.Active && m.ID != p.UserID {
			d.Users = append(d.Users, m)
		}
	}
	for _, sh := range shares {
		row := adminShareRow{Share: sh}
		if sh.Role != "" {
			row.Name, row.Role = adminOr(labels[sh.Role], sh.Role), true
		} else {
			row.Name, row.Email = adminOr(byID[sh.UserID].Name, sh.UserID), byID[sh.UserID].Email
		}
		by := strings.TrimPrefix(sh.GrantedBy, "user:")
		row.By = adminOr(byID[by].Name, sh.GrantedBy)
		d.Shares = append(d.Shares, row)
	}
	pg.Data = d
	s.render(w, r, status, "admin_shares", pg)
}

func (s *Server) uiCreateShare(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg, p, ok := s.appPage(w, r, adminIDPath("/customers/", id)+"/shares", appOpts{active: "customers", customerData: true})
	if !ok {
		return
	}
	pg.BackHref = "/customers"
	if !adminValidID(id) {
		s.uiErrorPage(w, r, pg, http.StatusNotFound, "error.not_found")
		return
	}
	f := r.PostForm
	form := adminShareForm{UserID: f.Get("user_id"), Level: f.Get("level"), Expires: strings.TrimSpace(f.Get("expires_at"))}
	in := crm.ShareInput{UserID: form.UserID, Level: form.Level}
	if form.UserID == "" {
		adminFieldFailed(pg, "user_id", "valid.required")
	}
	if form.Expires != "" {
		t, err := time.ParseInLocation(adminDateTime, form.Expires, pg.location())
		if err != nil {
			adminFieldFailed(pg, "expires_at", "valid.date")
		}
		in.ExpiresAt = &t
	}
	if pg.Errors == nil {
		_, err := s.crm.ShareCustomer(r.Context(), p, id, in)
		if err == nil {
			uiRedirect(w, r, "/customers/"+id+"/shares?done=shared")
			return
		}
		if !adminFormFailed(pg, err) {
			s.uiFail(w, r, pg, err)
			return
		}
	}
	s.showShares(w, r, pg, p, id, form, http.StatusBadRequest)
}

// uiRevokeShare ends a share of the customer {id}: a share of another
// customer is not found here.
func (s *Server) uiRevokeShare(w http.ResponseWriter, r *http.Request) {
	id, sid := r.PathValue("id"), r.PathValue("sid")
	pg, p, ok := s.appPage(w, r, adminIDPath("/customers/", id)+"/shares", appOpts{active: "customers", customerData: true})
	if !ok {
		return
	}
	pg.BackHref = "/customers"
	ctx := r.Context()
	shares, err := s.crm.CustomerShares(ctx, p, id)
	if err == nil && !slices.ContainsFunc(shares, func(sh crm.Share) bool { return sh.ID == sid }) {
		err = crm.ErrNotFound
	}
	if err == nil {
		err = s.crm.RevokeShare(ctx, p, sid)
	}
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/customers/"+id+"/shares?done=unshared")
}

package web

import (
	"context"
	"net/http"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/doctor"
)

// requirePerm checks a permission and audits a refusal.
func (s *Server) requirePerm(w http.ResponseWriter, r *http.Request, p access.Principal, perm access.Permission, action, objType, objID string) bool {
	err := access.Require(p, perm)
	if err == nil {
		return true
	}
	ev := eventOf(p)
	ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome, ev.Reason = action, objType, objID, audit.Denied, "permission"
	if aerr := audit.RecordAlone(r.Context(), s.db, s.now(), ev); aerr != nil {
		s.writeError(w, r, aerr)
		return false
	}
	s.writeError(w, r, err)
	return false
}

func (s *Server) countCustomers(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	lq, ok := s.listQuery(w, r)
	if !ok {
		return
	}
	if lq.Cursor != "" || lq.Limit != 0 {
		writeProblem(w, r, http.StatusBadRequest, "count takes no cursor or limit", nil)
		return
	}
	n, err := s.crm.CountCustomers(r.Context(), p, lq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"count": n})
}

type revealIn struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (s *Server) revealField(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	var in revealIn
	if !decodeJSON(w, r, &in) {
		return
	}
	out, err := s.crm.RevealField(r.Context(), p, id, in.Field, in.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) claimCustomer(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	c, err := s.crm.ClaimCustomer(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	setETag(w, c.Version)
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) releaseCustomer(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.remove(w, r, func(ctx context.Context, id string) error { return s.crm.ReleaseCustomer(ctx, p, id) })
}

type shareIn struct {
	UserID    string     `json:"user_id"`
	Role      string     `json:"role"`
	Level     string     `json:"level"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func (s *Server) createShare(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	var in shareIn
	if !decodeJSON(w, r, &in) {
		return
	}
	sh, err := s.crm.ShareCustomer(r.Context(), p, id, crm.ShareInput{UserID: in.UserID, Role: in.Role, Level: in.Level, ExpiresAt: in.ExpiresAt})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sh)
}

func (s *Server) listShares(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	shares, err := s.crm.ListShares(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[crm.Share]{Items: shares})
}

func (s *Server) revokeShare(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.remove(w, r, func(ctx context.Context, id string) error { return s.crm.RevokeShare(ctx, p, id) })
}

// --- roles ---------------------------------------------------------------------

type roleIn struct {
	Name              string             `json:"name"`
	From              string             `json:"from"`
	Label             *string            `json:"label"`
	Parent            *string            `json:"parent"`
	SeeAll            *bool              `json:"see_all"`
	Permissions       *[]string          `json:"permissions"`
	Fields            *map[string]string `json:"fields"`
	RevealQuota       *int               `json:"reveal_quota"`
	ClaimDaily        *int               `json:"claim_daily"`
	MaxOwned          *int               `json:"max_owned"`
	ClaimCooldownDays *int               `json:"claim_cooldown_days"`
}

func (in roleIn) input() crm.RoleInput {
	return crm.RoleInput{Label: in.Label, Parent: in.Parent, SeeAll: in.SeeAll, Permissions: in.Permissions, Fields: in.Fields,
		RevealQuota: in.RevealQuota, ClaimDaily: in.ClaimDaily, MaxOwned: in.MaxOwned, ClaimCooldownDays: in.ClaimCooldownDays}
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	roles, err := s.crm.ListRoles(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[crm.Role]{Items: roles})
}

func (s *Server) getRole(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	role, err := s.crm.GetRole(r.Context(), p, r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, role)
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in roleIn
	if !decodeJSON(w, r, &in) {
		return
	}
	role, err := s.crm.CreateRole(r.Context(), p, in.Name, in.From, in.input())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/roles/"+role.Name)
	writeJSON(w, http.StatusCreated, role)
}

func (s *Server) updateRole(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in roleIn
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Name != "" || in.From != "" {
		writeProblem(w, r, http.StatusUnprocessableEntity, "a role's name cannot change and from applies only on creation", nil)
		return
	}
	role, err := s.crm.UpdateRole(r.Context(), p, r.PathValue("name"), in.input())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, role)
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	if err := s.crm.DeleteRole(r.Context(), p, r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- users: role change and departure -------------------------------------------

type userPatch struct {
	Role *string `json:"role"`
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	uid := pathID(w, r)
	if uid == "" || !s.requirePerm(w, r, p, access.ManageUsers, "user.update", "user", uid) {
		return
	}
	var in userPatch
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Role != nil {
		if err := s.crm.SetUserRole(r.Context(), p, uid, *in.Role); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	u, err := s.auth.GetUser(r.Context(), uid)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

type offboardIn struct {
	To     string `json:"to"`
	ToPool bool   `json:"to_pool"`
}

func (s *Server) offboardUser(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	uid := pathID(w, r)
	if uid == "" {
		return
	}
	var in offboardIn
	if !decodeJSON(w, r, &in) {
		return
	}
	rep, err := s.crm.Offboard(r.Context(), p, uid, in.To, in.ToPool)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// --- grants, settings, alerts, posture ---------------------------------------------

type grantIn struct {
	UserID     string    `json:"user_id"`
	Permission string    `json:"permission"`
	Reason     string    `json:"reason"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (s *Server) createGrant(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in grantIn
	if !decodeJSON(w, r, &in) {
		return
	}
	g, err := s.crm.CreateGrant(r.Context(), p, in.UserID, in.Permission, in.Reason, in.ExpiresAt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, g)
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	gs, err := s.crm.ListGrants(r.Context(), p, r.URL.Query().Get("user_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[crm.Grant]{Items: gs})
}

func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.remove(w, r, func(ctx context.Context, id string) error { return s.crm.RevokeGrant(ctx, p, id) })
}

func (s *Server) listSettings(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	st, err := s.crm.Settings(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[crm.Setting]{Items: st})
}

type settingIn struct {
	Value string `json:"value"`
}

func (s *Server) putSetting(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in settingIn
	if !decodeJSON(w, r, &in) {
		return
	}
	st, err := s.crm.SetSetting(r.Context(), p, r.PathValue("key"), in.Value)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) posture(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	if !p.Can(access.ManagePolicies) && !s.requirePerm(w, r, p, access.ManageConfig, "posture.view", "posture", "") {
		return
	}
	findings, err := doctor.Check(r.Context(), s.db)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[doctor.Finding]{Items: findings})
}

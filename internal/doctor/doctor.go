// Package doctor checks Custos's security posture: settings and policies
// that leave customer data more exposed than they need to. It reads and
// reports; it never changes anything.
package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// Finding is one posture finding.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"` // info, low, medium, high
	Status   string `json:"status"`   // ok or warn
	Summary  string `json:"summary"`
	Fix      string `json:"fix,omitempty"`
}

// Check runs the posture checks.
func Check(ctx context.Context, db *store.DB) ([]Finding, error) {
	var out []Finding
	err := db.Read(ctx, func(tx *store.Tx) error {
		st, err := tx.Settings(ctx)
		if err != nil {
			return err
		}
		m := map[string]string{}
		for k, v := range st {
			m[k] = v.Value
		}
		vals := settings.New(m, nil)
		roles, err := tx.Roles(ctx)
		if err != nil {
			return err
		}
		users, err := tx.Users(ctx)
		if err != nil {
			return err
		}
		out = append(out, separation(vals))
		out = append(out, adminMFA(ctx, tx, roles)...)
		out = append(out, adminCount(roles, users))
		return nil
	})
	return out, err
}

func separation(vals settings.Values) Finding {
	f := Finding{ID: "strict_separation", Severity: "medium", Status: "ok",
		Summary: "strict separation is on: administrators manage users and configuration without reading customer data"}
	if !vals.Bool(settings.StrictSeparation) {
		f.Status = "warn"
		f.Summary = "strict separation is off: administrators can read customer data (MLPS 2.0 level 3 expects separated duties)"
		f.Fix = "custos config set --data DIR strict_separation on (as a security officer)"
	}
	return f
}

// adminMFA flags roles holding administrator or security duties without a
// required second factor.
func adminMFA(ctx context.Context, tx *store.Tx, roles []store.Role) []Finding {
	var weak []string
	for _, r := range roles {
		spec, err := access.ParseRole(r)
		if err != nil {
			continue
		}
		duties := slices.ContainsFunc(spec.Permissions, func(p access.Permission) bool {
			return slices.Contains(access.AdminPermissions, p) || slices.Contains(access.SecurityPermissions, p) || p == access.ReadAudit || p == access.Erase
		})
		if !duties && !r.SeeAll {
			continue
		}
		pol, err := tx.GetRolePolicy(ctx, r.Name)
		if err == nil && !pol.MFARequired {
			weak = append(weak, r.Name)
		}
	}
	f := Finding{ID: "privileged_mfa", Severity: "high", Status: "ok", Summary: "every privileged or see-all role requires a second factor"}
	if len(weak) > 0 {
		f.Status = "warn"
		f.Summary = "privileged or see-all roles without a required second factor: " + strings.Join(weak, ", ")
		f.Fix = "PUT /api/v1/roles/{name}/policy with {\"mfa_required\": true}"
	}
	return []Finding{f}
}

func adminCount(roles []store.Role, users []store.User) Finding {
	admin := map[string]bool{}
	for _, r := range roles {
		spec, err := access.ParseRole(r)
		if err == nil && slices.ContainsFunc(spec.Permissions, func(p access.Permission) bool { return slices.Contains(access.AdminPermissions, p) }) {
			admin[r.Name] = true
		}
	}
	n := 0
	for _, u := range users {
		if !u.Disabled && admin[u.Role] {
			n++
		}
	}
	f := Finding{ID: "admin_count", Severity: "low", Status: "ok", Summary: fmt.Sprintf("%d active users hold administrator permissions", n)}
	if n > 3 {
		f.Status = "warn"
		f.Fix = "keep administrators few: move others to roles without manage_users, manage_roles or manage_config"
	}
	return f
}

package access

import (
	"slices"

	"github.com/custos/custos/internal/store"
)

// TemplateVersion is the version of the shipped role templates. A template
// role nobody has edited is upgraded to it at start-up.
// Version 3 gives admin the erase permission.
const TemplateVersion = 3

func policy(levels map[string]Level) string { return FormatFieldPolicy(levels) }

func allFields(l Level) map[string]Level {
	m := map[string]Level{}
	for _, f := range Fields {
		m[f] = l
	}
	return m
}

func with(m map[string]Level, kv ...any) map[string]Level {
	m = func() map[string]Level {
		c := map[string]Level{}
		for k, v := range m {
			c[k] = v
		}
		return c
	}()
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(Level)
	}
	return m
}

// Templates are the roles seeded at initialization. The foundation's names
// (admin, manager, sales, support) are kept: manager is the sales manager
// and sales the sales rep.
//
//	admin                      system administrator (sees all unless strict separation)
//	security_officer           policies, alerts, export approval; no customer data
//	auditor                    the audit trail and nothing else
//	sales_director             sees every customer
//	└── manager                sales manager: own and the reps' customers
//	    └── sales              sales rep: own customers, the pool, shares
//	support                    every customer read-only, phone and email masked
//	finance                    every customer read-only, contact fields masked
var Templates = []store.Role{
	{Name: "admin", Label: "Administrator", SeeAll: true, Permissions: FormatPermissions(AllPermissions),
		Fields: policy(allFields(Editable)), RevealQuota: 50},
	{Name: "security_officer", Label: "Security officer",
		Permissions: FormatPermissions(slices.Concat(SecurityPermissions)), Fields: "{}", RevealQuota: 0},
	{Name: "auditor", Label: "Auditor", Permissions: string(ReadAudit), Fields: "{}", RevealQuota: 0},
	{Name: "sales_director", Label: "Sales director", SeeAll: true,
		Permissions: FormatPermissions(DataPermissions), Fields: policy(allFields(Editable)), RevealQuota: 50},
	{Name: "manager", Label: "Sales manager", Parent: "sales_director",
		Permissions: FormatPermissions([]Permission{Create, Read, Update, Delete, Import, Export, Reveal, Claim, Assign, Share}),
		Fields:      policy(with(allFields(Editable), FieldIDNumber, Masked)), RevealQuota: 50},
	{Name: "sales", Label: "Sales rep", Parent: "manager",
		Permissions: FormatPermissions([]Permission{Create, Read, Update, Delete, Reveal, Claim, Share}),
		Fields:      policy(with(allFields(Editable), FieldIDNumber, Masked)), RevealQuota: 50,
		ClaimDaily: 20, MaxOwned: 500, ClaimCooldownDays: 7},
	{Name: "support", Label: "Support", SeeAll: true,
		Permissions: FormatPermissions([]Permission{Create, Read, Update, Reveal}),
		Fields: policy(map[string]Level{FieldName: Readable, FieldPhone: Masked, FieldEmail: Masked, FieldAddress: Masked,
			FieldNotes: Editable, FieldTags: Editable}), RevealQuota: 50},
	{Name: "finance", Label: "Finance", SeeAll: true,
		Permissions: FormatPermissions([]Permission{Read, Reveal}),
		Fields: policy(map[string]Level{FieldName: Readable, FieldPhone: Masked, FieldEmail: Masked, FieldAddress: Readable,
			FieldIDNumber: Masked, FieldTags: Readable}), RevealQuota: 50},
}

func init() {
	for i := range Templates {
		Templates[i].TemplateVersion = TemplateVersion
	}
}

// MFARoles are the roles that require a second factor by default (the
// security officer can change this per role).
var MFARoles = []string{"admin", "security_officer", "auditor", "sales_director", "manager"}

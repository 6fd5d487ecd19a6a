package oidc

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func FuzzIdentityFromClaims(f *testing.F) {
	for _, seed := range []string{
		`{"email":"A@B.C","email_verified":true,"groups":["x","crm-sales"],"amr":["pwd","otp"]}`,
		`{"email_verified":"true","groups":"crm-admin","acr":"phr"}`,
		`{"email_verified":"TRUE","groups":[1,{"a":2},null,"crm-admin"],"amr":"mfa"}`,
		`{"groups":{"crm-sales":true},"amr":[true],"acr":7,"name":["x"]}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	cfg := Config{
		RoleClaim: "groups",
		RoleMap:   map[string]string{"crm-sales": "sales", "crm-admin": "admin"},
	}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		id := identityFromClaims(cfg, claims)
		if id.Role != "" && id.Role != "sales" && id.Role != "admin" {
			t.Fatalf("role %q is not a RoleMap value", id.Role)
		}
		if id.Email != strings.ToLower(id.Email) {
			t.Fatalf("email %q not lowercased", id.Email)
		}
		if id.EmailVerified && claims["email_verified"] != true && claims["email_verified"] != "true" {
			t.Fatalf("verified from %#v", claims["email_verified"])
		}
		mfa := slices.Contains(cfg.MFAACR, id.ACR)
		for _, m := range id.AMR {
			mfa = mfa || slices.Contains(cfg.MFAValues, m)
		}
		if id.MFA != mfa {
			t.Fatalf("MFA = %v for amr %q acr %q", id.MFA, id.AMR, id.ACR)
		}
	})
}

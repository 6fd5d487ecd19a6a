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
		// An independent statement of the rule: an explicit value or acr, or
		// methods of two different factor classes.
		mfa := slices.Contains(cfg.MFAACR, id.ACR)
		know, have, are := false, false, false
		for _, m := range id.AMR {
			mfa = mfa || slices.Contains(cfg.MFAValues, m)
			know = know || m == "pwd" || m == "pin" || m == "kba"
			have = have || slices.Contains([]string{"otp", "hwk", "swk", "sc", "sms", "tel"}, m)
			are = are || slices.Contains([]string{"fpt", "face", "iris", "retina", "vbm", "user"}, m)
		}
		n := 0
		for _, b := range []bool{know, have, are} {
			if b {
				n++
			}
		}
		mfa = mfa || n >= 2
		if id.MFA != mfa {
			t.Fatalf("MFA = %v for amr %q acr %q", id.MFA, id.AMR, id.ACR)
		}
	})
}

func TestMFARequiresTwoFactorClasses(t *testing.T) {
	cfg := Config{}.withDefaults()
	for _, tc := range []struct {
		amr  []any
		acr  string
		want bool
	}{
		{[]any{"otp"}, "", false}, // a passwordless email code
		{[]any{"hwk"}, "", false}, // a key without user verification
		{[]any{"pwd"}, "", false},
		{[]any{"pwd", "sms"}, "", true},  // knowledge + possession
		{[]any{"hwk", "pin"}, "", true},  // a key unlocked by a PIN
		{[]any{"swk", "fpt"}, "", true},  // a platform key with biometrics
		{[]any{"otp", "sms"}, "", false}, // two possessions are one class
		{[]any{"mfa"}, "", true},
		{nil, "phr", true},
	} {
		id := identityFromClaims(cfg, map[string]any{"amr": tc.amr, "acr": tc.acr})
		if id.MFA != tc.want {
			t.Errorf("amr %v acr %q: MFA = %v, want %v", tc.amr, tc.acr, id.MFA, tc.want)
		}
	}
}

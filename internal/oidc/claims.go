package oidc

import (
	"slices"
	"strings"
)

// identityFromClaims maps verified ID token claims to an Identity (without
// Issuer and Subject, which the verifier supplies). Claims of an unexpected
// type count as absent: they never fail the login, they only withhold what
// they would have granted (verified email, role, MFA).
func identityFromClaims(c Config, claims map[string]any) Identity {
	id := Identity{
		Email:         strings.ToLower(strings.TrimSpace(str(claims["email"]))),
		EmailVerified: isTrue(claims["email_verified"]),
		Name:          strings.TrimSpace(str(claims["name"])),
		AMR:           strs(claims["amr"]),
		ACR:           str(claims["acr"]),
	}
	if c.RoleClaim != "" {
		for _, v := range strs(claims[c.RoleClaim]) {
			if role, ok := c.RoleMap[v]; ok {
				id.Role = role
				break
			}
		}
	}
	classes := map[string]bool{}
	for _, m := range id.AMR {
		if slices.Contains(c.MFAValues, m) {
			id.MFA = true
		}
		if fc := factorClass(m); fc != "" {
			classes[fc] = true
		}
	}
	if len(classes) >= 2 {
		id.MFA = true
	}
	if id.ACR != "" && slices.Contains(c.MFAACR, id.ACR) {
		id.MFA = true
	}
	return id
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// isTrue accepts JSON true and, because some providers (Amazon Cognito)
// send it that way, the string "true".
func isTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// strs reads a claim that is a string or an array; non-string array elements
// are skipped. The result keeps claim order.
func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// factorClass sorts RFC 8176 amr values into the three classes of factor;
// methods of two classes together are multi-factor.
func factorClass(amr string) string {
	switch amr {
	case "pwd", "pin", "kba":
		return "know"
	case "otp", "hwk", "swk", "sc", "sms", "tel":
		return "have"
	case "fpt", "face", "iris", "retina", "vbm", "user":
		return "are"
	}
	return ""
}

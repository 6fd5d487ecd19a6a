package audit

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/custos/custos/internal/seal"
)

// Sealed is a set of personal values kept in an event's details, encrypted
// under the data key of the customer they belong to (for example the old and
// new value of a changed phone number, or a free-text reason). Field names
// stay readable beside it; the values are only ever ciphertext in the audit
// table, the server log and every export, and erasing the customer (destroying
// its key) erases them too. The hash chain covers the ciphertext.
type Sealed struct {
	Subject    string `json:"subject"`     // customer id whose key seals the box
	KeyVersion uint32 `json:"key_version"` // version of that key
	Box        string `json:"box"`         // base64 of the AEAD ciphertext
}

// personalAAD binds a box to its customer, so a box copied into another
// customer's event does not open.
func personalAAD(subject string) seal.AAD {
	return seal.AAD{Table: "audit_events", Record: subject, Field: "personal"}
}

// Seal encrypts values (field name → value; any JSON-encodable value) under
// the customer's data key dk.
func Seal(c seal.Cipher, dk seal.Key, subject string, values map[string]any) (Sealed, error) {
	if subject == "" {
		return Sealed{}, errors.New("audit: sealed values need the customer they belong to")
	}
	pt, err := json.Marshal(values)
	if err != nil {
		return Sealed{}, fmt.Errorf("audit: personal values: %w", err)
	}
	ct, err := c.Seal(dk, personalAAD(subject), pt)
	if err != nil {
		return Sealed{}, fmt.Errorf("audit: seal personal values: %w", err)
	}
	return Sealed{Subject: subject, KeyVersion: dk.Version, Box: base64.StdEncoding.EncodeToString(ct)}, nil
}

// Open decrypts s with the customer's data key dk (of version s.KeyVersion).
func Open(c seal.Cipher, dk seal.Key, s Sealed) (map[string]any, error) {
	ct, err := base64.StdEncoding.DecodeString(s.Box)
	if err != nil {
		return nil, fmt.Errorf("audit: sealed values: %w", err)
	}
	pt, err := c.Open(dk, personalAAD(s.Subject), ct)
	if err != nil {
		return nil, fmt.Errorf("audit: open sealed values: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(pt, &out); err != nil {
		return nil, fmt.Errorf("audit: sealed values: %w", err)
	}
	return out, nil
}

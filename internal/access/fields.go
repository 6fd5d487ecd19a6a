package access

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/custos/custos/internal/store"
)

// Level is what a principal may do with one field.
type Level int

// Field levels, weakest first.
const (
	Hidden   Level = iota // absent from every response
	Masked                // shown masked (138****5678); reveal shows it once, audited
	Readable              // shown
	Editable              // shown and changeable
)

var levelNames = [...]string{"hidden", "masked", "read", "edit"}

func (l Level) String() string {
	if l < Hidden || l > Editable {
		return "hidden"
	}
	return levelNames[l]
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	*l = v
	return err
}

// ParseLevel parses "hidden", "masked", "read" or "edit".
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return Hidden, fmt.Errorf("unknown field level %q (hidden, masked, read, edit)", s)
}

// The fields that field policies govern: the personal and free-text fields
// of customers (contacts use name, phone, email and notes).
const (
	FieldName     = "name"
	FieldPhone    = "phone"
	FieldEmail    = "email"
	FieldAddress  = "address"
	FieldIDNumber = "id_number"
	FieldNotes    = "notes"
	FieldTags     = "tags"
)

// Fields lists the governed fields.
var Fields = []string{FieldName, FieldPhone, FieldEmail, FieldAddress, FieldIDNumber, FieldNotes, FieldTags}

// poolCaps cap fields of a pool customer until it is claimed: contact
// fields masked, free text hidden.
var poolCaps = map[string]Level{FieldPhone: Masked, FieldEmail: Masked, FieldAddress: Masked, FieldIDNumber: Masked, FieldNotes: Hidden}

// FieldLevel is the level at which p sees field of a record it reaches by rel.
func (p Principal) FieldLevel(field string, rel Relation) Level {
	l := p.Fields[field]
	if l == Editable && !p.Can(Update) {
		l = Readable
	}
	switch rel {
	case RelNone:
		return Hidden
	case RelShareRead:
		l = min(l, Readable)
	case RelPool:
		if c, ok := poolCaps[field]; ok {
			l = min(l, c)
		}
		l = min(l, Readable)
	}
	return l
}

// CanSearch reports whether p may search or filter by field: only a field
// it may read, so that a blind-index probe cannot confirm a hidden or
// masked value.
func (p Principal) CanSearch(field string) error {
	if p.Fields[field] >= Readable {
		return nil
	}
	return fmt.Errorf("%w: searching by %s is not allowed for role %q (the field is %s for you)", ErrDenied, field, p.Role, p.Fields[field])
}

// RoleSpec is a role's parsed permissions and field policy.
type RoleSpec struct {
	Permissions []Permission
	Fields      map[string]Level
}

// ParseRole parses a stored role's permissions and field policy.
func ParseRole(r store.Role) (RoleSpec, error) {
	perms, err := ParsePermissions(r.Permissions)
	if err != nil {
		return RoleSpec{}, fmt.Errorf("role %s: %w", r.Name, err)
	}
	fields, err := ParseFieldPolicy(r.Fields)
	if err != nil {
		return RoleSpec{}, fmt.Errorf("role %s: %w", r.Name, err)
	}
	return RoleSpec{Permissions: perms, Fields: fields}, nil
}

// ParseFieldPolicy parses the stored JSON field policy.
func ParseFieldPolicy(s string) (map[string]Level, error) {
	out := map[string]Level{}
	if s == "" {
		return out, nil
	}
	var raw map[string]string
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("field policy: %w", err)
	}
	for f, v := range raw {
		if !slices.Contains(Fields, f) {
			return nil, fmt.Errorf("field policy: unknown field %q (known: %v)", f, Fields)
		}
		l, err := ParseLevel(v)
		if err != nil {
			return nil, fmt.Errorf("field policy: %s: %w", f, err)
		}
		out[f] = l
	}
	return out, nil
}

// FormatFieldPolicy is the stored form of a field policy (hidden fields
// are left out: absent means hidden).
func FormatFieldPolicy(m map[string]Level) string {
	raw := map[string]string{}
	for f, l := range m {
		if l > Hidden {
			raw[f] = l.String()
		}
	}
	b, _ := json.Marshal(raw) // map[string]string always marshals
	return string(b)
}

// ValidateHierarchy checks that every parent exists and that no role is its
// own ancestor.
func ValidateHierarchy(roles []store.Role) error {
	parent := map[string]string{}
	for _, r := range roles {
		parent[r.Name] = r.Parent
	}
	for _, r := range roles {
		seen := map[string]bool{r.Name: true}
		for cur := r.Parent; cur != ""; cur = parent[cur] {
			if _, ok := parent[cur]; !ok {
				return fmt.Errorf("role %q: parent %q does not exist", r.Name, cur)
			}
			if seen[cur] {
				return fmt.Errorf("role %q: the hierarchy would contain a cycle through %q", r.Name, cur)
			}
			seen[cur] = true
		}
	}
	return nil
}

package crm

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of the guarded path; internal/web maps them to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid input")
)

// FieldError is one invalid field. Message never contains the value.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists the invalid fields of an input. It wraps ErrInvalid.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

type fieldErrs struct{ list []FieldError }

func (f *fieldErrs) add(field string, err error) {
	msg := err.Error()
	f.list = append(f.list, FieldError{Field: field, Message: msg})
}

func (f *fieldErrs) addf(field, format string, args ...any) {
	f.list = append(f.list, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (f *fieldErrs) err() error {
	if len(f.list) == 0 {
		return nil
	}
	return &ValidationError{Fields: f.list}
}

// Customer kinds.
const (
	KindCompany = "company"
	KindPerson  = "person"
)

// Customer is a decrypted customer as the principal may see it.
type Customer struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	OwnerID   string    `json:"owner_id"`
	Name      string    `json:"name"`
	Phone     string    `json:"phone"`
	Phones    []string  `json:"phones"`
	Email     string    `json:"email"`
	Emails    []string  `json:"emails"`
	Address   string    `json:"address"`
	IDNumber  string    `json:"id_number"`
	Industry  string    `json:"industry"`
	Level     string    `json:"level"`
	Source    string    `json:"source"`
	Status    string    `json:"status"`
	Tags      []string  `json:"tags"`
	Notes     string    `json:"notes"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
	// Hidden customers are absent for everyone without view_hidden.
	Hidden bool `json:"hidden"`
	// Access is how the viewer reaches the customer: full, shared-edit,
	// shared-read or pool.
	Access string `json:"access"`
	// MaskedFields and HiddenFields name the fields the viewer's field
	// policy masks (reveal unmasks one, audited) or hides.
	MaskedFields []string `json:"masked_fields"`
	HiddenFields []string `json:"hidden_fields"`
	// LastActivityAt restarts with every interaction, claim and assignment:
	// the pool's return clock.
	LastActivityAt time.Time `json:"last_activity_at"`
}

// CustomerFields is the input for creating (nil = default) or patching
// (nil = unchanged) a customer.
type CustomerFields struct {
	Kind     *string
	Name     *string
	Phones   *[]string
	Emails   *[]string
	Address  *string
	IDNumber *string
	Industry *string
	Level    *string
	Source   *string
	Status   *string
	Tags     *[]string
	Notes    *string
	OwnerID  *string // "" puts the customer in the public pool
	Hidden   *bool   // hide or unhide (the hide permission)
}

// Contact is a decrypted contact.
type Contact struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	Name       string    `json:"name"`
	Title      string    `json:"title"`
	Phones     []string  `json:"phones"`
	Emails     []string  `json:"emails"`
	Notes      string    `json:"notes"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Version    int64     `json:"version"`
}

// ContactFields is the input for creating or patching a contact.
type ContactFields struct {
	Name   *string
	Title  *string
	Phones *[]string
	Emails *[]string
	Notes  *string
}

// Interaction kinds.
var InteractionKinds = []string{"call", "visit", "meeting", "email", "note"}

// Interaction is a decrypted interaction.
type Interaction struct {
	ID           string    `json:"id"`
	CustomerID   string    `json:"customer_id"`
	ContactID    string    `json:"contact_id,omitempty"`
	Kind         string    `json:"kind"`
	OccurredAt   time.Time `json:"occurred_at"`
	Summary      string    `json:"summary"`
	NextFollowUp string    `json:"next_follow_up,omitempty"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Version      int64     `json:"version"`
}

// InteractionFields is the input for creating or patching an interaction.
type InteractionFields struct {
	ContactID    *string
	Kind         *string
	OccurredAt   *time.Time
	Summary      *string
	NextFollowUp *string // YYYY-MM-DD, "" clears
}

// ListQuery selects a page of customers.
type ListQuery struct {
	Q       string // search text: name fragment, phone, email or ID number
	OwnerID string
	Kind    string
	Level   string
	Status  string
	Tag     string
	// Hidden selects hidden customers: "" leaves them out, "include" and
	// "only" need the view_hidden permission.
	Hidden string
	Pool   bool // only customers in the public pool
	// Sort is "newest" (the default, also "") or "oldest": by when the
	// customer was created. A cursor continues the order it came from.
	Sort   string
	Cursor string
	Limit  int
}

// Page is one page of results and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// Limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
	maxPhones       = 10
	maxEmails       = 10
	maxTags         = 20
	maxAddress      = 500
	maxNotes        = 10000
	maxSummary      = 10000
	maxTitle        = 100
)

// Package crm is the guarded path: every read, change and export of customer
// data goes through a Service method, which
//
//  1. authorizes the principal (internal/access; deny by default),
//  2. loads through the store with the principal's visibility pushed into SQL,
//  3. opens (decrypts) the fields with the customer's data key,
//  4. records an audit event (in the same transaction as a change).
//
// Field masking and detectors join this path with their issues.
package crm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/normalize"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// Service is the guarded path.
type Service struct {
	db     *store.DB
	keys   *keys.Keyring
	cipher seal.Cipher
	now    func() time.Time
	log    *slog.Logger
	env    func(string) (string, bool)
	// unguarded: the bulk-viewing guard is off (benchmarks only).
	unguarded  bool
	guardCache guardCache
}

// Options configure a Service.
type Options struct {
	// Cipher seals fields; nil means AES-256-GCM. Tests wrap it to count
	// decryptions; benchmarks swap it to measure the cost of encryption.
	Cipher seal.Cipher
	Now    func() time.Time
	Logger *slog.Logger
	// Env looks up CUSTOS_* overrides of settings (nil: the process
	// environment).
	Env func(string) (string, bool)
	// WithoutGuard turns the bulk-viewing guard off. It exists only for the
	// benchmark that measures what the guard costs; node never sets it.
	WithoutGuard bool
}

// New returns the guarded path over db with keys kr.
func New(db *store.DB, kr *keys.Keyring, o Options) *Service {
	if o.Cipher == nil {
		o.Cipher = seal.GCM{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	return &Service{db: db, keys: kr, cipher: o.Cipher, now: o.Now, log: o.Logger, env: o.Env, unguarded: o.WithoutGuard}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// validID reports whether s is a well-formed id (a UUID in its 36-character
// form) before it reaches a query.
func validID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func event(p access.Principal, action, objType, objID string) audit.Event {
	return audit.Event{Actor: p.Actor, IP: p.IP, UserAgent: p.UserAgent, RequestID: p.RequestID,
		Action: action, ObjectType: objType, ObjectID: objID, Outcome: audit.OK}
}

// deny records a refusal and returns err unchanged. A refusal that cannot be
// recorded is an internal error: nothing happens without its audit event.
func (s *Service) deny(ctx context.Context, p access.Principal, action, objType, objID string, err error) error {
	ev := event(p, action, objType, objID)
	ev.Outcome = audit.Denied
	switch {
	case errors.Is(err, access.ErrDenied):
		ev.Reason = "permission"
	case errors.Is(err, access.ErrStepUp):
		ev.Reason = "step-up required"
	case errors.Is(err, ErrNotFound):
		ev.Reason = "not found or not visible"
	case errors.Is(err, ErrQuota):
		ev.Reason = "quota"
	case errors.Is(err, ErrApprovalRequired):
		ev.Reason = "approval required"
	default:
		ev.Reason = "refused"
	}
	if aerr := audit.RecordAlone(ctx, s.db, s.now(), ev); aerr != nil {
		s.log.ErrorContext(ctx, "audit of a denial failed", "action", action, "err", aerr)
		return aerr
	}
	return err
}

func mapStoreErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

// --- sealing helpers -------------------------------------------------------

type sealer struct {
	s     *Service
	key   seal.Key
	table string
	id    string
	err   error
}

func (z *sealer) str(field, v string) []byte {
	if z.err != nil || v == "" {
		return nil
	}
	ct, err := z.s.cipher.Seal(z.key, seal.AAD{Table: z.table, Record: z.id, Field: field}, []byte(v))
	z.err = err
	return ct
}

func (z *sealer) list(field string, v []string) []byte {
	if z.err != nil || len(v) == 0 {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		z.err = err
		return nil
	}
	return z.str(field, string(b))
}

type opener struct {
	s     *Service
	key   seal.Key
	table string
	id    string
	err   error
}

func (o *opener) str(field string, ct []byte) string {
	if o.err != nil || ct == nil {
		return ""
	}
	pt, err := o.s.cipher.Open(o.key, seal.AAD{Table: o.table, Record: o.id, Field: field}, ct)
	o.err = err
	return string(pt)
}

func (o *opener) list(field string, ct []byte) []string {
	s := o.str(field, ct)
	if o.err != nil || s == "" {
		return []string{}
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		o.err = fmt.Errorf("crm: %s/%s/%s: malformed list", o.table, o.id, field)
	}
	return out
}

// --- customers ---------------------------------------------------------------

func (s *Service) openCustomer(ctx context.Context, tx *store.Tx, r store.Customer) (Customer, error) {
	dk, err := s.keys.DataKey(ctx, tx, r.ID, r.KeyVersion)
	if err != nil {
		return Customer{}, err
	}
	o := &opener{s: s, key: dk, table: "customers", id: r.ID}
	c := Customer{
		ID: r.ID, Kind: r.Kind, OwnerID: r.OwnerID, Industry: r.Industry, Level: r.Level, Source: r.Source, Status: r.Status,
		Name: o.str("name", r.Name), Phones: o.list("phones", r.Phones), Emails: o.list("emails", r.Emails),
		Address: o.str("address", r.Address), IDNumber: o.str("id_number", r.IDNumber), Tags: o.list("tags", r.Tags),
		Notes: o.str("notes", r.Notes), CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Version: r.Version,
		Hidden: r.Hidden, LastActivityAt: r.LastActivityAt,
	}
	if o.err != nil {
		return Customer{}, o.err
	}
	c.primaries()
	return c, nil
}

// primaries sets the convenience fields phone and email from the lists.
func (c *Customer) primaries() {
	c.Phone, c.Email = "", ""
	if len(c.Phones) > 0 {
		c.Phone = c.Phones[0]
	}
	if len(c.Emails) > 0 {
		c.Email = c.Emails[0]
	}
}

func (s *Service) sealCustomer(dk seal.Key, c Customer) (store.Customer, error) {
	z := &sealer{s: s, key: dk, table: "customers", id: c.ID}
	r := store.Customer{
		ID: c.ID, Kind: c.Kind, OwnerID: c.OwnerID, Industry: c.Industry, Level: c.Level, Source: c.Source, Status: c.Status,
		KeyVersion: dk.Version, Name: z.str("name", c.Name), Phones: z.list("phones", c.Phones), Emails: z.list("emails", c.Emails),
		Address: z.str("address", c.Address), IDNumber: z.str("id_number", c.IDNumber), Tags: z.list("tags", c.Tags),
		Notes: z.str("notes", c.Notes), CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Version: c.Version,
		Hidden: c.Hidden, LastActivityAt: c.LastActivityAt,
	}
	return r, z.err
}

// customerTerms are the blind-index terms of a customer's own fields.
func (s *Service) customerTerms(c Customer) [][]byte {
	var terms []string
	terms = append(terms, normalize.NameTerms(c.Name)...)
	for _, p := range c.Phones {
		if t, err := normalize.PhoneTerm(p); err == nil {
			terms = append(terms, t)
		}
	}
	for _, e := range c.Emails {
		if t, err := normalize.EmailTerm(e); err == nil {
			terms = append(terms, t)
		}
	}
	if c.IDNumber != "" {
		if t, err := normalize.IDTerm(c.IDNumber); err == nil {
			terms = append(terms, t)
		}
	}
	for _, tag := range c.Tags {
		terms = append(terms, "g:"+tag)
	}
	return s.hashTerms(terms)
}

func (s *Service) hashTerms(terms []string) [][]byte {
	slices.Sort(terms)
	terms = slices.Compact(terms)
	out := make([][]byte, len(terms))
	ix := s.keys.Indexer()
	for i, t := range terms {
		out[i] = ix.Term(t)
	}
	return out
}

// applyCustomer validates in and applies it to c (a zero Customer when
// creating). It returns the names of the fields that changed.
func applyCustomer(c *Customer, in CustomerFields, creating bool) ([]string, error) {
	var p patch
	kind := func(v string) (string, error) {
		if v != KindCompany && v != KindPerson {
			return "", fmt.Errorf("must be %q or %q", KindCompany, KindPerson)
		}
		return v, nil
	}
	p.name(&c.Name, in.Name, creating)
	p.str("kind", &c.Kind, in.Kind, kind)
	if c.Kind == "" {
		c.Kind = KindCompany
	}
	p.list("phones", &c.Phones, in.Phones, maxPhones, normalize.Phone)
	p.list("emails", &c.Emails, in.Emails, maxEmails, normalize.Email)
	p.list("tags", &c.Tags, in.Tags, maxTags, normalize.Tag)
	p.str("address", &c.Address, in.Address, text(maxAddress))
	p.str("id_number", &c.IDNumber, in.IDNumber, normalize.IDNumber)
	p.str("industry", &c.Industry, in.Industry, normalize.Code)
	p.str("level", &c.Level, in.Level, normalize.Code)
	p.str("source", &c.Source, in.Source, normalize.Code)
	p.str("status", &c.Status, in.Status, normalize.Code)
	p.str("notes", &c.Notes, in.Notes, text(maxNotes))
	if err := p.err(); err != nil {
		return nil, err
	}
	nonNil(&c.Phones)
	nonNil(&c.Emails)
	nonNil(&c.Tags)
	c.primaries()
	return p.changed, nil
}

// CreateCustomer creates a customer with its own data key.
func (s *Service) CreateCustomer(ctx context.Context, p access.Principal, in CustomerFields) (Customer, error) {
	const action = "customer.create"
	if err := access.Require(p, access.Create); err != nil {
		return Customer{}, s.deny(ctx, p, action, "customer", "", err)
	}
	var c Customer
	changed, err := applyCustomer(&c, in, true)
	if err != nil {
		return Customer{}, err
	}
	if err := checkEditable(p, access.RelFull, changed, true); err != nil {
		return Customer{}, s.deny(ctx, p, action, "customer", "", err)
	}
	if in.Hidden != nil && *in.Hidden {
		if err := access.Require(p, access.Hide); err != nil {
			return Customer{}, s.deny(ctx, p, action, "customer", "", err)
		}
		c.Hidden = true
	}
	owner, err := access.OwnerOnCreate(p, deref(in.OwnerID), in.OwnerID != nil)
	if err != nil {
		return Customer{}, s.deny(ctx, p, action, "customer", "", err)
	}
	now := s.now().UTC()
	c.ID, c.OwnerID, c.CreatedBy, c.CreatedAt, c.UpdatedAt, c.Version, c.LastActivityAt = newID(), owner, p.Actor, now, now, 1, now
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if owner != p.UserID {
			if err := s.checkAssignee(ctx, tx, p, owner); err != nil {
				return err
			}
		}
		return s.insertCustomer(ctx, tx, p, c, now)
	})
	if errors.Is(err, access.ErrDenied) {
		return Customer{}, s.deny(ctx, p, action, "customer", "", err)
	}
	if err != nil {
		return Customer{}, mapStoreErr(err)
	}
	rel := access.RelationTo(p, c.OwnerID, p.Role, "")
	if c.OwnerID != p.UserID {
		rel = access.RelFull // p may assign: a superior or see-all
		if !p.SeeAll && c.OwnerID == "" {
			rel = access.RelPool
		}
	}
	return viewCustomer(p, rel, c), nil
}

// presentCustomerFields names the fields an input sets, changed or not
// (owner and hidden have their own checks).
func presentCustomerFields(in CustomerFields) []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"kind", in.Kind != nil}, {"name", in.Name != nil}, {"phones", in.Phones != nil}, {"emails", in.Emails != nil},
		{"address", in.Address != nil}, {"id_number", in.IDNumber != nil}, {"industry", in.Industry != nil}, {"level", in.Level != nil},
		{"source", in.Source != nil}, {"status", in.Status != nil}, {"tags", in.Tags != nil}, {"notes", in.Notes != nil}} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// checkAssignee verifies that ownerID ("" is the pool) may receive customers
// from p: an enabled user, and for a principal who does not see everything,
// one at or below it in the hierarchy (a manager assigns within the team).
func (s *Service) checkAssignee(ctx context.Context, tx *store.Tx, p access.Principal, ownerID string) error {
	return s.checkAssigneeIn(ctx, tx, p, ownerID, true)
}

// checkAssigneeIn is checkAssignee; lock takes the user's row lock (write
// transactions), serializing the assignment with offboarding and claims.
func (s *Service) checkAssigneeIn(ctx context.Context, tx *store.Tx, p access.Principal, ownerID string, lock bool) error {
	if ownerID == "" {
		return nil
	}
	if !validID(ownerID) {
		return &ValidationError{Fields: []FieldError{{Field: "owner_id", Message: "not a valid id"}}}
	}
	get := tx.GetUser
	if lock {
		get = tx.LockUser
	}
	u, err := get(ctx, ownerID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return &ValidationError{Fields: []FieldError{{Field: "owner_id", Message: "no such active user"}}}
	}
	if err != nil {
		return err
	}
	if !p.SeeAll && u.ID != p.UserID && !slices.Contains(p.Below, u.Role) {
		return fmt.Errorf("%w: you may assign customers only to yourself and to people below you", access.ErrDenied)
	}
	return nil
}

func (s *Service) insertCustomer(ctx context.Context, tx *store.Tx, p access.Principal, c Customer, now time.Time) error {
	dk, err := s.keys.NewDataKey(ctx, tx, c.ID)
	if err != nil {
		return err
	}
	row, err := s.sealCustomer(dk, c)
	if err != nil {
		return err
	}
	if err := tx.InsertCustomer(ctx, row); err != nil {
		return err
	}
	if err := tx.ReplaceTerms(ctx, c.ID, "customer", s.customerTerms(c)); err != nil {
		return err
	}
	ev := event(p, "customer.create", "customer", c.ID)
	ev.Details = map[string]any{"owner_id": c.OwnerID}
	if c.Hidden {
		ev.Details["hidden"] = true
	}
	// The initial values, sealed: the trail shows what was entered.
	if err := s.sealChanges(&ev, dk, c.ID, setFields(c), nil, customerValues(c)); err != nil {
		return err
	}
	_, err = audit.Record(ctx, tx, now, ev)
	return err
}

// setFields names the personal fields that hold a value (never the values).
func setFields(c Customer) []string {
	var f []string
	for _, x := range []struct {
		name string
		set  bool
	}{{"name", c.Name != ""}, {"phones", len(c.Phones) > 0}, {"emails", len(c.Emails) > 0}, {"address", c.Address != ""},
		{"id_number", c.IDNumber != ""}, {"tags", len(c.Tags) > 0}, {"notes", c.Notes != ""}} {
		if x.set {
			f = append(f, x.name)
		}
	}
	return f
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// GetCustomer returns one customer in the principal's scope, as its field
// policy lets it see the customer. A customer outside the scope (hidden
// ones included, for a principal without view_hidden) is ErrNotFound,
// exactly like a missing one.
func (s *Service) GetCustomer(ctx context.Context, p access.Principal, id string) (Customer, error) {
	const action = "customer.view"
	if err := access.Require(p, access.Read); err != nil {
		return Customer{}, s.deny(ctx, p, action, "customer", id, err)
	}
	var c Customer
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		r, rel, err := s.reach(ctx, tx, p, id, s.now(), false)
		if err != nil {
			return err
		}
		if c, err = s.openCustomer(ctx, tx, r); err != nil {
			return err
		}
		c = viewCustomer(p, rel, c)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return Customer{}, s.deny(ctx, p, action, "customer", id, ErrNotFound)
	}
	if err != nil {
		return Customer{}, err
	}
	ev := event(p, action, "customer", id)
	ev.Details = map[string]any{"access": c.Access, "masked": c.MaskedFields}
	if err := s.recordRead(ctx, p, ev, []string{id}); err != nil {
		return Customer{}, err
	}
	return c, nil
}

// UpdateCustomer applies a patch. ifVersion > 0 makes it conditional on the
// stored version (optimistic concurrency, HTTP If-Match). Changing the
// owner needs assign, hiding needs hide; every field changed must be
// editable for the principal on this record.
func (s *Service) UpdateCustomer(ctx context.Context, p access.Principal, id string, in CustomerFields, ifVersion int64) (Customer, error) {
	const action = "customer.update"
	if err := access.Require(p, access.Update); err != nil && in.OwnerID == nil && in.Hidden == nil {
		return Customer{}, s.deny(ctx, p, action, "customer", id, err)
	}
	if in.Hidden != nil {
		if err := access.Require(p, access.Hide); err != nil {
			return Customer{}, s.deny(ctx, p, action, "customer", id, err)
		}
	}
	var c Customer
	var rel access.Relation
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		r, relation, err := s.reach(ctx, tx, p, id, now, true)
		if err != nil {
			return err
		}
		rel = relation
		if ifVersion > 0 && r.Version != ifVersion {
			return fmt.Errorf("%w: version is %d, not %d", ErrConflict, r.Version, ifVersion)
		}
		// Every field given is checked, changed or not: otherwise a
		// no-op write would confirm a masked or hidden value.
		if present := presentCustomerFields(in); len(present) > 0 {
			if err := access.Require(p, access.Update); err != nil {
				return err
			}
			if err := needRelation(rel, access.RelShareEdit, "changing"); err != nil {
				return err
			}
			if err := checkEditable(p, rel, present, false); err != nil {
				return err
			}
		}
		if c, err = s.openCustomer(ctx, tx, r); err != nil {
			return err
		}
		before := c // applyCustomer replaces values, never edits them in place
		changed, err := applyCustomer(&c, in, false)
		if err != nil {
			return err
		}
		valueFields := slices.Clone(changed) // owner and hidden are recorded readable
		row := r
		if in.OwnerID != nil && *in.OwnerID != c.OwnerID {
			if err := access.CanReassign(p, rel); err != nil {
				return err
			}
			if err := s.checkAssignee(ctx, tx, p, *in.OwnerID); err != nil {
				return err
			}
			// From the pool, the assignee's role limits (owned cap,
			// cooldown) hold as for a claim.
			if r.OwnerID == "" && *in.OwnerID != "" {
				if err := s.checkAssigneeLimits(ctx, tx, *in.OwnerID, r, now); err != nil {
					return err
				}
			}
			// The shares were the previous owner's to give.
			if _, err := tx.RevokeCustomerShares(ctx, r.ID, now); err != nil {
				return err
			}
			if c.OwnerID != "" {
				row.PreviousOwnerID = c.OwnerID
			}
			row.ReleasedAt = nil
			if *in.OwnerID == "" {
				t := now
				row.ReleasedAt = &t
			}
			row.PoolWarnedAt, c.LastActivityAt = nil, now
			c.OwnerID = *in.OwnerID
			changed = append(changed, "owner_id")
		}
		if in.Hidden != nil && *in.Hidden != c.Hidden {
			if err := needRelation(rel, access.RelFull, "hiding"); err != nil {
				return err
			}
			c.Hidden = *in.Hidden
			changed = append(changed, "hidden")
		}
		if len(changed) == 0 {
			return nil
		}
		dk, err := s.keys.DataKey(ctx, tx, r.ID, r.KeyVersion)
		if err != nil {
			return err
		}
		c.UpdatedAt = now
		sealed, err := s.sealCustomer(dk, c)
		if err != nil {
			return err
		}
		sealed.Version, sealed.PoolWarnedAt, sealed.PreviousOwnerID, sealed.ReleasedAt = r.Version, row.PoolWarnedAt, row.PreviousOwnerID, row.ReleasedAt
		if err := tx.UpdateCustomer(ctx, sealed); err != nil {
			return err
		}
		c.Version = r.Version + 1
		if err := tx.ReplaceTerms(ctx, c.ID, "customer", s.customerTerms(c)); err != nil {
			return err
		}
		ev := event(p, action, "customer", id)
		if err := s.sealChanges(&ev, dk, r.ID, valueFields, customerValues(before), customerValues(c)); err != nil {
			return err
		}
		ev.Details["fields"] = changed
		if slices.Contains(changed, "owner_id") {
			ev.Details["owner_id"] = c.OwnerID
			ev.Details["previous_owner_id"] = r.OwnerID
		}
		if slices.Contains(changed, "hidden") {
			ev.Details["hidden"] = c.Hidden
		}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Customer{}, s.deny(ctx, p, action, "customer", id, ErrNotFound)
	case errors.Is(err, access.ErrDenied), errors.Is(err, ErrQuota):
		return Customer{}, s.deny(ctx, p, action, "customer", id, err)
	case err != nil:
		return Customer{}, mapStoreErr(err)
	}
	// Shown as p reached it before the change: nothing p could not see. The
	// record handed back is a read, on record and under the guard (a patch
	// that changes nothing must not be a way to read unseen).
	if err := s.recordReturned(ctx, p, "customer", id, id); err != nil {
		return Customer{}, err
	}
	return viewCustomer(p, rel, c), nil
}

// DeleteCustomer soft-deletes a customer: its owner, the owner's superiors
// or a see-all principal with the delete permission.
func (s *Service) DeleteCustomer(ctx context.Context, p access.Principal, id string) error {
	return s.softDelete(ctx, p, "customer.delete", "customer", id, func(tx *store.Tx, now time.Time, ev *audit.Event) error {
		r, rel, err := s.reach(ctx, tx, p, id, now, true)
		if err != nil {
			return err
		}
		if err := needRelation(rel, access.RelFull, "deleting"); err != nil {
			return err
		}
		// What was deleted, sealed: the values as they were.
		c, err := s.openCustomer(ctx, tx, r)
		if err != nil {
			return err
		}
		dk, err := s.keys.DataKey(ctx, tx, r.ID, r.KeyVersion)
		if err != nil {
			return err
		}
		if err := s.sealChanges(ev, dk, r.ID, setFields(c), customerValues(c), nil); err != nil {
			return err
		}
		ev.Details["owner_id"] = r.OwnerID
		return tx.SoftDeleteCustomer(ctx, id, now)
	})
}

// --- list, search, export ----------------------------------------------------

// The orders of a customer list.
const (
	SortNewest = "newest"
	SortOldest = "oldest"
)

// encodeListCursor is encodeCursor for a list in either order; an
// oldest-first cursor has its own prefix, so that it cannot continue the
// other order.
func encodeListCursor(id string, oldest bool) string {
	if !oldest {
		return encodeCursor(id)
	}
	return base64.RawURLEncoding.EncodeToString([]byte("o1:" + id))
}

func decodeListCursor(c string, oldest bool) (string, error) {
	if !oldest || c == "" {
		return decodeCursor(c)
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	id, ok := strings.CutPrefix(string(b), "o1:")
	if err != nil || !ok || len(b) > 64 {
		return "", &ValidationError{Fields: []FieldError{{Field: "cursor", Message: "malformed cursor"}}}
	}
	if _, err := uuid.Parse(id); err != nil {
		return "", &ValidationError{Fields: []FieldError{{Field: "cursor", Message: "malformed cursor"}}}
	}
	return id, nil
}

func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte("c1:" + id)) }

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "c1:") || len(b) > 64 {
		return "", &ValidationError{Fields: []FieldError{{Field: "cursor", Message: "malformed cursor"}}}
	}
	id := strings.TrimPrefix(string(b), "c1:")
	if _, err := uuid.Parse(id); err != nil {
		return "", &ValidationError{Fields: []FieldError{{Field: "cursor", Message: "malformed cursor"}}}
	}
	return id, nil
}

// searchPlan turns the query into the store query and a filter for false
// positives of CJK bigram matching.
type searchPlan struct {
	q        store.CustomerQuery
	nameOnly bool   // the only alternative is a name query: verify with MatchName
	text     string // the search text
}

func (s *Service) plan(p access.Principal, lq ListQuery) (searchPlan, error) {
	var fe fieldErrs
	oldest := false
	switch lq.Sort {
	case "", SortNewest:
	case SortOldest:
		oldest = true
	default:
		fe.addf("sort", `must be "newest" or "oldest"`)
	}
	before, err := decodeListCursor(lq.Cursor, oldest)
	if err != nil {
		return searchPlan{}, err
	}
	limit := lq.Limit
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 0 || limit > MaxPageSize:
		fe.addf("limit", "must be between 1 and %d", MaxPageSize)
	}
	q := store.CustomerQuery{Scope: access.CustomerScope(p, s.now()), OwnerID: lq.OwnerID, Before: before, Oldest: oldest, Limit: limit, PoolOnly: lq.Pool}
	switch lq.Hidden {
	case "":
		q.Scope.Hidden = store.HiddenExclude
	case "include", "only":
		if err := access.Require(p, access.ViewHidden); err != nil {
			return searchPlan{}, err
		}
		q.Scope.Hidden = store.HiddenInclude
		if lq.Hidden == "only" {
			q.Scope.Hidden = store.HiddenOnly
		}
	default:
		fe.addf("hidden", `must be "include" or "only"`)
	}
	for _, f := range []struct {
		name string
		in   string
		dst  *string
	}{{"kind", lq.Kind, &q.Kind}, {"level", lq.Level, &q.Level}, {"status", lq.Status, &q.Status}} {
		if f.in == "" {
			continue
		}
		v, err := normalize.Code(f.in)
		if err != nil {
			fe.add(f.name, err)
		}
		*f.dst = v
	}
	if lq.OwnerID != "" {
		if _, err := uuid.Parse(lq.OwnerID); err != nil {
			fe.addf("owner_id", "not a valid id")
		}
	}
	var alts [][]string
	plan := searchPlan{text: lq.Q}
	if strings.TrimSpace(lq.Q) != "" {
		if len(lq.Q) > 200 {
			fe.addf("q", "at most 200 bytes")
		} else {
			alts = normalize.QueryTerms(lq.Q)
			if alts == nil {
				fe.addf("q", "search text too short: give at least two letters, one Chinese character, a phone number or an email")
			}
			nq := normalize.NameQuery(lq.Q)
			plan.nameOnly = len(alts) == 1 && nq != nil && slices.Equal(alts[0], nq)
		}
	}
	if lq.Tag != "" {
		t, err := normalize.Tag(lq.Tag)
		if err != nil {
			fe.add("tag", err)
		}
		if alts == nil {
			alts = [][]string{{}}
		}
		for i := range alts {
			alts[i] = append(alts[i], "g:"+t)
		}
	}
	if err := fe.err(); err != nil {
		return searchPlan{}, err
	}
	// A search or filter may only probe fields the principal may read, so a
	// blind-index match cannot confirm a hidden or masked value. Contact
	// fields of pool customers are masked until claimed: a probe by them
	// leaves the pool out, unless p sees everything anyway.
	//
	// A query has its first reading (email, else phone, else ID number,
	// else name) and possibly further ones (digits may be a phone and an ID
	// number). The first reading must be a field p may read, or the search
	// is refused; a further reading on a field p may not read is dropped.
	kept := alts[:0:0]
	for i, alt := range alts {
		var refuse error
		for _, f := range probedFields(alt) {
			if err := p.CanSearch(f); err != nil && refuse == nil {
				refuse = err
			}
		}
		if refuse != nil {
			if i == 0 || (lq.Tag != "" && len(alts) == 1) {
				return searchPlan{}, refuse
			}
			continue
		}
		kept = append(kept, alt)
	}
	if alts != nil {
		alts = kept
		if len(alts) == 0 {
			return searchPlan{}, fmt.Errorf("%w: nothing this search looks for is readable for you", access.ErrDenied)
		}
	}
	for _, alt := range alts {
		for _, f := range probedFields(alt) {
			if f != access.FieldName && f != access.FieldTags && !p.SeeAll {
				if lq.Pool {
					return searchPlan{}, fmt.Errorf("%w: search the public pool by name; its contact fields are masked until claimed", access.ErrDenied)
				}
				q.Scope.Pool = false
			}
		}
	}
	if alts != nil {
		q.Terms = make([][][]byte, len(alts))
		for i, alt := range alts {
			q.Terms[i] = s.hashTerms(slices.Clone(alt))
		}
	}
	plan.q = q
	return plan, nil
}

// probedFields names the fields a search alternative's terms probe.
func probedFields(alt []string) []string {
	var out []string
	add := func(f string) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	for _, t := range alt {
		switch {
		case strings.HasPrefix(t, "e:"):
			add(access.FieldEmail)
		case strings.HasPrefix(t, "t:"):
			add(access.FieldPhone)
		case strings.HasPrefix(t, "i:"):
			add(access.FieldIDNumber)
		case strings.HasPrefix(t, "g:"):
			add(access.FieldTags)
		default:
			add(access.FieldName)
		}
	}
	return out
}

// ListCustomers returns one page of the customers the principal may see,
// optionally searched (q) and filtered. The returned ids are audited.
func (s *Service) ListCustomers(ctx context.Context, p access.Principal, lq ListQuery) (Page[Customer], error) {
	action := "customer.list"
	if lq.Q != "" {
		action = "customer.search"
	}
	if err := access.Require(p, access.Read); err != nil {
		return Page[Customer]{}, s.deny(ctx, p, action, "customer", "", err)
	}
	plan, err := s.plan(p, lq)
	if errors.Is(err, access.ErrDenied) {
		return Page[Customer]{}, s.deny(ctx, p, action, "customer", "", err)
	}
	if err != nil {
		return Page[Customer]{}, err
	}
	var page Page[Customer]
	page.Items = []Customer{}
	err = s.db.Read(ctx, func(tx *store.Tx) error {
		rows, err := tx.ListCustomers(ctx, plan.q)
		if err != nil {
			return err
		}
		page.Items, err = s.openPage(ctx, tx, p, plan, rows)
		if err != nil {
			return err
		}
		if len(rows) == plan.q.Limit && len(rows) > 0 {
			page.Next = encodeListCursor(rows[len(rows)-1].ID, plan.q.Oldest)
		}
		return nil
	})
	if err != nil {
		return Page[Customer]{}, err
	}
	ids := make([]string, len(page.Items))
	for i, c := range page.Items {
		ids[i] = c.ID
	}
	ev := event(p, action, "customer", "")
	ev.Details = map[string]any{"ids": ids, "count": len(ids), "search": lq.Q != "", "filters": filterNames(lq), "filter": filterValues(lq)}
	ev.Customers = ids // "who saw customer X" finds this page
	if err := s.recordRead(ctx, p, ev, ids); err != nil {
		return Page[Customer]{}, err
	}
	return page, nil
}

// ExportCustomers streams every customer the principal may see (filtered by
// lq; cursor and limit ignored) to fn, in pages, and records the export.
// An export of more rows than the export.approval_rows setting allows is
// refused (audited) with an error wrapping ErrApprovalRequired before any
// row is read: it must be filed as an export request (RequestExport) for a
// second person to approve.
func (s *Service) ExportCustomers(ctx context.Context, p access.Principal, lq ListQuery, fn func(Customer) error) (int, error) {
	const action = "customer.export"
	lq.Cursor, lq.Limit = "", 0
	plan, err := s.exportPlan(ctx, p, lq, action)
	if err != nil {
		return 0, err
	}
	rows, limit, err := s.exportSize(ctx, p, plan)
	if err != nil {
		return 0, err
	}
	if needsApproval(rows, limit) {
		return 0, s.deny(ctx, p, action, "customer", "", &ApprovalRequiredError{Rows: rows, Limit: limit})
	}
	// Customers added while it streams cannot carry it past the threshold.
	return s.streamExport(ctx, p, lq, plan, exportRun{max: limit, guard: true}, fn)
}

// exportPlan authorizes an export of lq by p (refusals audited as action)
// and plans its query.
func (s *Service) exportPlan(ctx context.Context, p access.Principal, lq ListQuery, action string) (searchPlan, error) {
	if err := access.Require(p, access.Export); err != nil {
		return searchPlan{}, s.deny(ctx, p, action, "customer", "", err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return searchPlan{}, s.deny(ctx, p, action, "customer", "", err)
	}
	plan, err := s.plan(p, lq)
	if errors.Is(err, access.ErrDenied) {
		return searchPlan{}, s.deny(ctx, p, action, "customer", "", err)
	}
	return plan, err
}

// exportRun says what an export streams for: a direct export (the zero
// value), or the production of an approved export request, whose events
// name the request and whose reveal fields are exported unmasked.
type exportRun struct {
	request string
	reveal  []string
	max     int  // more rows than this stops the export (0: no limit)
	guard   bool // pages count towards bulk viewing (no second person saw the size)
}

func (r exportRun) note(d map[string]any) map[string]any {
	if r.request != "" {
		d["request"] = r.request
	}
	if len(r.reveal) > 0 {
		d["revealed"] = r.reveal
	}
	return d
}

// streamExport is the audited export path: every customer of plan, in
// pages, to fn.
func (s *Service) streamExport(ctx context.Context, p access.Principal, lq ListQuery, plan searchPlan, run exportRun, fn func(Customer) error) (int, error) {
	const action = "customer.export"
	plan.q.Limit = 500 // export pages are internal: larger than an API page
	// The export is on record before anything leaves: its start, then each
	// page's ids before the page is handed out. A client that hangs up (or a
	// killed process) cannot take rows that the trail does not name.
	start := event(p, action+".start", "customer", "")
	start.Details = run.note(map[string]any{"search": lq.Q != "", "filters": filterNames(lq), "filter": filterValues(lq)})
	if err := audit.RecordAlone(ctx, s.db, s.now(), start); err != nil {
		return 0, err
	}
	n := 0
	var runErr error
	for {
		var rows []store.Customer
		var page []Customer
		runErr = s.db.Read(ctx, func(tx *store.Tx) error {
			var err error
			if rows, err = tx.ListCustomers(ctx, plan.q); err != nil {
				return err
			}
			page, err = s.openPageReveal(ctx, tx, p, plan, rows, run.reveal)
			return err
		})
		if runErr == nil && run.max > 0 && n+len(page) > run.max {
			runErr = &ApprovalRequiredError{Rows: n + len(page), Limit: run.max}
			break
		}
		if runErr == nil && len(page) > 0 {
			ids := make([]string, len(page))
			for i, c := range page {
				ids[i] = c.ID
			}
			pev := event(p, action+".page", "customer", "")
			pev.Details = run.note(map[string]any{"ids": ids, "count": len(ids)})
			pev.Customers = ids
			if run.guard {
				// Many small exports are one large one: they count
				// towards bulk viewing.
				runErr = s.recordRead(ctx, p, pev, ids)
			} else {
				// An approved request: a second person saw its size.
				runErr = audit.RecordAlone(ctx, s.db, s.now(), pev)
			}
		}
		if runErr != nil {
			break
		}
		for _, c := range page {
			if runErr = fn(c); runErr != nil {
				break
			}
			n++
		}
		if runErr != nil || len(rows) < plan.q.Limit {
			break
		}
		plan.q.Before = rows[len(rows)-1].ID
	}
	ev := event(p, action, "customer", "")
	ev.Details = run.note(map[string]any{"rows": n, "search": lq.Q != "", "filters": filterNames(lq), "filter": filterValues(lq)})
	if runErr != nil {
		ev.Outcome, ev.Reason = audit.Failed, "export interrupted"
	}
	// Written even when the caller's context is gone (the client hung up).
	if err := audit.RecordAlone(context.WithoutCancel(ctx), s.db, s.now(), ev); err != nil {
		return n, errors.Join(runErr, err)
	}
	return n, runErr
}

// openPage decrypts a page of rows, drops bigram false positives (checked
// on the plaintext name before masking) and applies p's field policy.
func (s *Service) openPage(ctx context.Context, tx *store.Tx, p access.Principal, plan searchPlan, rows []store.Customer) ([]Customer, error) {
	return s.openPageReveal(ctx, tx, p, plan, rows, nil)
}

// openPageReveal is openPage with the fields of reveal shown unmasked where
// p's policy masks them (an approved export request).
func (s *Service) openPageReveal(ctx context.Context, tx *store.Tx, p access.Principal, plan searchPlan, rows []store.Customer, reveal []string) ([]Customer, error) {
	levels, err := shareLevels(ctx, tx, p, rows, plan.q.Scope.Now)
	if err != nil {
		return nil, err
	}
	out := make([]Customer, 0, len(rows))
	for _, r := range rows {
		c, err := s.openCustomer(ctx, tx, r)
		if err != nil {
			return nil, err
		}
		if plan.nameOnly && !normalize.MatchName(c.Name, plan.text) {
			continue // a bigram false positive
		}
		rel := access.RelationTo(p, r.OwnerID, r.OwnerRole, levels[r.ID])
		if rel == access.RelNone {
			s.log.ErrorContext(ctx, "visibility predicate and relation disagree", "customer", r.ID, "role", p.Role)
			continue
		}
		v := viewCustomer(p, rel, c)
		if len(reveal) > 0 {
			v = unmask(p, rel, c, v, reveal)
		}
		out = append(out, v)
	}
	return out, nil
}

// CountCustomers counts the customers the principal may see that match lq
// (cursor and limit ignored): the same predicate as the list, so a count
// never reveals what a list would not.
func (s *Service) CountCustomers(ctx context.Context, p access.Principal, lq ListQuery) (int, error) {
	const action = "customer.count"
	if err := access.Require(p, access.Read); err != nil {
		return 0, s.deny(ctx, p, action, "customer", "", err)
	}
	lq.Cursor, lq.Limit = "", 0
	plan, err := s.plan(p, lq)
	if errors.Is(err, access.ErrDenied) {
		return 0, s.deny(ctx, p, action, "customer", "", err)
	}
	if err != nil {
		return 0, err
	}
	n, err := s.countPlan(ctx, p, plan)
	if err != nil {
		return 0, err
	}
	return n, s.recordCount(ctx, p, lq, n)
}

// countPlan counts the customers of plan as p would list them.
func (s *Service) countPlan(ctx context.Context, p access.Principal, plan searchPlan) (int, error) {
	if plan.nameOnly {
		// Bigram matches need the plaintext check: count what a list returns.
		n := 0
		plan.q.Limit = 500
		for {
			var rows []store.Customer
			var page []Customer
			err := s.db.Read(ctx, func(tx *store.Tx) error {
				var err error
				if rows, err = tx.ListCustomers(ctx, plan.q); err != nil {
					return err
				}
				page, err = s.openPage(ctx, tx, p, plan, rows)
				return err
			})
			if err != nil {
				return 0, err
			}
			n += len(page)
			if len(rows) < plan.q.Limit {
				break
			}
			plan.q.Before = rows[len(rows)-1].ID
		}
		return n, nil
	}
	var n int
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.CountCustomers(ctx, plan.q)
		return err
	})
	return n, err
}

func (s *Service) recordCount(ctx context.Context, p access.Principal, lq ListQuery, n int) error {
	ev := event(p, "customer.count", "customer", "")
	ev.Details = map[string]any{"count": n, "search": lq.Q != "", "filters": filterNames(lq), "filter": filterValues(lq)}
	return audit.RecordAlone(ctx, s.db, s.now(), ev)
}

func filterNames(lq ListQuery) []string {
	var f []string
	if lq.Pool {
		f = append(f, "pool")
	}
	for _, x := range []struct{ n, v string }{{"owner_id", lq.OwnerID}, {"kind", lq.Kind}, {"level", lq.Level}, {"status", lq.Status}, {"tag", lq.Tag}, {"hidden", lq.Hidden}} {
		if x.v != "" {
			f = append(f, x.n)
		}
	}
	return f
}

// filterValues are the values of the filters that are not personal data:
// codes, an owner's user id, the pool and hidden switches. The search text
// and a tag may name or describe a person: only their use is recorded
// (search, filters).
func filterValues(lq ListQuery) map[string]any {
	f := map[string]any{}
	if lq.Pool {
		f["pool"] = true
	}
	for _, x := range []struct{ n, v string }{{"owner_id", lq.OwnerID}, {"kind", lq.Kind}, {"level", lq.Level}, {"status", lq.Status}, {"hidden", lq.Hidden}} {
		if x.v != "" {
			f[x.n] = x.v
		}
	}
	return f
}

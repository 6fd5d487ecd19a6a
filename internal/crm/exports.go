package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/exportfile"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/pwpolicy"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// Export approval: an export of more rows than export.approval_rows, or
// with revealed fields, is an export request. A second person holding
// approve_export approves it (never the requester); the file is then
// produced once, with the requester's visibility and field policy,
// watermarked, encrypted with age and kept in the database until
// export.download_hours have passed. See docs/design/exports.md.

// ErrApprovalRequired is wrapped by the refusal of a direct export that
// needs a second person's approval.
var ErrApprovalRequired = errors.New("export needs approval")

// ApprovalRequiredError refuses a direct export above the threshold.
type ApprovalRequiredError struct {
	Rows  int // rows the export would have
	Limit int // rows an export may have without approval (0: none)
}

func (e *ApprovalRequiredError) Error() string {
	return fmt.Sprintf("this export has %d rows, more than the %d an export may have without approval: file an export request "+
		"(POST /api/v1/exports, or custos export request) for a second person to approve", e.Rows, e.Limit)
}

// Unwrap makes errors.Is(err, ErrApprovalRequired) true.
func (e *ApprovalRequiredError) Unwrap() error { return ErrApprovalRequired }

// needsApproval applies export.approval_rows (0: every export).
func needsApproval(rows, limit int) bool { return limit == 0 || rows > limit }

// exportSize counts the rows of an export of plan by p and reads the
// approval threshold.
func (s *Service) exportSize(ctx context.Context, p access.Principal, plan searchPlan) (rows, limit int, err error) {
	vals, err := s.EffectiveSettings(ctx)
	if err != nil {
		return 0, 0, err
	}
	rows, err = s.countPlan(ctx, p, plan)
	return rows, vals.Int(settings.ExportApprovalRows), err
}

// Export request statuses.
const (
	ExportPending   = store.ExportPending
	ExportApproved  = store.ExportApproved
	ExportRejected  = store.ExportRejected
	ExportCancelled = store.ExportCancelled
	ExportExpired   = store.ExportExpired
)

// Encryption choices of an export request.
const (
	EncryptPassword  = "password"
	EncryptRecipient = "recipient"
)

// ExportInput asks for an export: the customers of Query (cursor and limit
// ignored) in Format, with the Reveal fields unmasked, encrypted to
// Password or to the age X25519 Recipient (exactly one).
type ExportInput struct {
	Query     ListQuery
	Format    string
	Reveal    []string
	Password  Secret
	Recipient string
}

// Secret is a password in transit. No fmt verb and no log handler prints
// it; Value returns it.
type Secret string

// Value returns the secret.
func (s Secret) Value() string { return string(s) }

func (s Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter so that every verb redacts.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret out of JSON and text encodings too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Person names a user (or the command-line operator) on an export request.
type Person struct {
	UserID string `json:"user_id,omitempty"`
	Actor  string `json:"actor"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
}

// label is how a watermark names the person.
func (pp Person) label() string {
	switch {
	case pp.Email != "" && pp.Name != "":
		return pp.Name + " <" + pp.Email + ">"
	case pp.Email != "":
		return pp.Email
	}
	return pp.Actor
}

// ExportRequest is an export request as its requester and the approvers see
// it: who asked, for what (filter names and their non-personal values;
// whether there is a search, never its text), how many rows, which fields
// unmasked, in which format and encryption. No customer data.
type ExportRequest struct {
	ID          string         `json:"id"`
	Status      string         `json:"status"`
	Format      string         `json:"format"`
	Reveal      []string       `json:"reveal"`
	Rows        int            `json:"rows"`
	Search      bool           `json:"search"`
	FilterNames []string       `json:"filters"`
	Filter      map[string]any `json:"filter"`
	Encryption  string         `json:"encryption"`
	Recipient   string         `json:"recipient,omitempty"`
	Requester   Person         `json:"requester"`
	CreatedAt   time.Time      `json:"created_at"`
	DecidedBy   *Person        `json:"decided_by,omitempty"`
	DecidedAt   *time.Time     `json:"decided_at,omitempty"`
	ExpiresAt   *time.Time     `json:"expires_at,omitempty"`
	FileRows    int            `json:"file_rows"`
	FileSize    int64          `json:"file_size"`
	Downloads   int            `json:"downloads"`
	// Mine is set when the caller is the requester (who alone may cancel
	// and download).
	Mine bool `json:"mine"`
}

// ExportFile is a produced export, ready to download: age ciphertext.
type ExportFile struct {
	RequestID string
	Filename  string
	Data      []byte
}

// storedFilters is the clear description of a request's query.
type storedFilters struct {
	Names  []string       `json:"names"`
	Values map[string]any `json:"values"`
	Search bool           `json:"search"`
}

// sealedRequest is what a pending request keeps sealed under its own data
// key: the query (the search text and a tag may be personal) and the
// password-derived age wrapping key.
type sealedRequest struct {
	Q           string `json:"q,omitempty"`
	OwnerID     string `json:"owner_id,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Level       string `json:"level,omitempty"`
	Status      string `json:"status,omitempty"`
	Tag         string `json:"tag,omitempty"`
	Hidden      string `json:"hidden,omitempty"`
	Pool        bool   `json:"pool,omitempty"`
	PasswordKey string `json:"password_key,omitempty"`
}

func (sr sealedRequest) query() ListQuery {
	return ListQuery{Q: sr.Q, OwnerID: sr.OwnerID, Kind: sr.Kind, Level: sr.Level, Status: sr.Status, Tag: sr.Tag, Hidden: sr.Hidden, Pool: sr.Pool}
}

func sealedAAD(id string) seal.AAD {
	return seal.AAD{Table: "export_requests", Record: id, Field: "sealed"}
}

// revealable are the fields an export may unmask (tags are never masked:
// a masked tag is hidden).
var revealable = []string{access.FieldName, access.FieldPhone, access.FieldEmail, access.FieldAddress, access.FieldIDNumber, access.FieldNotes}

// maxGrowth is how many more rows than when requested an approved export
// may have: 10%, and at least 10. Beyond it the approver would approve
// something other than what they see, so the approval is refused.
func maxGrowth(requested int) int { return requested + max(requested/10, 10) }

// identity names who acts: the user, or the command-line operator by actor.
func identity(p access.Principal) string {
	if p.UserID != "" {
		return "user:" + p.UserID
	}
	return p.Actor
}

func requesterIdentity(r store.ExportRequest) string {
	if r.RequesterID != "" {
		return "user:" + r.RequesterID
	}
	return r.Requester
}

// checkReveal checks that p may export fields unmasked: the reveal
// permission and fields its policy masks. A hidden field never leaves.
func checkReveal(p access.Principal, fields []string) error {
	if len(fields) == 0 {
		return nil
	}
	if err := access.Require(p, access.Reveal); err != nil {
		return err
	}
	for _, f := range fields {
		switch l := p.Fields[f]; {
		case l == access.Hidden:
			return fmt.Errorf("%w: field %s is hidden for role %q; hidden fields are never exported", access.ErrDenied, f, p.Role)
		case l >= access.Readable:
			return &ValidationError{Fields: []FieldError{{Field: "reveal", Message: "field " + f + " is not masked for you: it is exported in clear anyway"}}}
		}
	}
	return nil
}

// unmask shows the reveal fields of c in clear in v (c as p sees it on a
// record reached by rel) where p's policy masks them. A pool customer keeps
// its contact fields masked until claimed, as for a reveal; a hidden field
// stays hidden.
func unmask(p access.Principal, rel access.Relation, c, v Customer, reveal []string) Customer {
	if rel == access.RelPool {
		return v
	}
	still := []string{}
	for _, f := range v.MaskedFields {
		if !slices.Contains(reveal, f) || p.FieldLevel(f, rel) != access.Masked {
			still = append(still, f)
			continue
		}
		switch f {
		case access.FieldName:
			v.Name = c.Name
		case access.FieldPhone:
			v.Phones = c.Phones
		case access.FieldEmail:
			v.Emails = c.Emails
		case access.FieldAddress:
			v.Address = c.Address
		case access.FieldIDNumber:
			v.IDNumber = c.IDNumber
		case access.FieldNotes:
			v.Notes = c.Notes
		default:
			still = append(still, f)
		}
	}
	v.MaskedFields = still
	v.primaries()
	return v
}

// exportColumns and exportRecord render a customer for an export file as
// internal/customercsv does for a direct export (the column names the
// import accepts); a test keeps the two identical.
var exportColumns = []string{"name", "kind", "phone", "email", "address", "id_number", "industry", "level", "source", "status", "tags", "owner", "notes"}

func exportRecord(c Customer, owners map[string]string) []string {
	return []string{c.Name, c.Kind, strings.Join(c.Phones, "; "), strings.Join(c.Emails, "; "), c.Address, c.IDNumber,
		c.Industry, c.Level, c.Source, c.Status, strings.Join(c.Tags, "; "), owners[c.OwnerID], c.Notes}
}

// openUser decrypts a user's name and email, sealed by internal/auth (with
// AES-GCM under the user's data key). An erased or missing user is named
// by id only.
func (s *Service) openUser(ctx context.Context, tx *store.Tx, u store.User) (name, email string, err error) {
	dk, err := s.keys.DataKey(ctx, tx, u.ID, u.KeyVersion)
	if errors.Is(err, keys.ErrKeyDestroyed) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	e, err := seal.GCM{}.Open(dk, seal.AAD{Table: "users", Record: u.ID, Field: "email"}, u.Email)
	if err != nil {
		return "", "", err
	}
	n, err := seal.GCM{}.Open(dk, seal.AAD{Table: "users", Record: u.ID, Field: "name"}, u.Name)
	if err != nil {
		return "", "", err
	}
	return string(n), string(e), nil
}

func (s *Service) person(ctx context.Context, tx *store.Tx, userID, actor string) (Person, error) {
	pp := Person{UserID: userID, Actor: actor}
	if userID == "" {
		return pp, nil
	}
	u, err := tx.GetUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return pp, nil
	}
	if err != nil {
		return Person{}, err
	}
	pp.Name, pp.Email, err = s.openUser(ctx, tx, u)
	return pp, err
}

// ownerEmails maps user ids to emails, for the owner column.
func (s *Service) ownerEmails(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		us, err := tx.Users(ctx)
		if err != nil {
			return err
		}
		for _, u := range us {
			_, email, err := s.openUser(ctx, tx, u)
			if err != nil {
				return err
			}
			out[u.ID] = email
		}
		return nil
	})
	return out, err
}

// view renders a stored request for p.
func (s *Service) view(ctx context.Context, tx *store.Tx, p access.Principal, r store.ExportRequest, now time.Time) (ExportRequest, error) {
	var f storedFilters
	if err := json.Unmarshal([]byte(r.Filters), &f); err != nil {
		return ExportRequest{}, fmt.Errorf("export request %s: filters: %w", r.ID, err)
	}
	out := ExportRequest{ID: r.ID, Status: r.Status, Format: r.Format, Reveal: strings.Fields(r.Reveal), Rows: r.RowCount,
		Search: f.Search, FilterNames: f.Names, Filter: f.Values, Encryption: r.Encryption, Recipient: r.Recipient,
		CreatedAt: r.CreatedAt, DecidedAt: r.DecidedAt, ExpiresAt: r.ExpiresAt, FileRows: r.FileRows, FileSize: r.FileSize,
		Downloads: r.Downloads, Mine: identity(p) == requesterIdentity(r)}
	if out.Reveal == nil {
		out.Reveal = []string{}
	}
	if out.FilterNames == nil {
		out.FilterNames = []string{}
	}
	if out.Filter == nil {
		out.Filter = map[string]any{}
	}
	if r.Status == ExportApproved && r.ExpiresAt != nil && !now.Before(*r.ExpiresAt) {
		out.Status = ExportExpired // the sweep deletes the file soon
	}
	var err error
	if out.Requester, err = s.person(ctx, tx, r.RequesterID, r.Requester); err != nil {
		return ExportRequest{}, err
	}
	if r.DecidedBy != "" {
		d, err := s.person(ctx, tx, r.DeciderID, r.DecidedBy)
		if err != nil {
			return ExportRequest{}, err
		}
		out.DecidedBy = &d
	}
	return out, nil
}

// RequestExport files an export request. Above export.approval_rows rows,
// or with reveal fields, it waits (pending) for a second person's approval;
// otherwise no approval is needed and the file is produced at once (status
// approved, decided by "auto"). The password is never stored: its age
// scrypt wrapping key is derived now and kept sealed until the file exists.
func (s *Service) RequestExport(ctx context.Context, p access.Principal, in ExportInput) (ExportRequest, error) {
	const action = "export.request"
	lq := in.Query
	lq.Cursor, lq.Limit = "", 0
	plan, err := s.exportPlan(ctx, p, lq, action)
	if err != nil {
		return ExportRequest{}, err
	}
	var fe fieldErrs
	if !slices.Contains(exportfile.Formats, in.Format) {
		fe.addf("format", "must be csv or xlsx")
	}
	var reveal []string
	for _, f := range in.Reveal {
		f = strings.TrimSpace(f)
		switch {
		case !slices.Contains(revealable, f):
			fe.addf("reveal", "fields that can be revealed are name, phone, email, address, id_number and notes")
		case !slices.Contains(reveal, f):
			reveal = append(reveal, f)
		}
	}
	slices.Sort(reveal)
	var recipient *age.X25519Recipient
	switch {
	case in.Password != "" && in.Recipient != "":
		fe.addf("password", "give a password or an age recipient, not both")
	case in.Password == "" && in.Recipient == "":
		fe.addf("password", "give a password (the file opens with it) or an age X25519 recipient (age1...)")
	case in.Password != "":
		if err := pwpolicy.Check(in.Password.Value(), "", ""); err != nil {
			fe.add("password", err)
		}
	default:
		if recipient, err = exportfile.ParseRecipient(in.Recipient); err != nil {
			fe.add("age_recipient", err)
		}
	}
	if err := fe.err(); err != nil {
		return ExportRequest{}, err
	}
	if err := checkReveal(p, reveal); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return ExportRequest{}, err
		}
		return ExportRequest{}, s.deny(ctx, p, action, "export", "", err)
	}
	rows, limit, err := s.exportSize(ctx, p, plan)
	if err != nil {
		return ExportRequest{}, err
	}
	if in.Format == exportfile.XLSX && rows > exportfile.MaxXLSXRows {
		return ExportRequest{}, invalid("format", fmt.Sprintf("an XLSX worksheet holds at most %d rows; this export has %d: use csv", exportfile.MaxXLSXRows, rows))
	}
	var reasons []string
	if needsApproval(rows, limit) {
		reasons = append(reasons, "rows")
	}
	if len(reveal) > 0 {
		reasons = append(reasons, "reveal")
	}
	var pk exportfile.PasswordKey
	defer pk.Erase()
	enc := EncryptRecipient
	if in.Password != "" {
		enc = EncryptPassword
		if pk, err = exportfile.DerivePasswordKey(in.Password.Value()); err != nil {
			return ExportRequest{}, err
		}
	}
	fl, err := json.Marshal(storedFilters{Names: filterNames(lq), Values: filterValues(lq), Search: lq.Q != ""})
	if err != nil {
		return ExportRequest{}, err
	}
	now := s.now().UTC()
	r := store.ExportRequest{ID: newID(), RequesterID: p.UserID, Requester: p.Actor, Status: ExportPending, Format: in.Format,
		Reveal: strings.Join(reveal, " "), Filters: string(fl), RowCount: rows, Encryption: enc, CreatedAt: now}
	if recipient != nil {
		r.Recipient = recipient.String()
	}
	ev := event(p, action, "export", r.ID)
	ev.Details = map[string]any{"rows": rows, "limit": limit, "format": r.Format, "reveal": reveal, "encryption": enc,
		"search": lq.Q != "", "filters": filterNames(lq), "filter": filterValues(lq), "approval": reasons}
	if len(reasons) == 0 {
		return s.produceAuto(ctx, p, r, lq, plan, limit, ev, pk, recipient)
	}
	sr := sealedRequest{Q: lq.Q, OwnerID: lq.OwnerID, Kind: lq.Kind, Level: lq.Level, Status: lq.Status, Tag: lq.Tag, Hidden: lq.Hidden, Pool: lq.Pool}
	if enc == EncryptPassword {
		text, err := pk.MarshalText()
		if err != nil {
			return ExportRequest{}, err
		}
		sr.PasswordKey = string(text)
	}
	pt, err := json.Marshal(sr)
	sr.PasswordKey = ""
	if err != nil {
		return ExportRequest{}, err
	}
	defer clear(pt)
	var out ExportRequest
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		dk, err := s.keys.NewDataKey(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if r.Sealed, err = s.cipher.Seal(dk, sealedAAD(r.ID), pt); err != nil {
			return err
		}
		r.KeyVersion = dk.Version
		if err := tx.InsertExportRequest(ctx, r); err != nil {
			return err
		}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return err
		}
		out, err = s.view(ctx, tx, p, r, now)
		return err
	})
	if err != nil {
		return ExportRequest{}, mapStoreErr(err)
	}
	return out, nil
}

// produceAuto produces the file of a request that needs no approval (at
// most limit rows, nothing revealed) and stores it approved, with its
// request and approval events.
func (s *Service) produceAuto(ctx context.Context, p access.Principal, r store.ExportRequest, lq ListQuery, plan searchPlan, limit int,
	reqEv audit.Event, pk exportfile.PasswordKey, recipient *age.X25519Recipient) (ExportRequest, error) {
	var rcpt age.Recipient = recipient
	if r.Encryption == EncryptPassword {
		rcpt = pk.Recipient()
	}
	requester, err := s.personOf(ctx, p)
	if err != nil {
		return ExportRequest{}, err
	}
	// On record first: the production's events follow the request's.
	if err := audit.RecordAlone(ctx, s.db, s.now(), reqEv); err != nil {
		return ExportRequest{}, err
	}
	now := s.now().UTC()
	wm := exportfile.Watermark{ExportID: r.ID, RequestedBy: requester.label(), At: now,
		ApprovedBy: fmt.Sprintf("nobody: not required for %d rows (approval above %d)", r.RowCount, limit)}
	ctx = context.WithoutCancel(ctx) // a client hanging up must not leave half a request
	// No second person saw it: it counts towards bulk viewing like a
	// direct export, and may not grow past the threshold while it streams.
	data, n, err := s.produce(ctx, p, r, lq, plan, exportRun{request: r.ID, max: limit, guard: true}, rcpt, wm)
	if err != nil {
		return ExportRequest{}, err
	}
	var out ExportRequest
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		exp := now.Add(time.Duration(vals.Int(settings.ExportDownloadHours)) * time.Hour)
		r.Status, r.DecidedBy, r.DecidedAt, r.ExpiresAt, r.FileRows, r.FileSize = ExportApproved, "auto", &now, &exp, n, int64(len(data))
		if err := tx.InsertExportRequest(ctx, r); err != nil {
			return err
		}
		if err := tx.InsertExportFile(ctx, r.ID, data, now); err != nil {
			return err
		}
		ev := audit.Event{Actor: "system", RequestID: p.RequestID, Action: "export.approve", ObjectType: "export", ObjectID: r.ID, Outcome: audit.OK,
			Details: map[string]any{"auto": true, "requester": r.Requester, "rows_requested": r.RowCount, "rows": n, "size": len(data),
				"format": r.Format, "encryption": r.Encryption, "expires_at": exp}}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return err
		}
		out, err = s.view(ctx, tx, p, r, now)
		return err
	})
	if err != nil {
		return ExportRequest{}, mapStoreErr(err)
	}
	return out, nil
}

// personOf names principal p.
func (s *Service) personOf(ctx context.Context, p access.Principal) (Person, error) {
	var pp Person
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		pp, err = s.person(ctx, tx, p.UserID, p.Actor)
		return err
	})
	return pp, err
}

// produce streams the export of plan for requester rp through the audited
// export path into a watermarked file of r's format, encrypted to rcpt.
// It returns the ciphertext and the number of rows.
func (s *Service) produce(ctx context.Context, rp access.Principal, r store.ExportRequest, lq ListQuery, plan searchPlan,
	run exportRun, rcpt age.Recipient, wm exportfile.Watermark) ([]byte, int, error) {
	owners, err := s.ownerEmails(ctx)
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	enc, err := exportfile.Encrypt(&buf, rcpt)
	if err != nil {
		return nil, 0, err
	}
	fw, err := exportfile.New(r.Format, enc, wm, exportColumns)
	if err != nil {
		return nil, 0, err
	}
	n, err := s.streamExport(ctx, rp, lq, plan, run, func(c Customer) error {
		return fw.Write(exportRecord(c, owners))
	})
	if err != nil {
		return nil, 0, err
	}
	if err := fw.Close(); err != nil {
		return nil, 0, err
	}
	if err := enc.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), n, nil
}

// loadRequest reads request id (ErrNotFound for a malformed id).
func (s *Service) loadRequest(ctx context.Context, id string) (store.ExportRequest, error) {
	if !validID(id) {
		return store.ExportRequest{}, ErrNotFound
	}
	var r store.ExportRequest
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		r, err = tx.GetExportRequest(ctx, id, false)
		return err
	})
	return r, mapStoreErr(err)
}

// refuse records a refusal of action on request id (permission, not found
// or state) and returns err; other errors are returned as they are.
func (s *Service) refuse(ctx context.Context, p access.Principal, action, id string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.deny(ctx, p, action, "export", id, ErrNotFound)
	case errors.Is(err, ErrNotFound), errors.Is(err, access.ErrDenied), errors.Is(err, ErrConflict):
		return s.deny(ctx, p, action, "export", id, err)
	}
	return err
}

// conflict is a refusal because of the request's (or the world's) state.
func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}

// requesterPrincipal resolves the requester of r as they are now: their
// role, grants and field policy at approval time. A disabled, suspended or
// removed requester gets no file.
func (s *Service) requesterPrincipal(ctx context.Context, r store.ExportRequest, approver access.Principal) (access.Principal, error) {
	if r.RequesterID == "" {
		osUser, ok := strings.CutPrefix(r.Requester, "cli:")
		if !ok || strings.Contains(osUser, " ") {
			return access.Principal{}, conflict("the requester %s cannot be resolved", r.Requester)
		}
		rp := access.Operator(osUser)
		rp.RequestID = approver.RequestID
		return rp, nil
	}
	var u store.User
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		u, err = tx.GetUser(ctx, r.RequesterID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return access.Principal{}, conflict("the requester's account no longer exists: reject the request")
	case err != nil:
		return access.Principal{}, err
	case u.Disabled || u.Suspended:
		return access.Principal{}, conflict("the requester's account is disabled or suspended: reject the request")
	}
	rp, err := s.Principal(ctx, access.Subject{UserID: u.ID, Actor: r.Requester, Role: u.Role})
	if err != nil {
		return access.Principal{}, err
	}
	rp.RequestID = approver.RequestID
	return rp, nil
}

// openSealed opens the sealed part of a pending request.
func (s *Service) openSealed(ctx context.Context, r store.ExportRequest) (sealedRequest, error) {
	var sr sealedRequest
	if r.Sealed == nil {
		return sr, conflict("the request holds no query any more")
	}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		dk, err := s.keys.DataKey(ctx, tx, r.ID, r.KeyVersion)
		if err != nil {
			return err
		}
		pt, err := s.cipher.Open(dk, sealedAAD(r.ID), r.Sealed)
		if err != nil {
			return err
		}
		defer clear(pt)
		return json.Unmarshal(pt, &sr)
	})
	return sr, err
}

// ApproveExport approves a pending export request of someone else (needs
// approve_export; the requester can never approve their own) and produces
// its file once: the requester's export as their visibility and field
// policy are now, with the approved fields unmasked, watermarked with
// requester, approver and time, encrypted with the requester's password or
// recipient. If the requester can no longer export, reveal a field, or run
// the query, or the export grew beyond what was requested, the approval is
// refused with a clear error and the request stays pending.
func (s *Service) ApproveExport(ctx context.Context, p access.Principal, id string) (ExportRequest, error) {
	const action = "export.approve"
	if err := access.Require(p, access.ApproveExport); err != nil {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, err)
	}
	r, err := s.loadRequest(ctx, id)
	if err != nil {
		return ExportRequest{}, s.refuse(ctx, p, action, id, err)
	}
	if identity(p) == requesterIdentity(r) {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id,
			fmt.Errorf("%w: you cannot approve your own export request: another person with approve_export must", access.ErrDenied))
	}
	if r.Status != ExportPending {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, conflict("the request is %s, not pending", r.Status))
	}
	rp, err := s.requesterPrincipal(ctx, r, p)
	if err != nil {
		return ExportRequest{}, s.refuse(ctx, p, action, id, err)
	}
	if !rp.Can(access.Export) {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, conflict("the requester no longer holds the export permission: reject the request"))
	}
	reveal := strings.Fields(r.Reveal)
	for _, f := range reveal {
		// A field now readable is exported in clear anyway; a field now
		// hidden, or masked without the reveal permission, is not.
		if l := rp.Fields[f]; l == access.Hidden || (l == access.Masked && !rp.Can(access.Reveal)) {
			return ExportRequest{}, s.deny(ctx, p, action, "export", id,
				conflict("the requester may no longer reveal the field %s: reject the request", f))
		}
	}
	sr, err := s.openSealed(ctx, r)
	if err != nil {
		return ExportRequest{}, err
	}
	var pk exportfile.PasswordKey
	defer pk.Erase()
	var rcpt age.Recipient
	switch r.Encryption {
	case EncryptPassword:
		if err := pk.UnmarshalText([]byte(sr.PasswordKey)); err != nil {
			return ExportRequest{}, err
		}
		rcpt = pk.Recipient()
	default:
		if rcpt, err = exportfile.ParseRecipient(r.Recipient); err != nil {
			return ExportRequest{}, err
		}
	}
	sr.PasswordKey = ""
	lq := sr.query()
	plan, err := s.plan(rp, lq)
	if err != nil {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, conflict("the requester may no longer run this query: reject the request"))
	}
	n, err := s.countPlan(ctx, rp, plan)
	if err != nil {
		return ExportRequest{}, err
	}
	if n > maxGrowth(r.RowCount) {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id,
			conflict("the export has grown from %d to %d rows since it was requested: reject it and ask for a new request", r.RowCount, n))
	}
	var requester, approver Person
	if err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		if requester, err = s.person(ctx, tx, r.RequesterID, r.Requester); err != nil {
			return err
		}
		approver, err = s.person(ctx, tx, p.UserID, p.Actor)
		return err
	}); err != nil {
		return ExportRequest{}, err
	}
	now := s.now().UTC()
	wm := exportfile.Watermark{ExportID: r.ID, RequestedBy: requester.label(), ApprovedBy: approver.label(), At: now}
	// The approver's client hanging up must not leave half an approval.
	ctx = context.WithoutCancel(ctx)
	data, rows, err := s.produce(ctx, rp, r, lq, plan, exportRun{request: r.ID, reveal: reveal, max: maxGrowth(r.RowCount)}, rcpt, wm)
	if err != nil {
		return ExportRequest{}, err
	}
	var out ExportRequest
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		exp := now.Add(time.Duration(vals.Int(settings.ExportDownloadHours)) * time.Hour)
		d := store.ExportDecision{Status: ExportApproved, DecidedBy: p.Actor, DeciderID: p.UserID, DecidedAt: now, ExpiresAt: &exp,
			FileRows: rows, FileSize: int64(len(data))}
		if err := tx.DecideExportRequest(ctx, r.ID, ExportPending, d); errors.Is(err, store.ErrNotFound) {
			return conflict("the request was decided meanwhile")
		} else if err != nil {
			return err
		}
		if err := tx.InsertExportFile(ctx, r.ID, data, now); err != nil {
			return err
		}
		if err := tx.DestroyExportKey(ctx, r.ID, now); err != nil {
			return err
		}
		ev := event(p, action, "export", r.ID)
		ev.Details = map[string]any{"requester": r.Requester, "rows_requested": r.RowCount, "rows": rows, "size": len(data),
			"format": r.Format, "reveal": reveal, "encryption": r.Encryption, "expires_at": exp}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return err
		}
		r.Status, r.DecidedBy, r.DeciderID, r.DecidedAt, r.ExpiresAt, r.FileRows, r.FileSize, r.Sealed = ExportApproved, p.Actor, p.UserID, &now, &exp, rows, d.FileSize, nil
		out, err = s.view(ctx, tx, p, r, now)
		return err
	})
	if errors.Is(err, ErrConflict) {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, err)
	}
	if err != nil {
		return ExportRequest{}, err
	}
	s.keys.Forget(r.ID, r.KeyVersion)
	return out, nil
}

// RejectExport rejects a pending export request of someone else (needs
// approve_export). Its sealed query and key are destroyed.
func (s *Service) RejectExport(ctx context.Context, p access.Principal, id string) (ExportRequest, error) {
	const action = "export.reject"
	if err := access.Require(p, access.ApproveExport); err != nil {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, err)
	}
	return s.close(ctx, p, action, id, ExportRejected, func(r store.ExportRequest) error {
		if identity(p) == requesterIdentity(r) {
			return fmt.Errorf("%w: a second person decides on an export request; cancel your own instead", access.ErrDenied)
		}
		return nil
	})
}

// CancelExport withdraws the caller's own pending export request.
func (s *Service) CancelExport(ctx context.Context, p access.Principal, id string) (ExportRequest, error) {
	return s.close(ctx, p, "export.cancel", id, ExportCancelled, func(r store.ExportRequest) error {
		if identity(p) == requesterIdentity(r) {
			return nil
		}
		if p.Can(access.ApproveExport) {
			return fmt.Errorf("%w: only the requester may cancel an export request; reject it instead", access.ErrDenied)
		}
		return ErrNotFound
	})
}

// close moves a pending request to status (rejected or cancelled) after
// check, destroying its sealed part, on record as action.
func (s *Service) close(ctx context.Context, p access.Principal, action, id, status string, check func(store.ExportRequest) error) (ExportRequest, error) {
	r, err := s.loadRequest(ctx, id)
	if err != nil {
		return ExportRequest{}, s.refuse(ctx, p, action, id, err)
	}
	if err := check(r); err != nil {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, err)
	}
	now := s.now().UTC()
	var out ExportRequest
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		err := tx.DecideExportRequest(ctx, id, ExportPending, store.ExportDecision{Status: status, DecidedBy: p.Actor, DeciderID: p.UserID, DecidedAt: now})
		if errors.Is(err, store.ErrNotFound) {
			return conflict("the request is %s, not pending", r.Status)
		}
		if err != nil {
			return err
		}
		if err := tx.DestroyExportKey(ctx, id, now); err != nil {
			return err
		}
		ev := event(p, action, "export", id)
		ev.Details = map[string]any{"requester": r.Requester, "rows": r.RowCount}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return err
		}
		r.Status, r.DecidedBy, r.DeciderID, r.DecidedAt, r.Sealed = status, p.Actor, p.UserID, &now, nil
		out, err = s.view(ctx, tx, p, r, now)
		return err
	})
	if errors.Is(err, ErrConflict) {
		return ExportRequest{}, s.deny(ctx, p, action, "export", id, err)
	}
	if err != nil {
		return ExportRequest{}, err
	}
	s.keys.Forget(id, r.KeyVersion)
	return out, nil
}

// visible reports whether p may see request r: its requester, and the
// holders of approve_export.
func visible(p access.Principal, r store.ExportRequest) bool {
	return identity(p) == requesterIdentity(r) || p.Can(access.ApproveExport)
}

// GetExportRequest returns one request to its requester or an approver.
func (s *Service) GetExportRequest(ctx context.Context, p access.Principal, id string) (ExportRequest, error) {
	r, err := s.loadRequest(ctx, id)
	if err == nil && !visible(p, r) {
		err = ErrNotFound
	}
	if err != nil {
		return ExportRequest{}, s.refuse(ctx, p, "export.view", id, err)
	}
	var out ExportRequest
	err = s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		out, err = s.view(ctx, tx, p, r, s.now().UTC())
		return err
	})
	return out, err
}

// ExportListQuery selects export requests: Status ("" for all), and a page
// (Cursor from the previous page's Next, Limit 1..200, default 50).
type ExportListQuery struct {
	Status string
	Cursor string
	Limit  int
}

var exportStatuses = []string{ExportPending, ExportApproved, ExportRejected, ExportCancelled, ExportExpired}

// ListExportRequests lists, newest first, the caller's own requests and,
// for holders of approve_export, the pending requests of everyone else
// (the approval queue).
func (s *Service) ListExportRequests(ctx context.Context, p access.Principal, q ExportListQuery) (Page[ExportRequest], error) {
	var fe fieldErrs
	if q.Status != "" && !slices.Contains(exportStatuses, q.Status) {
		fe.addf("status", "must be one of %s", strings.Join(exportStatuses, ", "))
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 0 || limit > MaxPageSize:
		fe.addf("limit", "must be between 1 and %d", MaxPageSize)
	}
	before, err := decodeCursor(q.Cursor)
	if err != nil {
		return Page[ExportRequest]{}, err
	}
	if err := fe.err(); err != nil {
		return Page[ExportRequest]{}, err
	}
	sq := store.ExportQuery{RequesterID: p.UserID, Actor: p.Actor, OthersPending: p.Can(access.ApproveExport), Status: q.Status, Before: before, Limit: limit}
	if p.UserID == "" && p.Actor == "" {
		return Page[ExportRequest]{Items: []ExportRequest{}}, nil
	}
	out := Page[ExportRequest]{Items: []ExportRequest{}}
	now := s.now().UTC()
	err = s.db.Read(ctx, func(tx *store.Tx) error {
		rs, err := tx.ListExportRequests(ctx, sq)
		if err != nil {
			return err
		}
		for _, r := range rs {
			v, err := s.view(ctx, tx, p, r, now)
			if err != nil {
				return err
			}
			out.Items = append(out.Items, v)
		}
		if len(rs) == limit {
			out.Next = encodeCursor(rs[len(rs)-1].ID)
		}
		return nil
	})
	return out, err
}

// DownloadExport hands the encrypted file of an approved request to its
// requester (who must still hold the export permission), until it expires.
// Every download is on record before the file leaves.
func (s *Service) DownloadExport(ctx context.Context, p access.Principal, id string) (ExportFile, error) {
	const action = "export.download"
	if err := access.Require(p, access.Export); err != nil {
		return ExportFile{}, s.deny(ctx, p, action, "export", id, err)
	}
	r, err := s.loadRequest(ctx, id)
	if err == nil && !visible(p, r) {
		err = ErrNotFound
	}
	if err != nil {
		return ExportFile{}, s.refuse(ctx, p, action, id, err)
	}
	if identity(p) != requesterIdentity(r) {
		return ExportFile{}, s.deny(ctx, p, action, "export", id, fmt.Errorf("%w: only the requester may download an export", access.ErrDenied))
	}
	now := s.now().UTC()
	switch {
	case r.Status == ExportApproved && r.ExpiresAt != nil && !now.Before(*r.ExpiresAt), r.Status == ExportExpired:
		return ExportFile{}, s.deny(ctx, p, action, "export", id, conflict("the export expired; file a new request"))
	case r.Status != ExportApproved:
		return ExportFile{}, s.deny(ctx, p, action, "export", id, conflict("the request is %s: there is no file", r.Status))
	}
	var f ExportFile
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		data, err := tx.ExportFile(ctx, id)
		if err != nil {
			return err
		}
		n, err := tx.CountExportDownload(ctx, id)
		if err != nil {
			return err
		}
		ev := event(p, action, "export", id)
		ev.Details = map[string]any{"size": len(data), "download": n, "rows": r.FileRows, "format": r.Format}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return err
		}
		f = ExportFile{RequestID: id, Filename: "custos-export-" + id + "." + r.Format + ".age", Data: data}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return ExportFile{}, s.deny(ctx, p, action, "export", id, conflict("the export expired; file a new request"))
	}
	if err != nil {
		return ExportFile{}, err
	}
	return f, nil
}

// SweepExports deletes the files of approved requests past their expiry
// and marks them expired (audited). It returns how many expired.
func (s *Service) SweepExports(ctx context.Context) (int, error) {
	n := 0
	for {
		now := s.now().UTC()
		var due []store.ExportRequest
		if err := s.db.Read(ctx, func(tx *store.Tx) error {
			var err error
			due, err = tx.DueExports(ctx, now, 100)
			return err
		}); err != nil {
			return n, err
		}
		for _, r := range due {
			err := s.db.Write(ctx, func(tx *store.Tx) error {
				if err := tx.ExpireExport(ctx, r.ID); err != nil {
					return err
				}
				_, err := audit.Record(ctx, tx, now, audit.Event{Actor: "system", Action: "export.expire", ObjectType: "export", ObjectID: r.ID,
					Outcome: audit.OK, Details: map[string]any{"requester": r.Requester, "downloads": r.Downloads}})
				return err
			})
			switch {
			case errors.Is(err, store.ErrNotFound): // another node was first
			case err != nil:
				return n, err
			default:
				n++
			}
		}
		if len(due) < 100 {
			return n, nil
		}
	}
}

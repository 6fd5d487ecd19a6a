package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/csvio"
	"github.com/custos/custos/internal/customercsv"
	"github.com/custos/custos/internal/exportfile"
)

// The data pages: the import of a CSV file (upload, preview, confirm,
// result) and the export requests (list, request, approve or reject,
// cancel, download). The import parses a file exactly as `custos import
// customers` does (internal/customercsv) and previews it with a dry run of
// the guarded path (crm.CheckImport), which writes nothing but its audit
// event; the confirmation imports the rows that were previewed
// (crm.ImportCustomers). The exports call the same service methods as the
// API's handlers_exports.go.

// dataPages are the area's handlers with the uploads waiting for their
// confirmation.
type dataPages struct {
	s       *Server
	pending *pendingImports
}

// uiDataRoutes are the pages of this area (see ui_app.go).
func (s *Server) uiDataRoutes() []UIRoute {
	d := &dataPages{s: s, pending: newPendingImports(s.now)}
	return []UIRoute{
		{Method: "GET", Pattern: "/import", Handler: d.importForm},
		{Method: "POST", Pattern: "/import", Handler: d.importUpload},
		{Method: "GET", Pattern: "/import/template.csv", Handler: d.importTemplate},
		{Method: "GET", Pattern: "/import/preview", Handler: d.importPreview},
		{Method: "POST", Pattern: "/import/confirm", Handler: d.importConfirm},
		{Method: "POST", Pattern: "/import/discard", Handler: d.importDiscard},
		{Method: "GET", Pattern: "/import/result", Handler: d.importResult},
		{Method: "GET", Pattern: "/exports", Handler: d.exportList},
		{Method: "GET", Pattern: "/exports/new", Handler: d.exportForm},
		{Method: "POST", Pattern: "/exports/new", Handler: d.exportCreate},
		{Method: "GET", Pattern: "/exports/{id}", Handler: d.exportDetail},
		{Method: "POST", Pattern: "/exports/{id}/approve", Handler: d.exportApprove},
		{Method: "POST", Pattern: "/exports/{id}/reject", Handler: d.exportReject},
		{Method: "POST", Pattern: "/exports/{id}/cancel", Handler: d.exportCancel},
		{Method: "GET", Pattern: "/exports/{id}/download", Handler: d.exportDownload},
	}
}

// --- uploads waiting for their confirmation ---------------------------------

// pendingImports keeps each user's parsed upload between its preview and
// its confirmation, and then the outcome for the result page.
//
// Where the upload lives: in this process's memory only, never in the
// database or a file (the frame parses the multipart form in memory too).
// We chose this over sealing it under an ephemeral key: the key would sit
// in the same memory as the ciphertext, so it would add nothing against
// someone who can read the process, and memory is lost on restart, which
// is what a pending upload deserves. The bounds: one upload per user (a new
// one replaces it), bound to the session that uploaded it (its CSRF token,
// hashed) and to a random token carried by the preview's form, dropped 15
// minutes after the upload (by a timer, also when nobody imports again),
// at most pendingMax uploads and pendingMaxBytes held at once (counting
// what the parsed rows take), the oldest dropped first; files of at most
// webImportMaxRows rows, importParsers parsed at a time. A confirmation takes the upload out, so it imports once.
type pendingImports struct {
	mu     sync.Mutex
	now    func() time.Time
	byUser map[string]*pendingImport
}

const (
	pendingTTL      = 15 * time.Minute
	pendingMax      = 32
	pendingMaxBytes = 96 << 20

	// webImportMaxRows bounds an import through the pages; a larger file
	// is for `custos import`.
	webImportMaxRows = 20000
	importParsers    = 2
)

// importParsing admits importParsers uploads to be parsed at once.
var importParsing = make(chan struct{}, importParsers)

// pendingImport is one user's upload (parsed), or, once confirmed, its
// outcome (Parsed is then empty).
type pendingImport struct {
	token    string
	session  [32]byte
	at       time.Time
	size     int64
	Name     string // the file's name as uploaded
	Encoding string
	Parsed   customercsv.Result
	Owners   map[string]string // owner id → the email the file gave
	Check    crm.ImportCheck
	Result   *crm.ImportResult
	Atomic   bool
}

func newPendingImports(now func() time.Time) *pendingImports {
	return &pendingImports{now: now, byUser: map[string]*pendingImport{}}
}

// sessionKey binds an upload to the session whose page uploaded it.
func uploadSession(pg *page) [32]byte { return sha256.Sum256([]byte(pg.CSRF)) }

// put keeps an upload for user, replacing theirs, and returns its token.
func (pi *pendingImports) put(user string, e *pendingImport) string {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	now := pi.now()
	e.token, e.at = newToken(), now
	delete(pi.byUser, user)
	var total int64
	for u, x := range pi.byUser {
		if now.Sub(x.at) >= pendingTTL {
			delete(pi.byUser, u)
			continue
		}
		total += x.size
	}
	for len(pi.byUser) > 0 && (len(pi.byUser) >= pendingMax || total+e.size > pendingMaxBytes) {
		oldest := ""
		for u, x := range pi.byUser {
			if oldest == "" || x.at.Before(pi.byUser[oldest].at) {
				oldest = u
			}
		}
		total -= pi.byUser[oldest].size
		delete(pi.byUser, oldest)
	}
	pi.byUser[user] = e
	// Dropped when it expires even if nobody touches the store again.
	time.AfterFunc(pendingTTL, func() { pi.expire(user, e) })
	return e.token
}

// expire removes the user's entry if it is still e.
func (pi *pendingImports) expire(user string, e *pendingImport) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	if pi.byUser[user] == e {
		delete(pi.byUser, user)
	}
}

// get returns (a copy of) the user's upload or outcome if the session is
// the one that uploaded it and it has not expired.
func (pi *pendingImports) get(user string, session [32]byte) (*pendingImport, bool) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	e, ok := pi.byUser[user]
	if !ok || e.session != session {
		return nil, false
	}
	if pi.now().Sub(e.at) >= pendingTTL {
		delete(pi.byUser, user)
		return nil, false
	}
	c := *e
	return &c, true
}

// take removes the user's upload for its import when token is its token;
// the entry stays, empty, for the outcome (see done).
func (pi *pendingImports) take(user string, session [32]byte, token string) (*pendingImport, bool) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	e, ok := pi.byUser[user]
	if !ok || e.session != session || e.Result != nil || pi.now().Sub(e.at) >= pendingTTL ||
		subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
		return nil, false
	}
	taken := *e
	e.Parsed, e.Owners, e.size = customercsv.Result{}, nil, 0
	e.token = "" // no second confirmation
	return &taken, true
}

// done records the outcome of the user's import for the result page.
func (pi *pendingImports) done(user string, session [32]byte, res crm.ImportResult, atomic bool) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	pi.byUser[user] = &pendingImport{session: session, at: pi.now(), Result: &res, Atomic: atomic}
}

// drop forgets the user's upload.
func (pi *pendingImports) drop(user string, session [32]byte) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	if e, ok := pi.byUser[user]; ok && e.session == session {
		delete(pi.byUser, user)
	}
}

// --- the import ---------------------------------------------------------------

// importEncodings are the encodings the upload form offers, as the command
// line's --encoding.
var importEncodings = []string{csvio.EncodingAuto, csvio.EncodingUTF8, csvio.EncodingGBK, csvio.EncodingGB18030}

const (
	previewRows   = 50  // rows the preview shows
	maxIssuesShow = 200 // row errors a page lists
	previewCell   = 80  // characters of a long value the preview shows
)

// importFormData is the upload form.
type importFormData struct {
	Encodings []string
	Encoding  string
	FileError string // detail of a file that could not be read (English, no values)
}

// requireImport lets the import pages through for those who may import;
// the refusal of anyone else goes through the guarded path, which records
// it.
func (d *dataPages) requireImport(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal) bool {
	if p.Can(access.Import) && p.Can(access.Create) {
		return true
	}
	_, err := d.s.crm.CheckImport(r.Context(), p, nil, nil)
	if err == nil {
		err = access.ErrDenied
	}
	d.s.uiFail(w, r, pg, err)
	return false
}

func (d *dataPages) importForm(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/import", appOpts{active: "import"})
	if !ok || !d.requireImport(w, r, pg, p) {
		return
	}
	switch r.URL.Query().Get("m") {
	case "expired":
		pg.Error = pg.msg("data.import.expired")
	case "discarded":
		pg.Notice = pg.msg("data.import.discarded")
	}
	pg.Data = &importFormData{Encodings: importEncodings, Encoding: csvio.EncodingAuto}
	d.s.render(w, r, http.StatusOK, "data_import", pg)
}

// importUpload parses the file, checks it with a dry run and keeps it for
// the preview.
func (d *dataPages) importUpload(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/import", appOpts{active: "import"})
	if !ok || !d.requireImport(w, r, pg, p) {
		return
	}
	ctx := r.Context()
	fd := &importFormData{Encodings: importEncodings, Encoding: r.FormValue("encoding")}
	pg.Data = fd
	fail := func(key string, detail string) {
		pg.Errors = map[string]string{"file": pg.msg(key)}
		pg.Error = pg.msg("data.import.bad_upload")
		fd.FileError = detail
		d.s.render(w, r, http.StatusBadRequest, "data_import", pg)
	}
	if !slices.Contains(importEncodings, fd.Encoding) {
		pg.Errors = map[string]string{"encoding": pg.msg("data.import.bad_encoding")}
		pg.Error = pg.msg("data.import.bad_upload")
		fd.Encoding = csvio.EncodingAuto
		d.s.render(w, r, http.StatusBadRequest, "data_import", pg)
		return
	}
	if r.MultipartForm == nil || len(r.MultipartForm.File["file"]) != 1 || r.MultipartForm.File["file"][0].Size == 0 {
		fail("data.import.no_file", "")
		return
	}
	fh := r.MultipartForm.File["file"][0]
	f, err := fh.Open()
	if err != nil {
		d.s.uiInternal(w, r, pg, err)
		return
	}
	defer f.Close()
	// Parsing holds the whole file as rows: at most importParsers at once.
	select {
	case importParsing <- struct{}{}:
		defer func() { <-importParsing }()
	case <-ctx.Done():
		return
	}
	owners, unknown := map[string]string{}, map[string]error{}
	parsed, err := customercsv.Parse(f, fd.Encoding, func(email string) (string, error) {
		if err, ok := unknown[email]; ok {
			return "", err // asked once per upload, not once per row
		}
		u, err := d.s.auth.FindUserByEmail(ctx, email)
		if err != nil {
			unknown[email] = err
			return "", err
		}
		owners[u.ID] = email
		return u.ID, nil
	})
	if err == nil && len(parsed.Rows)+len(parsed.Errors) > webImportMaxRows {
		err = csvio.ErrTooManyRows
	}
	if err != nil {
		// A header or file problem: the messages quote header cells at
		// most, never a value (internal/csvio).
		fail(fileProblem(err), err.Error())
		return
	}
	check, err := d.s.crm.CheckImport(ctx, p, parsed.Rows, parsed.Errors)
	if err != nil {
		d.s.uiFail(w, r, pg, err)
		return
	}
	// What the upload holds is its rows, not its bytes: about 300 bytes a
	// row once parsed, whatever the file's size.
	size := max(fh.Size, int64(len(parsed.Rows)+len(parsed.Errors))*300)
	d.pending.put(p.UserID, &pendingImport{session: uploadSession(pg), size: size, Name: fh.Filename,
		Encoding: parsed.Encoding, Parsed: parsed, Owners: owners, Check: check})
	uiRedirect(w, r, "/import/preview")
}

// fileProblem names why a file could not be read at all.
func fileProblem(err error) string {
	msg := strings.ToLower(err.Error())
	for _, fp := range []struct{ fragment, key string }{
		{"file is empty", "data.import.file.empty"},
		{"utf-16", "data.import.file.utf16"},
		{"unknown column", "data.import.file.unknown_column"},
		{"duplicate column", "data.import.file.duplicate_column"},
		{"required column", "data.import.file.no_name"},
		{"empty header", "data.import.file.empty_header"},
		{"too many rows", "data.import.file.too_many"},
	} {
		if strings.Contains(msg, fp.fragment) {
			return fp.key
		}
	}
	return "data.import.file.unreadable"
}

// previewRow is one row as it will be imported.
type previewRow struct {
	Line                                      int
	Problem                                   string // translated, "" when valid
	Name, Kind, Phones, Emails, Address       string
	IDNumber, Industry, Level, Source, Status string
	Tags, Owner, Notes                        string
}

// rowIssue is one refused row of a report.
type rowIssue struct {
	Line           int
	Field, Message string // translated
}

// importPreviewData is the preview of an upload.
type importPreviewData struct {
	Name, Encoding, Token string
	Total, Valid, Invalid int
	Rows                  []previewRow
	MoreRows              int // rows not shown
	Issues                []rowIssue
	MoreIssues            int
}

func (d *dataPages) importPreview(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/import/preview", appOpts{active: "import", customerData: true})
	if !ok || !d.requireImport(w, r, pg, p) {
		return
	}
	e, found := d.pending.get(p.UserID, uploadSession(pg))
	if !found || e.Result != nil {
		uiRedirect(w, r, "/import?m=expired")
		return
	}
	bad := map[int][]string{}
	for _, re := range e.Check.Errors {
		for _, part := range splitRowMsg(re.Msg) {
			bad[re.Line] = append(bad[re.Line], rowIssueText(pg, part))
		}
	}
	data := &importPreviewData{Name: e.Name, Encoding: e.Encoding, Token: e.token, Total: e.Check.Rows, Valid: e.Check.Valid,
		Invalid: len(bad)}
	data.Issues, data.MoreIssues = rowIssues(pg, e.Check.Errors)
	for i, row := range e.Parsed.Rows {
		if i == previewRows {
			data.MoreRows = len(e.Parsed.Rows) - i
			break
		}
		f := row.Fields
		owner := ""
		if f.OwnerID != nil {
			owner = e.Owners[*f.OwnerID]
		}
		data.Rows = append(data.Rows, previewRow{Line: row.Line, Problem: strings.Join(bad[row.Line], "; "),
			Name: dataCell(f.Name), Kind: pg.Code("kind", dataStr(f.Kind)), Phones: dataCells(f.Phones), Emails: dataCells(f.Emails),
			Address: dataCell(f.Address), IDNumber: dataCell(f.IDNumber), Industry: pg.Code("industry", dataStr(f.Industry)),
			Level: pg.Code("level", dataStr(f.Level)), Source: pg.Code("source", dataStr(f.Source)), Status: pg.Code("status", dataStr(f.Status)),
			Tags: dataCells(f.Tags), Owner: owner, Notes: dataCell(f.Notes)})
	}
	pg.Data = data
	d.s.render(w, r, http.StatusOK, "data_import_preview", pg)
}

func dataStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// cell is a value as the preview shows it: long ones shortened.
func dataCell(s *string) string {
	v := dataStr(s)
	if utf8.RuneCountInString(v) <= previewCell {
		return v
	}
	return string([]rune(v)[:previewCell-1]) + "…"
}

func dataCells(l *[]string) string {
	if l == nil {
		return ""
	}
	v := strings.Join(*l, "; ")
	return dataCell(&v)
}

// importConfirm imports the rows of the user's upload that pass.
func (d *dataPages) importConfirm(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/import", appOpts{active: "import"})
	if !ok || !d.requireImport(w, r, pg, p) {
		return
	}
	sk := uploadSession(pg)
	e, found := d.pending.take(p.UserID, sk, r.PostForm.Get("token"))
	if !found {
		pg.BackHref = "/import"
		d.s.uiErrorPage(w, r, pg, http.StatusNotFound, "data.import.expired")
		return
	}
	atomic := r.PostForm.Get("atomic") == "1"
	res, err := d.s.crm.ImportCustomers(r.Context(), p, e.Parsed.Rows, e.Parsed.Errors, crm.ImportOptions{Atomic: atomic})
	if err != nil {
		d.pending.drop(p.UserID, sk)
		pg.BackHref = "/import"
		d.s.uiFail(w, r, pg, err)
		return
	}
	d.pending.done(p.UserID, sk, res, atomic)
	uiRedirect(w, r, "/import/result")
}

func (d *dataPages) importDiscard(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/import", appOpts{active: "import"})
	if !ok {
		return
	}
	d.pending.drop(p.UserID, uploadSession(pg))
	uiRedirect(w, r, "/import?m=discarded")
}

// importResultData is the outcome of an import.
type importResultData struct {
	Rows, Imported, Refused int
	Atomic, Nothing         bool
	Issues                  []rowIssue
	MoreIssues              int
}

func (d *dataPages) importResult(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/import/result", appOpts{active: "import"})
	if !ok || !d.requireImport(w, r, pg, p) {
		return
	}
	e, found := d.pending.get(p.UserID, uploadSession(pg))
	if !found || e.Result == nil {
		uiRedirect(w, r, "/import")
		return
	}
	res := e.Result
	data := &importResultData{Rows: res.Rows, Imported: res.Imported, Refused: res.Rows - res.Imported, Atomic: e.Atomic,
		Nothing: res.Imported == 0}
	data.Issues, data.MoreIssues = rowIssues(pg, res.Errors)
	pg.Data = data
	d.s.render(w, r, http.StatusOK, "data_import_result", pg)
}

// importTemplate is an empty file with the columns the import reads,
// headed in the page's language (the import knows both).
func (d *dataPages) importTemplate(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "", appOpts{active: "import"})
	if !ok || !d.requireImport(w, r, pg, p) {
		return
	}
	header := make([]string, len(customercsv.Columns))
	for i, c := range customercsv.Columns {
		header[i] = pg.msg(fmt.Sprintf("data.import.col.%s", c))
	}
	setPageHeaders(w)
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="custos-import-template.csv"`)
	cw := csvio.NewWriter(w, true)
	err := cw.Write(header)
	if err == nil {
		err = cw.Flush()
	}
	if err != nil {
		d.s.log.WarnContext(r.Context(), "import template cut", "request_id", requestID(r.Context()), "err", err)
	}
}

// --- row errors -----------------------------------------------------------------

type issuePart struct{ field, msg string }

// fieldSegment is a field named at the start of a row error: name,
// phones[0], contact 1, interaction 2.
var fieldSegment = regexp.MustCompile(`^(?:[a-z_]+(?:\[\d+\])?|(?:contact|interaction) \d+)$`)

// splitRowMsg splits a row error ("phones[0]: msg; name: msg", "contact 1:
// name: msg", "record has 3 fields ...") into its fields and messages.
func splitRowMsg(msg string) []issuePart {
	var out []issuePart
	for part := range strings.SplitSeq(msg, "; ") {
		var path []string
		rest := part
		for {
			head, tail, ok := strings.Cut(rest, ": ")
			if !ok || !fieldSegment.MatchString(head) {
				break
			}
			path, rest = append(path, head), tail
		}
		out = append(out, issuePart{field: strings.Join(path, ": "), msg: rest})
	}
	return out
}

// fieldLabel translates a field path of a row error.
func rowFieldLabel(pg *page, path string) string {
	if path == "" {
		return pg.msg("data.import.whole_row")
	}
	var labels []string
	for seg := range strings.SplitSeq(path, ": ") {
		name, n, _ := strings.Cut(seg, " ")
		name, _, _ = strings.Cut(name, "[")
		switch {
		case name == "contact" && n != "":
			labels = append(labels, pg.msg("data.import.contact", n))
		case name == "interaction" && n != "":
			labels = append(labels, pg.msg("data.import.interaction", n))
		case pg.loc.has("field." + name):
			labels = append(labels, pg.msg("field."+name))
		default:
			labels = append(labels, name)
		}
	}
	return strings.Join(labels, " · ")
}

// rowMessages map fragments of the import's row messages to catalogue
// keys, for the languages other than the messages' own English.
var rowMessages = []struct{ fragment, key string }{
	{"is empty", "valid.required"},
	{"no such", "valid.user"},
	{"not a valid id", "valid.id"},
	{"assign permission", "data.import.err.assign"},
	{"cannot be set by this import", "data.import.err.assign"},
	{"access denied", "data.import.err.denied"},
	{"fields, header has", "data.import.err.field_count"},
	{"wrong number of fields", "data.import.err.field_count"},
	{"utf-8", "data.import.err.encoding"},
	{"gbk", "data.import.err.encoding"},
	{`bare "`, "data.import.err.quoting"},
	{`" in quoted field`, "data.import.err.quoting"},
	{"malformed csv", "data.import.err.quoting"},
	{"bytes, limit is", "valid.too_long"},
	{"must be", "data.import.err.choice"},
}

// rowMessage translates the message of a row error; English keeps the
// import's own words, the most precise.
func rowMessage(pg *page, msg string) string {
	if pg.Lang == langEN {
		return msg
	}
	lower := strings.ToLower(msg)
	for _, rm := range rowMessages {
		if strings.Contains(lower, rm.fragment) {
			return pg.msg(rm.key)
		}
	}
	return validationMessage(pg, msg)
}

func rowIssueText(pg *page, part issuePart) string {
	return rowFieldLabel(pg, part.field) + pg.msg("valid.sep") + rowMessage(pg, part.msg)
}

// rowIssues is a report of row errors, by line, at most maxIssuesShow.
func rowIssues(pg *page, errs []crm.RowError) ([]rowIssue, int) {
	sorted := slices.Clone(errs)
	slices.SortStableFunc(sorted, func(a, b crm.RowError) int { return a.Line - b.Line })
	var out []rowIssue
	more := 0
	for _, re := range sorted {
		for _, part := range splitRowMsg(re.Msg) {
			if len(out) == maxIssuesShow {
				more++
				continue
			}
			out = append(out, rowIssue{Line: re.Line, Field: rowFieldLabel(pg, part.field), Message: rowMessage(pg, part.msg)})
		}
	}
	return out, more
}

// --- exports ----------------------------------------------------------------------

// exportView is an export request as the pages show it.
type exportView struct {
	crm.ExportRequest
	Approvable bool // the viewer may approve or reject it
	Filters    []exportFilter
}

// exportFilter is one filter of a request, translated.
type exportFilter struct{ Label, Value string }

// Badge is the badge class of the request's status.
func (v exportView) Badge() string {
	switch v.Status {
	case crm.ExportPending:
		return "badge-warn"
	case crm.ExportApproved:
		return "badge-ok"
	case crm.ExportRejected:
		return "badge-error"
	}
	return "badge-muted"
}

// Downloadable says the requester may download the file now.
func (v exportView) Downloadable() bool { return v.Mine && v.Status == crm.ExportApproved }

func viewExport(p access.Principal, r crm.ExportRequest) exportView {
	return exportView{ExportRequest: r, Approvable: !r.Mine && r.Status == crm.ExportPending && p.Can(access.ApproveExport)}
}

// exportListData is the list of export requests.
type exportListData struct {
	Items             []exportView
	Status, NextHref  string
	Statuses          []string
	CanRequest, Paged bool
}

var exportStatusList = []string{crm.ExportPending, crm.ExportApproved, crm.ExportRejected, crm.ExportCancelled, crm.ExportExpired}

func (d *dataPages) exportList(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/exports", appOpts{active: "exports"})
	if !ok {
		return
	}
	if !p.Can(access.Export) && !p.Can(access.ApproveExport) {
		d.s.uiFail(w, r, pg, access.ErrDenied)
		return
	}
	q := r.URL.Query()
	lq := crm.ExportListQuery{Status: q.Get("status"), Cursor: q.Get("cursor")}
	page, err := d.s.crm.ListExportRequests(r.Context(), p, lq)
	if err != nil {
		d.s.uiFail(w, r, pg, err)
		return
	}
	data := &exportListData{Status: lq.Status, Statuses: exportStatusList, CanRequest: p.Can(access.Export), Paged: lq.Cursor != ""}
	for _, it := range page.Items {
		data.Items = append(data.Items, viewExport(p, it))
	}
	if page.Next != "" {
		v := url.Values{"cursor": {page.Next}}
		if lq.Status != "" {
			v.Set("status", lq.Status)
		}
		data.NextHref = "/exports?" + v.Encode()
	}
	pg.Data = data
	d.s.render(w, r, http.StatusOK, "data_exports", pg)
}

// exportFormData is the request form; it never holds the password.
type exportFormData struct {
	Q, Owner, Kind, Level, Status, Tag string
	Format, Recipient                  string
	Reveal                             []string // chosen
	Revealable                         []string // fields masked for the viewer that they may reveal
	Formats                            []string
	Levels, Statuses, Kinds            []string
}

// revealable are the fields an export may unmask (crm.revealable).
var exportRevealable = []string{access.FieldName, access.FieldPhone, access.FieldEmail, access.FieldAddress, access.FieldIDNumber, access.FieldNotes}

func newExportForm(p access.Principal) *exportFormData {
	f := &exportFormData{Format: exportfile.CSV, Formats: exportfile.Formats,
		Levels:   []string{"a", "b", "c", "d"},
		Statuses: []string{"lead", "prospect", "active", "dormant", "lost"},
		Kinds:    []string{crm.KindCompany, crm.KindPerson}}
	if p.Can(access.Reveal) {
		for _, fl := range exportRevealable {
			if p.Fields[fl] == access.Masked {
				f.Revealable = append(f.Revealable, fl)
			}
		}
	}
	return f
}

func (d *dataPages) exportForm(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/exports/new", appOpts{active: "exports"})
	if !ok {
		return
	}
	if !p.Can(access.Export) {
		d.s.uiFail(w, r, pg, access.ErrDenied)
		return
	}
	pg.Data = newExportForm(p)
	d.s.render(w, r, http.StatusOK, "data_export_new", pg)
}

// exportFieldOf maps the service's field names to the form's.
var exportFieldOf = map[string]string{"owner_id": "owner", "age_recipient": "recipient", "search": "q"}

func (d *dataPages) exportCreate(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := d.s.appPage(w, r, "/exports/new", appOpts{active: "exports"})
	if !ok {
		return
	}
	ctx := r.Context()
	f := newExportForm(p)
	pf := r.PostForm
	f.Q, f.Owner, f.Kind, f.Level = strings.TrimSpace(pf.Get("q")), strings.TrimSpace(pf.Get("owner")), pf.Get("kind"), strings.TrimSpace(pf.Get("level"))
	f.Status, f.Tag, f.Format, f.Recipient = strings.TrimSpace(pf.Get("status")), strings.TrimSpace(pf.Get("tag")), pf.Get("format"), strings.TrimSpace(pf.Get("recipient"))
	f.Reveal = pf["reveal"]
	pg.Data = f
	password := crm.Secret(pf.Get("password"))
	errs := map[string]string{}
	if pf.Get("encryption") == "recipient" {
		password = ""
		if f.Recipient == "" {
			errs["recipient"] = pg.msg("valid.required")
		}
	} else {
		f.Recipient = ""
		switch {
		case password == "":
			errs["password"] = pg.msg("valid.required")
		case password.Value() != pf.Get("password_confirm"):
			errs["password_confirm"] = pg.msg("data.exports.password_mismatch")
		}
	}
	var ownerID string
	if f.Owner != "" {
		u, err := d.s.auth.FindUserByEmail(ctx, f.Owner)
		if err != nil {
			errs["owner"] = pg.msg("valid.user")
		}
		ownerID = u.ID
	}
	if len(errs) > 0 {
		pg.Errors, pg.Error = errs, pg.msg("data.exports.fix")
		d.s.render(w, r, http.StatusBadRequest, "data_export_new", pg)
		return
	}
	req, err := d.s.crm.RequestExport(ctx, p, crm.ExportInput{
		Query:  crm.ListQuery{Q: f.Q, OwnerID: ownerID, Kind: f.Kind, Level: f.Level, Status: f.Status, Tag: f.Tag},
		Format: f.Format, Reveal: f.Reveal, Password: password, Recipient: f.Recipient,
	})
	var ve *crm.ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Fields {
			field := fe.Field
			if to, ok := exportFieldOf[field]; ok {
				field = to
			}
			msg := validationMessage(pg, fe.Message)
			if field == "password" && password != "" {
				msg = passwordMessage(pg, errors.New(fe.Message))
			}
			if prev, ok := errs[field]; ok {
				msg = prev + "; " + msg
			}
			errs[field] = msg
		}
		pg.Errors, pg.Error = errs, pg.msg("data.exports.fix")
		d.s.render(w, r, http.StatusBadRequest, "data_export_new", pg)
		return
	}
	if err != nil {
		pg.BackHref = "/exports/new"
		d.exportFail(w, r, pg, err)
		return
	}
	done := "requested"
	if req.Status == crm.ExportApproved {
		done = "ready"
	}
	uiRedirect(w, r, "/exports/"+req.ID+"?done="+done)
}

// exportDetailData is one request.
type exportDetailData struct {
	exportView
	CanDownload          bool // the viewer holds the export permission
	DecidedOn, ExpiresOn time.Time
}

// exportDone are the notices after an action on a request.
var exportDone = []string{"requested", "ready", "approved", "rejected", "cancelled"}

func (d *dataPages) exportDetail(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg, p, ok := d.s.appPage(w, r, "/exports/"+url.PathEscape(id), appOpts{active: "exports"})
	if !ok {
		return
	}
	pg.BackHref = "/exports"
	if !validExportID(id) {
		d.s.uiFail(w, r, pg, crm.ErrNotFound)
		return
	}
	ctx := r.Context()
	req, err := d.s.crm.GetExportRequest(ctx, p, id)
	if err != nil {
		d.s.uiFail(w, r, pg, err)
		return
	}
	if done := r.URL.Query().Get("done"); slices.Contains(exportDone, done) {
		pg.Notice = pg.msg(fmt.Sprintf("data.exports.done.%s", done))
	}
	v := viewExport(p, req)
	for _, name := range req.FilterNames {
		val := ""
		switch x := req.Filter[name].(type) {
		case string:
			val = x
			switch name {
			case "owner_id":
				if u, err := d.s.auth.GetUser(ctx, x); err == nil {
					val = u.Name + " <" + u.Email + ">"
				}
			case "kind", "level", "status":
				val = pg.Code(name, x)
			}
		case bool:
			val = pg.msg("common.yes")
		default:
			val = pg.msg("data.exports.filter_set") // a tag: not kept in clear
		}
		label := name
		if to := strings.TrimSuffix(name, "_id"); pg.loc.has("field." + to) {
			label = pg.msg("field." + to)
		}
		v.Filters = append(v.Filters, exportFilter{Label: label, Value: val})
	}
	dd := &exportDetailData{exportView: v, CanDownload: p.Can(access.Export)}
	if req.DecidedAt != nil {
		dd.DecidedOn = *req.DecidedAt
	}
	if req.ExpiresAt != nil {
		dd.ExpiresOn = *req.ExpiresAt
	}
	pg.Data = dd
	d.s.render(w, r, http.StatusOK, "data_export", pg)
}

func validExportID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

func (d *dataPages) exportApprove(w http.ResponseWriter, r *http.Request) {
	d.exportAction(w, r, "approved", d.s.crm.ApproveExport)
}

func (d *dataPages) exportReject(w http.ResponseWriter, r *http.Request) {
	d.exportAction(w, r, "rejected", d.s.crm.RejectExport)
}

func (d *dataPages) exportCancel(w http.ResponseWriter, r *http.Request) {
	d.exportAction(w, r, "cancelled", d.s.crm.CancelExport)
}

// exportAction runs one decision on the request of the path.
func (d *dataPages) exportAction(w http.ResponseWriter, r *http.Request, done string,
	fn func(context.Context, access.Principal, string) (crm.ExportRequest, error)) {
	id := r.PathValue("id")
	pg, p, ok := d.s.appPage(w, r, "", appOpts{active: "exports"})
	if !ok {
		return
	}
	pg.BackHref = "/exports"
	if !validExportID(id) {
		d.s.uiFail(w, r, pg, crm.ErrNotFound)
		return
	}
	pg.BackHref = "/exports/" + id
	if _, err := fn(r.Context(), p, id); err != nil {
		d.exportFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/exports/"+id+"?done="+done)
}

// exportDownload hands the encrypted file to its requester, as the API's
// downloadExport does.
func (d *dataPages) exportDownload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg, p, ok := d.s.appPage(w, r, "", appOpts{active: "exports"})
	if !ok {
		return
	}
	pg.BackHref = "/exports"
	if !validExportID(id) {
		d.s.uiFail(w, r, pg, crm.ErrNotFound)
		return
	}
	pg.BackHref = "/exports/" + id
	f, err := d.s.crm.DownloadExport(r.Context(), p, id)
	if err != nil {
		d.exportFail(w, r, pg, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename=%q`, f.Filename))
	h.Set("Content-Length", strconv.Itoa(len(f.Data)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(f.Data); err != nil {
		d.s.log.WarnContext(r.Context(), "export download cut", "request_id", requestID(r.Context()), "err", err)
	}
}

// exportConflicts name the states a request can be in the way of an
// action (the service's messages name statuses and counts, never data).
var exportConflicts = []struct{ fragment, key string }{
	{"expired", "data.exports.err.expired"},
	{"grown", "data.exports.err.grown"},
	{"no longer", "data.exports.err.requester"},
	{"no file", "data.exports.err.no_file"},
	{"not pending", "data.exports.err.not_pending"},
	{"decided meanwhile", "data.exports.err.not_pending"},
}

// exportFail shows an export error: a request in the wrong state says
// which; the rest as every page.
func (d *dataPages) exportFail(w http.ResponseWriter, r *http.Request, pg *page, err error) {
	if errors.Is(err, crm.ErrApprovalRequired) {
		d.s.uiErrorPage(w, r, pg, http.StatusConflict, "data.exports.err.approval")
		return
	}
	if errors.Is(err, crm.ErrConflict) && !errors.Is(err, access.ErrDenied) {
		msg := strings.ToLower(err.Error())
		for _, c := range exportConflicts {
			if strings.Contains(msg, c.fragment) {
				d.s.uiErrorPage(w, r, pg, http.StatusConflict, c.key)
				return
			}
		}
	}
	d.s.uiFail(w, r, pg, err)
}

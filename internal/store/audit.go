package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos/custos/internal/audit/chain"
)

// AuditEvent is one event of the audit trail. Details never hold plaintext
// personal data.
type AuditEvent struct {
	Seq        int64
	At         time.Time
	Actor      string
	IP         string
	UserAgent  string
	Action     string
	ObjectType string
	ObjectID   string
	Outcome    string
	Reason     string
	RequestID  string
	Details    string // JSON object
	PrevHash   []byte // chain hash of the event before (set by AppendAudit)
	Hash       []byte // this event's chain hash (set by AppendAudit)
	// Customers the event concerns (indexed in audit_subjects, not hashed:
	// the index is derived and rebuilt from the events if need be).
	Customers []string
}

// Fields returns the hashed text columns of e.
func (e AuditEvent) Fields() chain.Fields {
	return chain.Fields{Actor: e.Actor, IP: e.IP, UserAgent: e.UserAgent, Action: e.Action, ObjectType: e.ObjectType,
		ObjectID: e.ObjectID, Outcome: e.Outcome, Reason: e.Reason, RequestID: e.RequestID, Details: e.Details}
}

// AuditHead is the head of the chain: the last event and the prune mark.
type AuditHead struct {
	Seq      int64
	Hash     []byte
	BaseSeq  int64  // events at or below were pruned into an archive
	BaseHash []byte // hash of event BaseSeq (the zero hash when nothing was pruned)
}

// ErrNoChainHead means the audit_head row is missing (a damaged trail).
var ErrNoChainHead = errors.New("audit chain head is missing")

const auditColumns = `seq, at, actor, ip, user_agent, action, object_type, object_id, outcome, reason, request_id, details, prev_hash, hash`

// AppendAudit appends e after the chain head and returns its sequence
// number. The first append in a transaction locks the head (on SQLite the
// write transaction already excludes other writers), so appends from any
// number of connections and nodes form one chain, in commit order, and an
// event exists exactly when the transaction that wrote it commits.
func (tx *Tx) AppendAudit(ctx context.Context, e AuditEvent) (int64, error) {
	if e.Details == "" {
		e.Details = "{}"
	}
	if tx.head == nil {
		h, err := tx.auditHead(ctx, true)
		if err != nil {
			return 0, err
		}
		tx.head = &h
	}
	e.Seq = tx.head.Seq + 1
	e.PrevHash = tx.head.Hash
	at := Micros(e.At)
	e.Hash = chain.Hash(e.PrevHash, e.Seq, at, e.Fields())
	if _, err := tx.exec(ctx, `INSERT INTO audit_events (`+auditColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, at, e.Actor, e.IP, e.UserAgent, e.Action, e.ObjectType, e.ObjectID, e.Outcome, e.Reason, e.RequestID, e.Details,
		e.PrevHash, e.Hash); err != nil {
		return 0, err
	}
	if _, err := tx.exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, e.Seq, e.Hash); err != nil {
		return 0, err
	}
	if len(e.Customers) > 0 {
		args := make([]any, 0, 2*len(e.Customers))
		for _, c := range e.Customers {
			args = append(args, c, e.Seq)
		}
		if _, err := tx.exec(ctx, `INSERT INTO audit_subjects (customer_id, seq) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?), ", len(e.Customers)), ", ")+` ON CONFLICT DO NOTHING`, args...); err != nil {
			return 0, err
		}
	}
	tx.head.Seq, tx.head.Hash = e.Seq, e.Hash
	return e.Seq, nil
}

// AuditHead returns the chain head.
func (tx *Tx) AuditHead(ctx context.Context) (AuditHead, error) { return tx.auditHead(ctx, false) }

func (tx *Tx) auditHead(ctx context.Context, lock bool) (AuditHead, error) {
	q := `SELECT seq, hash, base_seq, base_hash FROM audit_head WHERE id = 1`
	if lock && tx.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	var h AuditHead
	err := tx.queryRow(ctx, q).Scan(&h.Seq, &h.Hash, &h.BaseSeq, &h.BaseHash)
	if err := mapErr(err); errors.Is(err, ErrNotFound) {
		return AuditHead{}, ErrNoChainHead
	} else if err != nil {
		return AuditHead{}, err
	}
	return h, nil
}

// AuditEvents returns events with seq > after, oldest first, at most limit.
func (tx *Tx) AuditEvents(ctx context.Context, after int64, limit int) ([]AuditEvent, error) {
	return tx.scanAudit(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
}

// AuditEventsByHash returns the events whose stored hash is h (verification
// uses it once, to tell a reordering from an insertion; it scans).
func (tx *Tx) AuditEventsByHash(ctx context.Context, h []byte) ([]AuditEvent, error) {
	return tx.scanAudit(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE hash = ? ORDER BY seq`, h)
}

func (tx *Tx) scanAudit(ctx context.Context, q string, args ...any) ([]AuditEvent, error) {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.IP, &e.UserAgent, &e.Action, &e.ObjectType, &e.ObjectID, &e.Outcome,
			&e.Reason, &e.RequestID, &e.Details, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.At = FromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditScope limits which actors' events a query returns: everything, or
// the events of one user (by session or by any of their API tokens) and of
// the users holding the given roles.
type AuditScope struct {
	All    bool
	UserID string
	Roles  []string
}

// AuditQuery filters the audit trail. Zero fields do not filter.
type AuditQuery struct {
	Scope      AuditScope
	ActorID    string // a user id: their session and token events
	Actor      string // an exact actor ("system", "cli:alice", "token:…")
	CustomerID string // events concerning this customer (object or result set)
	Action     string // exact, or a prefix ending in "." ("customer.")
	Outcome    string
	ObjectType string
	ObjectID   string
	Since      time.Time // at >= Since
	Until      time.Time // at < Until
	AfterSeq   int64     // ascending pages: seq > AfterSeq
	BeforeSeq  int64     // descending pages: seq < BeforeSeq
	Ascending  bool      // oldest first (exports); newest first otherwise
	Limit      int
}

// actorsOf is a predicate matching the actors of one user: their sessions
// and their API tokens.
func actorsOf(userExpr string) string {
	return `(audit_events.actor = 'user:' || ` + userExpr + ` OR audit_events.actor IN (SELECT 'token:' || t.id FROM api_tokens t WHERE t.user_id = ` + userExpr + `))`
}

// QueryAudit returns the events matching q, at most q.Limit.
func (tx *Tx) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	var where []string
	var args []any
	if !q.Scope.All {
		if q.Scope.UserID == "" {
			return nil, nil
		}
		w := actorsOf("?")
		args = append(args, q.Scope.UserID, q.Scope.UserID)
		if len(q.Scope.Roles) > 0 {
			w = `(` + w + ` OR audit_events.actor IN (SELECT 'user:' || u.id FROM users u WHERE u.role IN (` + placeholders(len(q.Scope.Roles)) + `))` +
				` OR audit_events.actor IN (SELECT 'token:' || t.id FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.role IN (` + placeholders(len(q.Scope.Roles)) + `)))`
			for range 2 {
				for _, r := range q.Scope.Roles {
					args = append(args, r)
				}
			}
		}
		where = append(where, w)
	}
	if q.ActorID != "" {
		where = append(where, actorsOf("?"))
		args = append(args, q.ActorID, q.ActorID)
	}
	if q.Actor != "" {
		where = append(where, `audit_events.actor = ?`)
		args = append(args, q.Actor)
	}
	if q.CustomerID != "" {
		where = append(where, `audit_events.seq IN (SELECT s.seq FROM audit_subjects s WHERE s.customer_id = ?)`)
		args = append(args, q.CustomerID)
	}
	if q.Action != "" {
		if strings.HasSuffix(q.Action, ".") {
			where = append(where, `substr(audit_events.action, 1, ?) = ?`)
			args = append(args, len(q.Action), q.Action)
		} else {
			where = append(where, `audit_events.action = ?`)
			args = append(args, q.Action)
		}
	}
	for _, f := range []struct{ col, v string }{{"outcome", q.Outcome}, {"object_type", q.ObjectType}, {"object_id", q.ObjectID}} {
		if f.v != "" {
			where = append(where, `audit_events.`+f.col+` = ?`)
			args = append(args, f.v)
		}
	}
	if !q.Since.IsZero() {
		where = append(where, `audit_events.at >= ?`)
		args = append(args, Micros(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, `audit_events.at < ?`)
		args = append(args, Micros(q.Until))
	}
	if q.AfterSeq > 0 {
		where = append(where, `audit_events.seq > ?`)
		args = append(args, q.AfterSeq)
	}
	if q.BeforeSeq > 0 {
		where = append(where, `audit_events.seq < ?`)
		args = append(args, q.BeforeSeq)
	}
	// Rows at or below the prune mark are not part of the trail (verify
	// reports them); no answer includes them.
	where = append(where, `audit_events.seq > COALESCE((SELECT base_seq FROM audit_head WHERE id = 1), 0)`)
	sqlq := `SELECT ` + auditColumns + ` FROM audit_events WHERE ` + strings.Join(where, ` AND `)
	if q.Ascending {
		sqlq += ` ORDER BY seq`
	} else {
		sqlq += ` ORDER BY seq DESC`
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	sqlq += ` LIMIT ?`
	args = append(args, limit)
	return tx.scanAudit(ctx, sqlq, args...)
}

// LastAuditBefore returns the sequence number of the last event at or
// before t (0 when there is none).
func (tx *Tx) LastAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	return tx.seqOrZero(ctx, `SELECT MAX(seq) FROM audit_events WHERE at < ?`, Micros(t))
}

// seqOrZero runs an aggregate over sequence numbers (0 when there are no rows).
func (tx *Tx) seqOrZero(ctx context.Context, q string, args ...any) (int64, error) {
	var seq *int64
	if err := tx.queryRow(ctx, q, args...).Scan(&seq); err != nil {
		return 0, mapErr(err)
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}

// PruneAudit deletes the events up to and including through (and their
// index rows) and moves the prune mark to it. The caller has archived them
// and records the prune as an event in the same transaction.
func (tx *Tx) PruneAudit(ctx context.Context, through int64, throughHash []byte) (int64, error) {
	h, err := tx.auditHead(ctx, true)
	if err != nil {
		return 0, err
	}
	if through <= h.BaseSeq {
		return 0, nil
	}
	if through > h.Seq {
		return 0, fmt.Errorf("store: prune through %d beyond the chain head %d", through, h.Seq)
	}
	if _, err := tx.exec(ctx, `UPDATE audit_head SET base_seq = ?, base_hash = ? WHERE id = 1`, through, throughHash); err != nil {
		return 0, err
	}
	if _, err := tx.exec(ctx, `DELETE FROM audit_subjects WHERE seq <= ?`, through); err != nil {
		return 0, err
	}
	res, err := tx.exec(ctx, `DELETE FROM audit_events WHERE seq <= ?`, through)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if tx.head != nil {
		tx.head.BaseSeq, tx.head.BaseHash = through, throughHash
	}
	return n, err
}

// chainLegacyAudit chains the events written before the hash chain existed
// (migration 0006), in sequence order, and creates the chain head. It does
// nothing once the head exists.
func (db *DB) chainLegacyAudit(ctx context.Context) error {
	return db.Write(ctx, func(tx *Tx) error {
		if db.dialect == Postgres {
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(7236508161)`); err != nil {
				return err
			}
		}
		if _, err := tx.auditHead(ctx, false); !errors.Is(err, ErrNoChainHead) {
			return err
		}
		prev := chain.Genesis
		var last int64
		var h chain.Hasher
		for {
			evs, err := tx.AuditEvents(ctx, last, 2000)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				if e.Hash != nil {
					return fmt.Errorf("store: audit event %d is chained but the chain head is missing", e.Seq)
				}
				sum := h.Hash(prev, e.Seq, Micros(e.At), e.Fields())
				if _, err := tx.exec(ctx, `UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, sum, e.Seq); err != nil {
					return fmt.Errorf("store: chain audit event %d: %w", e.Seq, err)
				}
				if e.ObjectType == "customer" && e.ObjectID != "" {
					if _, err := tx.exec(ctx, `INSERT INTO audit_subjects (customer_id, seq) VALUES (?, ?) ON CONFLICT DO NOTHING`, e.ObjectID, e.Seq); err != nil {
						return err
					}
				}
				prev, last = bytes.Clone(sum), e.Seq
			}
		}
		_, err := tx.exec(ctx, `INSERT INTO audit_head (id, seq, hash, base_seq, base_hash) VALUES (1, ?, ?, 0, ?)`, last, prev, chain.Genesis)
		return err
	})
}

// MaxAuditSeq returns the highest stored sequence number (0 when empty).
func (tx *Tx) MaxAuditSeq(ctx context.Context) (int64, error) {
	return tx.seqOrZero(ctx, `SELECT MAX(seq) FROM audit_events`)
}

// MinAuditSeq returns the lowest stored sequence number (0 when empty).
func (tx *Tx) MinAuditSeq(ctx context.Context) (int64, error) {
	return tx.seqOrZero(ctx, `SELECT MIN(seq) FROM audit_events`)
}

// InsertAuditCheckpoint keeps a copy of a signed checkpoint (its JSON).
func (tx *Tx) InsertAuditCheckpoint(ctx context.Context, seq int64, body string) error {
	_, err := tx.exec(ctx, `INSERT INTO audit_checkpoints (seq, body) VALUES (?, ?)`, seq, body)
	return err
}

// AuditCheckpoints returns the stored checkpoint copies: all of them, or
// only the newest ones when newest > 0.
func (tx *Tx) AuditCheckpoints(ctx context.Context, newest int) ([]string, error) {
	q, args := `SELECT body FROM audit_checkpoints ORDER BY id`, []any{}
	if newest > 0 {
		q, args = `SELECT body FROM audit_checkpoints ORDER BY id DESC LIMIT ?`, []any{newest}
	}
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

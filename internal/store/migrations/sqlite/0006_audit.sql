-- Audit trail (issue 5): the hash chain, its locked head, the customer index
-- and the prune mark.
--
-- Every event stores the hash of the event before it and its own chain hash
-- (internal/audit/chain). Events written before this migration are chained
-- once by the store right after it (Migrate), in their sequence order.
ALTER TABLE audit_events ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_events ADD COLUMN hash BLOB;

-- The chain head: the last sequence number and hash. Appends read and move it
-- inside their own write transaction, so concurrent writers never fork the
-- chain. base_seq/base_hash mark the last event pruned into an archive
-- (0 and the zero hash when nothing was pruned).
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    seq       INTEGER NOT NULL,
    hash      BLOB    NOT NULL,
    base_seq  INTEGER NOT NULL DEFAULT 0,
    base_hash BLOB    NOT NULL
);
-- A fresh trail starts at the genesis hash; a trail with older events gets
-- its head when they are chained.
INSERT INTO audit_head (id, seq, hash, base_seq, base_hash)
SELECT 1, 0, zeroblob(32), 0, zeroblob(32) WHERE NOT EXISTS (SELECT 1 FROM audit_events);

-- Which customers each event concerns (the object, or the ids a list or
-- search returned): "who saw customer X" is one indexed query. Derived from
-- the events and pruned with them.
CREATE TABLE audit_subjects (
    customer_id TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (customer_id, seq)
) WITHOUT ROWID;
CREATE INDEX audit_events_actor ON audit_events(actor, seq);
CREATE INDEX audit_events_at ON audit_events(at);

-- Guards against our own bugs (the chain is the real protection: anyone who
-- can drop a trigger can also edit rows, and verify finds it).
DROP TRIGGER audit_events_no_update;
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_chained BEFORE INSERT ON audit_events
WHEN NEW.hash IS NULL OR NEW.prev_hash IS NULL
  OR NEW.seq IS NOT COALESCE((SELECT seq FROM audit_head WHERE id = 1), -1) + 1
BEGIN SELECT RAISE(ABORT, 'audit events must be chained after the head'); END;
-- The only update ever allowed: chaining an event written before the chain.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN OLD.hash IS NOT NULL OR NEW.seq IS NOT OLD.seq OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
  OR NEW.ip IS NOT OLD.ip OR NEW.user_agent IS NOT OLD.user_agent OR NEW.action IS NOT OLD.action
  OR NEW.object_type IS NOT OLD.object_type OR NEW.object_id IS NOT OLD.object_id OR NEW.outcome IS NOT OLD.outcome
  OR NEW.reason IS NOT OLD.reason OR NEW.request_id IS NOT OLD.request_id OR NEW.details IS NOT OLD.details
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
-- Deleting is allowed only at or below the prune mark, which the prune moves
-- in the same transaction after archiving those events.
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq > COALESCE((SELECT base_seq FROM audit_head WHERE id = 1), 0)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_subjects_no_update BEFORE UPDATE ON audit_subjects
BEGIN SELECT RAISE(ABORT, 'the audit index is append-only'); END;
CREATE TRIGGER audit_subjects_no_delete BEFORE DELETE ON audit_subjects
WHEN OLD.seq > COALESCE((SELECT base_seq FROM audit_head WHERE id = 1), 0)
BEGIN SELECT RAISE(ABORT, 'the audit index is append-only'); END;

-- Copies of the signed checkpoints (the file in the data directory is the
-- primary record): nodes of one PostgreSQL cluster see each other's, and
-- deleting the file alone hides nothing. Signed, so they cannot be forged
-- without the key.
CREATE TABLE audit_checkpoints (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    seq  INTEGER NOT NULL,
    body TEXT    NOT NULL
);
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
WHEN NEW.seq < OLD.seq OR NEW.base_seq < OLD.base_seq
BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END;
CREATE TRIGGER audit_head_kept BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'the audit chain head is kept'); END;

-- Backups (issue 7): the change log that incremental and differential
-- backups read, local bookkeeping of this database's backups, and the
-- erasure ledger.
--
-- The change log is written by triggers that the store creates for every
-- tracked table (store.EnsureTracking, generated from store.Catalog), and
-- only once backup_state holds 'tracking' (set by the first backup). Each
-- row names a table and the key of a row that was inserted, updated or
-- deleted: the key's values as a JSON array (blobs as hex). A backup reads
-- the keys changed after its base backup's position (on PostgreSQL, its
-- snapshot) and copies those rows as they are in its own snapshot, or records
-- their deletion. Rows at or below the latest full backup's position are
-- pruned after that backup completes.
CREATE TABLE backup_changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tbl TEXT    NOT NULL,
    key TEXT    NOT NULL,
    -- The writing transaction: on PostgreSQL sequence numbers are not in
    -- commit order, so a backup's position is its snapshot, and the keys
    -- changed after it are those whose transaction that snapshot did not see.
    xid xid8    NOT NULL DEFAULT pg_current_xact_id()
);

-- A backup reads the changes of one table at a time.
CREATE INDEX backup_changes_tbl ON backup_changes(tbl, seq);

-- Per-database facts that are never backed up nor restored: 'instance'
-- (this database's random id: a backup chain never spans two databases),
-- 'tracking', 'pruned' (the full backup up to which the change log was
-- pruned), 'kit' (when the recovery kit was exported), 'ledger' (when the
-- erasure ledger was last published).
CREATE TABLE backup_state (
    key   TEXT    PRIMARY KEY,
    value TEXT    NOT NULL DEFAULT '',
    at    BIGINT NOT NULL DEFAULT 0
);

-- Backups this database completed (the destinations hold the manifests;
-- this is the local record used to choose bases and to prune the log).
CREATE TABLE backup_runs (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,           -- full, incremental, differential
    base         TEXT    NOT NULL DEFAULT '',
    position     TEXT    NOT NULL,
    destinations TEXT    NOT NULL,           -- JSON array of redacted URLs
    at           BIGINT NOT NULL,
    bytes        BIGINT NOT NULL DEFAULT 0
);

-- Customers erased (crypto-shredded): ids only, never personal data. A
-- restore applies the newest ledger it can find, so an erased customer
-- never comes back from an older backup.
CREATE TABLE erasure_ledger (
    customer_id TEXT    PRIMARY KEY,
    erased_at   BIGINT NOT NULL,
    erased_by   TEXT    NOT NULL
);

-- Incremental backups read the audit index above a sequence number.
CREATE INDEX audit_subjects_seq ON audit_subjects(seq);

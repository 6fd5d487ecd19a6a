-- Monitoring (issue 6): the alert workflow, detector windows kept in the
-- database (so they hold across restarts and nodes), the stream detectors'
-- cursor and dedupe marks, and users suspended by a detector.

ALTER TABLE alerts ADD COLUMN acked_by TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN acked_at INTEGER;
ALTER TABLE alerts ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN resolved_at INTEGER;
-- The resolution note may name people: sealed under its own data key (alert:<id>).
ALTER TABLE alerts ADD COLUMN note BLOB;
ALTER TABLE alerts ADD COLUMN note_key_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alerts_actor ON alerts(actor_id, at);
CREATE INDEX alerts_at ON alerts(at);

-- Sliding-window counters: events per key per minute (unix minutes).
CREATE TABLE monitor_counts (
    key    TEXT    NOT NULL,
    bucket INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (key, bucket)
);

-- Distinct items per scope: customers a user saw ('view:<user>'), addresses
-- a user logged in from ('ip:<user>'), a user's last login ('login').
CREATE TABLE monitor_seen (
    scope    TEXT    NOT NULL,
    item     TEXT    NOT NULL,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, item)
);
CREATE INDEX monitor_seen_recent ON monitor_seen(scope, last_at);

-- The stream detectors' cursor and dedupe marks.
CREATE TABLE monitor_state (
    key   TEXT    PRIMARY KEY,
    value TEXT    NOT NULL DEFAULT '',
    at    INTEGER NOT NULL DEFAULT 0
);

-- Users suspended by a detector (bulk viewing): no session, token or read
-- until an alert handler reinstates them.
CREATE TABLE suspensions (
    user_id  TEXT    PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    rule     TEXT    NOT NULL,
    alert_id TEXT    NOT NULL DEFAULT '',
    reason   TEXT    NOT NULL DEFAULT ''
);

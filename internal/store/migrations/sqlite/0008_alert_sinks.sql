-- Alert sinks (issue 6): where alerts are sent, and the outbox of their
-- deliveries. A delivery row is written in the same transaction as its
-- alert, so an alert that was committed is never lost; notifiers on every
-- node poll the due rows and claim them with a lease before sending.

-- config is sealed JSON (URLs, secrets, hosts, recipients) under the data
-- key of key_subject, bound to the sink's name; target is a redacted
-- description (a host name, never a path, query or secret) for listings.
-- last_error never holds a secret or a URL.
CREATE TABLE alert_sinks (
    name                 TEXT    PRIMARY KEY,
    kind                 TEXT    NOT NULL,   -- webhook, wecom, dingtalk, slack, smtp, syslog
    min_severity         TEXT    NOT NULL,   -- info, low, medium, high, critical
    enabled              INTEGER NOT NULL DEFAULT 1,
    target               TEXT    NOT NULL DEFAULT '',
    config               BLOB    NOT NULL,
    key_subject          TEXT    NOT NULL,
    key_version          INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    last_ok_at           INTEGER,
    last_error_at        INTEGER,
    last_error           TEXT    NOT NULL DEFAULT '',
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

-- One row per alert and sink. status: pending, sent, failed (given up).
-- claimed_until is the lease of the notifier that is sending it (claim
-- names that notifier's claim), so two nodes never send it at once.
CREATE TABLE alert_deliveries (
    alert_id      TEXT    NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    sink          TEXT    NOT NULL REFERENCES alert_sinks(name) ON DELETE CASCADE,
    status        TEXT    NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,
    claimed_until INTEGER,
    claim         TEXT    NOT NULL DEFAULT '',
    last_error    TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    PRIMARY KEY (alert_id, sink)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries(next_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_sink ON alert_deliveries(sink, status);

-- Access control (issue 4): roles as data in a hierarchy with field policies
-- and pool limits; shares; temporary grants; hidden customers; the public
-- pool; settings; daily quota counters; alerts.

ALTER TABLE roles ADD COLUMN parent TEXT REFERENCES roles(name);
ALTER TABLE roles ADD COLUMN label TEXT NOT NULL DEFAULT '';
-- JSON object: field name -> 'hidden' | 'masked' | 'read' | 'edit'.
ALTER TABLE roles ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE roles ADD COLUMN reveal_quota INTEGER NOT NULL DEFAULT 50;
ALTER TABLE roles ADD COLUMN claim_daily INTEGER NOT NULL DEFAULT 0;     -- 0: no daily cap
ALTER TABLE roles ADD COLUMN max_owned INTEGER NOT NULL DEFAULT 0;       -- 0: no cap
ALTER TABLE roles ADD COLUMN claim_cooldown_days INTEGER NOT NULL DEFAULT 0;
-- Template roles are upgraded when Custos ships a newer template, until
-- someone edits them (template_version 0 marks a role as customized).
ALTER TABLE roles ADD COLUMN template_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE roles ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
-- The foundation's four roles were seeded from templates: let them upgrade.
UPDATE roles SET template_version = 1 WHERE name IN ('admin', 'manager', 'sales', 'support');

ALTER TABLE customers ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
-- Last interaction, claim or assignment: the pool's return clock.
ALTER TABLE customers ADD COLUMN last_activity_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN pool_warned_at INTEGER;
-- Who owned it before it went to the pool, and when (claim cooldown).
ALTER TABLE customers ADD COLUMN previous_owner_id TEXT;
ALTER TABLE customers ADD COLUMN released_at INTEGER;
UPDATE customers SET last_activity_at = updated_at;
CREATE INDEX customers_pool ON customers(owner_id, last_activity_at);

CREATE TABLE shares (
    id          TEXT    PRIMARY KEY,
    customer_id TEXT    NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    user_id     TEXT    REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT    REFERENCES roles(name) ON DELETE CASCADE,
    level       TEXT    NOT NULL CHECK (level IN ('read', 'edit')),
    granted_by  TEXT    NOT NULL,          -- actor
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,                   -- NULL: until revoked
    revoked_at  INTEGER,
    CHECK ((user_id IS NULL) <> (role IS NULL))
);
CREATE INDEX shares_customer ON shares(customer_id);
CREATE INDEX shares_user ON shares(user_id);
CREATE INDEX shares_role ON shares(role);

CREATE TABLE grants (
    id          TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    permission  TEXT    NOT NULL,
    reason      BLOB    NOT NULL,          -- sealed under the grantee's data key
    key_version INTEGER NOT NULL,
    approved_by TEXT    NOT NULL,          -- user id of the approving administrator
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX grants_user ON grants(user_id, expires_at);

CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL
);

-- Daily counters (reveals, claims) per user and local calendar day.
CREATE TABLE quota_counters (
    key   TEXT    NOT NULL,                -- 'reveal:<user id>', 'claim:<user id>'
    day   TEXT    NOT NULL,                -- YYYY-MM-DD in the configured time zone
    count INTEGER NOT NULL,
    PRIMARY KEY (key, day)
);

-- Alerts raised by rules (the monitoring issue adds detectors and sinks).
CREATE TABLE alerts (
    id          TEXT    PRIMARY KEY,
    at          INTEGER NOT NULL,
    rule        TEXT    NOT NULL,
    severity    TEXT    NOT NULL,          -- info, low, medium, high, critical
    actor_id    TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL DEFAULT 'open',
    evidence    TEXT    NOT NULL DEFAULT '[]',  -- audit sequence numbers
    details     TEXT    NOT NULL DEFAULT '{}',  -- never personal values
    updated_at  INTEGER NOT NULL
);
CREATE INDEX alerts_status ON alerts(status, at);

-- Custos schema v1 (SQLite). Times are unix microseconds UTC; booleans 0/1.
-- Personal and free-text fields are ciphertext (BLOB) sealed under the owning
-- customer's (or user's) data key; nothing here is plaintext personal data.

CREATE TABLE keyring (
    purpose     TEXT    NOT NULL,            -- 'master', 'index'
    version     INTEGER NOT NULL,
    wrapped     BLOB    NOT NULL,
    wrapped_by  TEXT    NOT NULL,            -- root key id or 'master:<v>'
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (purpose, version)
);

CREATE TABLE data_keys (
    subject        TEXT    NOT NULL,         -- customer or user id
    version        INTEGER NOT NULL,
    master_version INTEGER NOT NULL,
    wrapped        BLOB,                     -- NULL once destroyed (crypto-shredding)
    created_at     INTEGER NOT NULL,
    destroyed_at   INTEGER,
    PRIMARY KEY (subject, version)
);

CREATE TABLE roles (
    name        TEXT    PRIMARY KEY,
    see_all     INTEGER NOT NULL DEFAULT 0,
    permissions TEXT    NOT NULL DEFAULT ''  -- space-separated permission names
);

CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    email_bidx    BLOB    NOT NULL UNIQUE,   -- blind index of the normalized email
    email         BLOB    NOT NULL,          -- sealed
    name          BLOB    NOT NULL,          -- sealed
    role          TEXT    NOT NULL REFERENCES roles(name),
    password_hash TEXT    NOT NULL,
    key_version   INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id_hash      BLOB    PRIMARY KEY,        -- SHA-256 of the session token
    user_id      TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_hash    BLOB    NOT NULL,
    ip           TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,    -- SHA-256 of the token
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE customers (
    id          TEXT    PRIMARY KEY,         -- UUIDv7: time ordered
    kind        TEXT    NOT NULL,
    owner_id    TEXT    REFERENCES users(id),  -- NULL: public pool
    industry    TEXT    NOT NULL DEFAULT '',
    level       TEXT    NOT NULL DEFAULT '',
    source      TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL DEFAULT '',
    key_version INTEGER NOT NULL,
    name        BLOB    NOT NULL,
    phones      BLOB,
    emails      BLOB,
    address     BLOB,
    id_number   BLOB,
    tags        BLOB,
    notes       BLOB,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX customers_owner ON customers(owner_id, id);

-- Blind index: keyed HMAC terms pointing at the customer they were derived
-- from; source is 'customer' or the id of the contact that contributed them.
CREATE TABLE search_terms (
    term        BLOB NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    PRIMARY KEY (term, customer_id, source)
);
CREATE INDEX search_terms_customer ON search_terms(customer_id, source);

CREATE TABLE contacts (
    id          TEXT    PRIMARY KEY,
    customer_id TEXT    NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    key_version INTEGER NOT NULL,
    name        BLOB    NOT NULL,
    title       BLOB,
    phones      BLOB,
    emails      BLOB,
    notes       BLOB,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX contacts_customer ON contacts(customer_id, id);

CREATE TABLE interactions (
    id             TEXT    PRIMARY KEY,
    customer_id    TEXT    NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    contact_id     TEXT    REFERENCES contacts(id),
    kind           TEXT    NOT NULL,
    occurred_at    INTEGER NOT NULL,
    next_follow_up TEXT,                     -- YYYY-MM-DD
    key_version    INTEGER NOT NULL,
    summary        BLOB    NOT NULL,
    created_by     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER,
    version        INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX interactions_customer ON interactions(customer_id, occurred_at);
CREATE INDEX interactions_follow_up ON interactions(next_follow_up);

-- Append-only audit trail (the hash chain arrives with the audit issue).
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    ip          TEXT    NOT NULL DEFAULT '',
    user_agent  TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL,
    object_type TEXT    NOT NULL DEFAULT '',
    object_id   TEXT    NOT NULL DEFAULT '',
    outcome     TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    request_id  TEXT    NOT NULL DEFAULT '',
    details     TEXT    NOT NULL DEFAULT '{}'
);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

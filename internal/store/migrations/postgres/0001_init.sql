-- Custos schema v1 (PostgreSQL). Times are unix microseconds UTC; booleans 0/1.
-- Personal and free-text fields are ciphertext (BYTEA) sealed under the owning
-- customer's (or user's) data key; nothing here is plaintext personal data.

CREATE TABLE keyring (
    purpose     TEXT    NOT NULL,            -- 'master', 'index'
    version     BIGINT NOT NULL,
    wrapped     BYTEA    NOT NULL,
    wrapped_by  TEXT    NOT NULL,            -- root key id or 'master:<v>'
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (purpose, version)
);

CREATE TABLE data_keys (
    subject        TEXT    NOT NULL,         -- customer or user id
    version        BIGINT NOT NULL,
    master_version BIGINT NOT NULL,
    wrapped        BYTEA,                     -- NULL once destroyed (crypto-shredding)
    created_at     BIGINT NOT NULL,
    destroyed_at   BIGINT,
    PRIMARY KEY (subject, version)
);

CREATE TABLE roles (
    name        TEXT    PRIMARY KEY,
    see_all     BIGINT NOT NULL DEFAULT 0,
    permissions TEXT    NOT NULL DEFAULT ''  -- space-separated permission names
);

CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    email_bidx    BYTEA    NOT NULL UNIQUE,   -- blind index of the normalized email
    email         BYTEA    NOT NULL,          -- sealed
    name          BYTEA    NOT NULL,          -- sealed
    role          TEXT    NOT NULL REFERENCES roles(name),
    password_hash TEXT    NOT NULL,
    key_version   BIGINT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash      BYTEA    PRIMARY KEY,        -- SHA-256 of the session token
    user_id      TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_hash    BYTEA    NOT NULL,
    ip           TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    hash         BYTEA    NOT NULL UNIQUE,    -- SHA-256 of the token
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
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
    key_version BIGINT NOT NULL,
    name        BYTEA    NOT NULL,
    phones      BYTEA,
    emails      BYTEA,
    address     BYTEA,
    id_number   BYTEA,
    tags        BYTEA,
    notes       BYTEA,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX customers_owner ON customers(owner_id, id);

-- Blind index: keyed HMAC terms pointing at the customer they were derived
-- from; source is 'customer' or the id of the contact that contributed them.
CREATE TABLE search_terms (
    term        BYTEA NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    PRIMARY KEY (term, customer_id, source)
);
CREATE INDEX search_terms_customer ON search_terms(customer_id, source);

CREATE TABLE contacts (
    id          TEXT    PRIMARY KEY,
    customer_id TEXT    NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    key_version BIGINT NOT NULL,
    name        BYTEA    NOT NULL,
    title       BYTEA,
    phones      BYTEA,
    emails      BYTEA,
    notes       BYTEA,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX contacts_customer ON contacts(customer_id, id);

CREATE TABLE interactions (
    id             TEXT    PRIMARY KEY,
    customer_id    TEXT    NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    contact_id     TEXT    REFERENCES contacts(id),
    kind           TEXT    NOT NULL,
    occurred_at    BIGINT NOT NULL,
    next_follow_up TEXT,                     -- YYYY-MM-DD
    key_version    BIGINT NOT NULL,
    summary        BYTEA    NOT NULL,
    created_by     TEXT    NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT,
    version        BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX interactions_customer ON interactions(customer_id, occurred_at);
CREATE INDEX interactions_follow_up ON interactions(next_follow_up);

-- Append-only audit trail (the hash chain arrives with the audit issue).
CREATE TABLE audit_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
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
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

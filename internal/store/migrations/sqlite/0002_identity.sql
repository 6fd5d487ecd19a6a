-- Identity (issue 3): login throttling, password lifecycle, session details,
-- second factors, per-role policies.

-- Failed-login counters per account (keyed by the blind index of the email,
-- whether or not the account exists) and per source IP. Kept in the database
-- so they survive restarts and hold across nodes.
CREATE TABLE login_throttle (
    key          TEXT    PRIMARY KEY,      -- 'acct:<b64>' or 'ip:<address>'
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER
);

ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_changed_at INTEGER NOT NULL DEFAULT 0;

ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
-- When the user last proved who they are (password, passkey, step-up).
ALTER TABLE sessions ADD COLUMN authenticated_at INTEGER NOT NULL DEFAULT 0;
-- When a second factor was satisfied in this session (NULL: not yet).
ALTER TABLE sessions ADD COLUMN mfa_at INTEGER;

-- A login that passed the first factor and waits for the second.
CREATE TABLE mfa_challenges (
    id_hash    BLOB    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ip         TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE totp_factors (
    user_id      TEXT    PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret       BLOB    NOT NULL,         -- sealed under the user's data key
    key_version  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,                  -- NULL until a first code is given
    last_step    INTEGER NOT NULL DEFAULT 0 -- replay guard: highest step used
);

CREATE TABLE recovery_codes (
    user_id TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash    BLOB    NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, hash)
);

CREATE TABLE role_policies (
    role         TEXT    PRIMARY KEY REFERENCES roles(name) ON DELETE CASCADE,
    mfa_required INTEGER NOT NULL DEFAULT 0,
    ip_allowlist TEXT    NOT NULL DEFAULT '',  -- space-separated CIDRs; empty: any
    login_hours  TEXT    NOT NULL DEFAULT ''   -- e.g. "08:00-20:00"; empty: any
);
-- Default policies are seeded with the roles at start-up (internal/node).

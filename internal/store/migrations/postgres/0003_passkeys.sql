-- Passkeys (WebAuthn credentials) and the state of WebAuthn ceremonies in
-- progress. Public keys are not secret, so nothing here is sealed.

CREATE TABLE webauthn_credentials (
    id           BYTEA   PRIMARY KEY,      -- credential id chosen by the authenticator
    user_id      TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,         -- label chosen by the user
    credential   BYTEA   NOT NULL,         -- JSON of go-webauthn's Credential (public key, flags, AAGUID, counter)
    sign_count   BIGINT  NOT NULL DEFAULT 0, -- copy of the counter in credential, for queries
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);

-- A registration or login ceremony between its begin and finish steps. The
-- browser holds the token; only its SHA-256 is stored. A row is used once.
CREATE TABLE webauthn_sessions (
    id_hash    BYTEA   PRIMARY KEY,
    user_id    TEXT    REFERENCES users(id) ON DELETE CASCADE, -- NULL: discoverable login, user not yet known
    kind       TEXT    NOT NULL CHECK (kind IN ('register', 'login')),
    data       BYTEA   NOT NULL,           -- JSON of go-webauthn's SessionData (challenge, ...)
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX webauthn_sessions_expires ON webauthn_sessions(expires_at);

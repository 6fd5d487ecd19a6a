-- OpenID Connect logins in flight (issue 3): state, nonce and PKCE verifier,
-- kept in the database so the callback may reach any node. The state is
-- stored only as its hash; a row is taken (deleted) when the callback comes.
CREATE TABLE oidc_pending (
    state_hash BYTEA    PRIMARY KEY,
    nonce      TEXT    NOT NULL,
    verifier   BYTEA    NOT NULL,   -- sealed: the PKCE verifier is a secret
    browser    BYTEA    NOT NULL,   -- hash of the cookie that ties the login to one browser
    created_at BIGINT NOT NULL
);

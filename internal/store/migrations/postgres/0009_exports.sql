-- Export approval (issue 6): an export above export.approval_rows rows, or
-- with revealed fields, is a request that a second person approves. The
-- approved file is produced once, encrypted with age (the requester's
-- password or X25519 recipient) and kept here, so any node can serve it,
-- until it expires. Nothing in these tables is plaintext personal data.

CREATE TABLE export_requests (
    id           TEXT    PRIMARY KEY,          -- UUIDv7; also the subject of the request's data key
    requester_id TEXT    NOT NULL DEFAULT '',  -- user id; '' for the operator at the command line
    requester    TEXT    NOT NULL,             -- actor: user:<id>, token:<id>, cli:<os user>[ as user:<id>]
    status       TEXT    NOT NULL,             -- pending, approved, rejected, cancelled, expired
    format       TEXT    NOT NULL,             -- csv, xlsx
    reveal       TEXT    NOT NULL DEFAULT '',  -- field names to export unmasked, space separated
    filters      TEXT    NOT NULL DEFAULT '{}',-- JSON: filter names and their non-personal values
    row_count    BIGINT  NOT NULL,             -- rows matching when requested
    encryption   TEXT    NOT NULL,             -- password, recipient
    recipient    TEXT    NOT NULL DEFAULT '',  -- age X25519 public key (not secret)
    key_version  BIGINT  NOT NULL,             -- version of the request's data key
    -- Sealed under the request's data key: the list query (the search text
    -- may be a customer's name) and the password-derived age wrapping key.
    -- NULL, and the data key destroyed, once the request is decided.
    sealed       BYTEA,
    created_at   BIGINT  NOT NULL,
    decided_by   TEXT    NOT NULL DEFAULT '',  -- actor who approved, rejected or cancelled ('auto' under the threshold)
    decider_id   TEXT    NOT NULL DEFAULT '',
    decided_at   BIGINT,
    expires_at   BIGINT,                      -- approved files: downloadable until then
    file_rows    BIGINT  NOT NULL DEFAULT 0,
    file_size    BIGINT  NOT NULL DEFAULT 0,
    downloads    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX export_requests_status ON export_requests(status, created_at);
CREATE INDEX export_requests_requester ON export_requests(requester_id, requester, created_at);

-- The approved file: age ciphertext only.
CREATE TABLE export_files (
    request_id TEXT    PRIMARY KEY REFERENCES export_requests(id) ON DELETE CASCADE,
    data       BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL
);

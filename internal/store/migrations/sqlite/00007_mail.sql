-- +goose Up
-- As migrations/postgres/00007, in SQLite's types.
ALTER TABLE users ADD COLUMN email_verified_at DATETIME;

CREATE TABLE mail_tokens (
    token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'change_email')),
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    state      BLOB NOT NULL CHECK (length(state) = 32),
    created_at DATETIME NOT NULL,
    expires_at DATETIME NOT NULL,
    used_at    DATETIME,
    CHECK (expires_at > created_at)
);
CREATE INDEX mail_tokens_user_id_idx ON mail_tokens (user_id);
CREATE INDEX mail_tokens_expires_at_idx ON mail_tokens (expires_at);

CREATE TABLE outbox (
    id          TEXT PRIMARY KEY CHECK (length(id) = 36),
    kind        TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    recipient   TEXT NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    payload     BLOB,
    created_at  DATETIME NOT NULL,
    not_before  DATETIME NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    claim       TEXT,
    lease_until DATETIME,
    sent_at     DATETIME,
    failed_at   DATETIME,
    last_error  TEXT CHECK (last_error IS NULL OR length(last_error) <= 512),
    CHECK (sent_at IS NULL OR failed_at IS NULL),
    CHECK ((payload IS NULL) = (sent_at IS NOT NULL OR failed_at IS NOT NULL))
);
CREATE INDEX outbox_due_idx ON outbox (not_before) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created_at_idx ON outbox (created_at);

-- +goose Down
DROP TABLE outbox;
DROP TABLE mail_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;

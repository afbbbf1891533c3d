-- +goose Up
-- Email ownership: when the address was proved (NULL: not yet).
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

-- Single-use tokens sent by mail. Only the SHA-256 of the secret is stored. email is the address the
-- token proves (the new one for an email change); state binds it to the user's password hash and address
-- when it was issued, so changing either voids it.
CREATE TABLE mail_tokens (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'change_email')),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    state      bytea NOT NULL CHECK (octet_length(state) = 32),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX mail_tokens_user_id_idx ON mail_tokens (user_id);
CREATE INDEX mail_tokens_expires_at_idx ON mail_tokens (expires_at);

-- The transactional outbox: a mail is written in the transaction of the change it belongs to and
-- delivered by a sender on any replica. payload is sealed with the server secret (it may carry a token)
-- and wiped once the mail is sent or given up. claim and lease_until are one sender's lease of the row.
CREATE TABLE outbox (
    id          uuid PRIMARY KEY,
    kind        text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 64),
    recipient   text NOT NULL CHECK (char_length(recipient) BETWEEN 3 AND 254),
    payload     bytea,
    created_at  timestamptz NOT NULL,
    not_before  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    claim       text,
    lease_until timestamptz,
    sent_at     timestamptz,
    failed_at   timestamptz,
    last_error  text CHECK (last_error IS NULL OR char_length(last_error) <= 512),
    CHECK (sent_at IS NULL OR failed_at IS NULL),
    CHECK ((payload IS NULL) = (sent_at IS NOT NULL OR failed_at IS NOT NULL))
);
-- Senders look for due mails; done ones are purged by age.
CREATE INDEX outbox_due_idx ON outbox (not_before) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created_at_idx ON outbox (created_at);

-- +goose Down
DROP TABLE outbox;
DROP TABLE mail_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;

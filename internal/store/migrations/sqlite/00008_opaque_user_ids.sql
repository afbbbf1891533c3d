-- +goose NO TRANSACTION
-- +goose Up
-- As migrations/postgres/00008. SQLite cannot alter a CHECK constraint, so users is rebuilt. Foreign
-- keys are off meanwhile (they can only be switched outside a transaction, hence NO TRANSACTION; the
-- embedded database has a single connection), so dropping the old table does not cascade to
-- sessions, profiles and mail tokens; the rebuild itself is one transaction.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE users_new (
    id                TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    email             TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name              TEXT CHECK (name IS NULL OR length(name) <= 200),
    password_hash     TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%' OR password_hash LIKE '$ba-scrypt$%'),
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL,
    email_verified_at DATETIME
);
INSERT INTO users_new (id, email, name, password_hash, created_at, updated_at, email_verified_at)
    SELECT id, email, name, password_hash, created_at, updated_at, email_verified_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE TABLE better_auth_sessions (
    token_hash   BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at   DATETIME NOT NULL,
    exchanged_at DATETIME
);
CREATE INDEX better_auth_sessions_user_id_idx ON better_auth_sessions (user_id);
CREATE INDEX better_auth_sessions_expires_at_idx ON better_auth_sessions (expires_at);
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
BEGIN;
DROP TABLE better_auth_sessions;
CREATE TABLE users_old (
    id                TEXT PRIMARY KEY CHECK (length(id) = 36),
    email             TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name              TEXT CHECK (name IS NULL OR length(name) <= 200),
    password_hash     TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL,
    email_verified_at DATETIME
);
INSERT INTO users_old SELECT id, email, name, password_hash, created_at, updated_at, email_verified_at FROM users;
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose NO TRANSACTION
-- +goose Up
-- As migrations/postgres/00011. SQLite cannot alter a CHECK constraint, so sessions is rebuilt with
-- the reason 'disabled' allowed, as 00008 rebuilt users: foreign keys off meanwhile (only possible
-- outside a transaction), the rebuild itself one transaction. Nothing references sessions.
PRAGMA foreign_keys = OFF;
BEGIN;
ALTER TABLE users ADD COLUMN disabled_at DATETIME;
CREATE TABLE sessions_new (
    id            TEXT PRIMARY KEY CHECK (length(id) = 36),
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash   BLOB NOT NULL CHECK (length(secret_hash) = 32),
    generation    INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    created_at    DATETIME NOT NULL,
    rotated_at    DATETIME NOT NULL,
    last_used_at  DATETIME NOT NULL,
    expires_at    DATETIME NOT NULL,
    revoked_at    DATETIME,
    revoke_reason TEXT CHECK (revoke_reason IN ('logout', 'reuse', 'logout_others', 'password_change', 'admin', 'disabled')),
    user_agent    TEXT CHECK (user_agent IS NULL OR length(user_agent) <= 512),
    ip            TEXT CHECK (ip IS NULL OR length(ip) <= 45),
    rotated_by    BLOB CHECK (rotated_by IS NULL OR length(rotated_by) = 16),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
    CHECK (expires_at > created_at)
);
INSERT INTO sessions_new (id, user_id, secret_hash, generation, created_at, rotated_at, last_used_at, expires_at,
                          revoked_at, revoke_reason, user_agent, ip, rotated_by)
    SELECT id, user_id, secret_hash, generation, created_at, rotated_at, last_used_at, expires_at,
           revoked_at, revoke_reason, user_agent, ip, rotated_by FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- Fails while sessions ended by disabling are stored: they are purged a day after they end.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE sessions_old (
    id            TEXT PRIMARY KEY CHECK (length(id) = 36),
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash   BLOB NOT NULL CHECK (length(secret_hash) = 32),
    generation    INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    created_at    DATETIME NOT NULL,
    rotated_at    DATETIME NOT NULL,
    last_used_at  DATETIME NOT NULL,
    expires_at    DATETIME NOT NULL,
    revoked_at    DATETIME,
    revoke_reason TEXT CHECK (revoke_reason IN ('logout', 'reuse', 'logout_others', 'password_change', 'admin')),
    user_agent    TEXT CHECK (user_agent IS NULL OR length(user_agent) <= 512),
    ip            TEXT CHECK (ip IS NULL OR length(ip) <= 45),
    rotated_by    BLOB CHECK (rotated_by IS NULL OR length(rotated_by) = 16),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
    CHECK (expires_at > created_at)
);
INSERT INTO sessions_old SELECT id, user_id, secret_hash, generation, created_at, rotated_at, last_used_at, expires_at,
    revoked_at, revoke_reason, user_agent, ip, rotated_by FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_old RENAME TO sessions;
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
ALTER TABLE users DROP COLUMN disabled_at;
COMMIT;
PRAGMA foreign_keys = ON;

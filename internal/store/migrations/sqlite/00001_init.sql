-- +goose Up
-- The same schema as migrations/postgres, in SQLite's types. Times are stored by the driver as
-- UTC text in one fixed format, so they compare correctly as strings.
CREATE TABLE users (
    id            TEXT PRIMARY KEY CHECK (length(id) = 36),
    email         TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name          TEXT CHECK (name IS NULL OR length(name) <= 200),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE profiles (
    user_id            TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    python_proficiency TEXT CHECK (python_proficiency IN ('none', 'beginner', 'intermediate', 'advanced')),
    developer_role     TEXT CHECK (developer_role IN ('student', 'hobbyist', 'software_engineer', 'data_scientist',
                                                      'ml_engineer', 'robotics_engineer', 'researcher', 'educator', 'other')),
    completed_at       DATETIME,
    updated_at         DATETIME NOT NULL,
    CHECK ((completed_at IS NOT NULL) = (python_proficiency IS NOT NULL AND developer_role IS NOT NULL))
);

CREATE TABLE sessions (
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
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 128),
    alg            TEXT NOT NULL CHECK (alg IN ('ES256', 'EdDSA', 'RS256')),
    state          TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired', 'removed')),
    private_sealed BLOB NOT NULL,
    created_at     DATETIME NOT NULL,
    activated_at   DATETIME,
    retired_at     DATETIME,
    removed_at     DATETIME
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE sessions;
DROP TABLE profiles;
DROP TABLE users;

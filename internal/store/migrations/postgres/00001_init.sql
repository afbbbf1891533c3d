-- +goose Up
-- Users sign in by email; uniqueness ignores case so "Ada@x.io" and "ada@x.io" are one account.
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    name          text CHECK (name IS NULL OR char_length(name) <= 200),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- One onboarding profile per user; completed_at is set exactly when both answers are present.
CREATE TABLE profiles (
    user_id            uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    python_proficiency text CHECK (python_proficiency IN ('none', 'beginner', 'intermediate', 'advanced')),
    developer_role     text CHECK (developer_role IN ('student', 'hobbyist', 'software_engineer', 'data_scientist',
                                                      'ml_engineer', 'robotics_engineer', 'researcher', 'educator', 'other')),
    completed_at       timestamptz,
    updated_at         timestamptz NOT NULL,
    CHECK ((completed_at IS NOT NULL) = (python_proficiency IS NOT NULL AND developer_role IS NOT NULL))
);

-- A refresh session. No token is stored: secret_hash is SHA-256 of the 256-bit session secret
-- the client holds, and generation counts rotations (the token of each generation is MAC-bound to it).
CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash   bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    generation    bigint NOT NULL DEFAULT 0 CHECK (generation >= 0),
    created_at    timestamptz NOT NULL,
    rotated_at    timestamptz NOT NULL,
    last_used_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text CHECK (revoke_reason IN ('logout', 'reuse', 'logout_others', 'password_change', 'admin')),
    user_agent    text CHECK (user_agent IS NULL OR char_length(user_agent) <= 512),
    ip            text CHECK (ip IS NULL OR char_length(ip) <= 45),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
    CHECK (expires_at > created_at)
);
-- Listing a user's sessions and the FK cascade from users both look sessions up by user.
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
-- The cleanup job finds ended sessions by when they ended.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- Signing keys; the private part is sealed with an AEAD under a key derived from LANYARD_SECRET.
CREATE TABLE signing_keys (
    kid            text PRIMARY KEY CHECK (char_length(kid) BETWEEN 1 AND 128),
    alg            text NOT NULL CHECK (alg IN ('ES256', 'EdDSA', 'RS256')),
    state          text NOT NULL CHECK (state IN ('next', 'current', 'retired', 'removed')),
    private_sealed bytea NOT NULL,
    created_at     timestamptz NOT NULL,
    activated_at   timestamptz,
    retired_at     timestamptz,
    removed_at     timestamptz
);
-- At most one key signs at a time, whatever several replicas do at first start.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE sessions;
DROP TABLE profiles;
DROP TABLE users;

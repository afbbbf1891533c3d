-- +goose Up
-- User ids become opaque text of 1 to 64 characters: users Lanyard creates keep UUIDs, users imported
-- from Better-Auth keep their original ids, so the application's own tables that reference them need no
-- change. The foreign keys are dropped and re-added around the type change.
ALTER TABLE profiles DROP CONSTRAINT profiles_user_id_fkey;
ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
ALTER TABLE mail_tokens DROP CONSTRAINT mail_tokens_user_id_fkey;
ALTER TABLE users ALTER COLUMN id TYPE text;
ALTER TABLE profiles ALTER COLUMN user_id TYPE text;
ALTER TABLE sessions ALTER COLUMN user_id TYPE text;
ALTER TABLE mail_tokens ALTER COLUMN user_id TYPE text;
ALTER TABLE users ADD CONSTRAINT users_id_check CHECK (char_length(id) BETWEEN 1 AND 64);
ALTER TABLE profiles ADD CONSTRAINT profiles_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE sessions ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE mail_tokens ADD CONSTRAINT mail_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;

-- Imported Better-Auth password hashes are kept as they are behind a marker ($ba-scrypt$<salt>:<key>)
-- until the user's first login replaces them with argon2id.
ALTER TABLE users DROP CONSTRAINT users_password_hash_check;
ALTER TABLE users ADD CONSTRAINT users_password_hash_check
    CHECK (password_hash LIKE '$argon2id$%' OR password_hash LIKE '$ba-scrypt$%');

-- Better-Auth sessions imported with --sessions: only the SHA-256 of the session token, so a live
-- Better-Auth session can be exchanged once (POST /v1/auth/exchange/better-auth) for a Lanyard session.
CREATE TABLE better_auth_sessions (
    token_hash   bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at   timestamptz NOT NULL,
    exchanged_at timestamptz
);
CREATE INDEX better_auth_sessions_user_id_idx ON better_auth_sessions (user_id);
CREATE INDEX better_auth_sessions_expires_at_idx ON better_auth_sessions (expires_at);

-- +goose Down
-- Fails while imported (non-UUID) ids or hashes exist: remove those users first.
DROP TABLE better_auth_sessions;
ALTER TABLE users DROP CONSTRAINT users_password_hash_check;
ALTER TABLE users ADD CONSTRAINT users_password_hash_check CHECK (password_hash LIKE '$argon2id$%');
ALTER TABLE profiles DROP CONSTRAINT profiles_user_id_fkey;
ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
ALTER TABLE mail_tokens DROP CONSTRAINT mail_tokens_user_id_fkey;
ALTER TABLE users DROP CONSTRAINT users_id_check;
ALTER TABLE users ALTER COLUMN id TYPE uuid USING id::uuid;
ALTER TABLE profiles ALTER COLUMN user_id TYPE uuid USING user_id::uuid;
ALTER TABLE sessions ALTER COLUMN user_id TYPE uuid USING user_id::uuid;
ALTER TABLE mail_tokens ALTER COLUMN user_id TYPE uuid USING user_id::uuid;
ALTER TABLE profiles ADD CONSTRAINT profiles_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE sessions ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE mail_tokens ADD CONSTRAINT mail_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;

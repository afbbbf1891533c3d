-- +goose Up
-- The cleanup job finds revoked sessions by revoked_at. last_used_at is not
-- indexed on purpose: every refresh writes it (see migrations/postgres).
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX sessions_revoked_at_idx;

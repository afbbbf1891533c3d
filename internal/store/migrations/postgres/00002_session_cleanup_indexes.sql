-- +goose Up
-- The cleanup job finds idle and revoked sessions by these columns; without
-- the indexes each batch would scan the whole table.
CREATE INDEX sessions_last_used_at_idx ON sessions (last_used_at);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX sessions_revoked_at_idx;
DROP INDEX sessions_last_used_at_idx;

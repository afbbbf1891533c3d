-- +goose Up
-- The cleanup job finds revoked sessions by revoked_at. last_used_at is not
-- indexed on purpose: every refresh writes it, and an index on it would make
-- each refresh update index entries instead of staying a HOT update; the
-- cleanup's idle scan runs every few minutes over a table it keeps small.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
-- Room in each page for the new row versions refreshes write (HOT updates).
ALTER TABLE sessions SET (fillfactor = 80);

-- +goose Down
ALTER TABLE sessions RESET (fillfactor);
DROP INDEX sessions_revoked_at_idx;

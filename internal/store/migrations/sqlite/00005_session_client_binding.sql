-- +goose Up
-- Who advanced a session to its live generation (see migrations/postgres).
ALTER TABLE sessions ADD COLUMN rotated_by BLOB CHECK (rotated_by IS NULL OR length(rotated_by) = 16);

-- +goose Down
ALTER TABLE sessions DROP COLUMN rotated_by;

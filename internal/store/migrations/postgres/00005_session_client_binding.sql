-- +goose Up
-- Who advanced a session to its live generation: a truncated SHA-256 of the
-- rotating client's network (/24, /64) and User-Agent. Inside the grace window
-- the parent is honoured only for that client (LANYARD_REFRESH_GRACE_BINDING).
-- NULL: not recorded (never rotated, rotated with the binding off, or before
-- this migration), and then the grace window is not bound.
-- Adding a nullable column without a default rewrites nothing.
ALTER TABLE sessions ADD COLUMN rotated_by bytea CHECK (rotated_by IS NULL OR octet_length(rotated_by) = 16);

-- +goose Down
ALTER TABLE sessions DROP COLUMN rotated_by;

-- +goose Up
-- What `lanyard import better-auth` last wrote for a user (a SHA-256 of its email, name, creation time,
-- verification and profile answers). A re-run compares it with both sides: Better-Auth's values are
-- copied again only while Lanyard's row is still what the import wrote, so a change made in Lanyard
-- since (a new address, a profile answer) is never undone. NULL for users Lanyard created.
ALTER TABLE users ADD COLUMN imported_fingerprint bytea CHECK (imported_fingerprint IS NULL OR octet_length(imported_fingerprint) = 32);

-- +goose Down
ALTER TABLE users DROP COLUMN imported_fingerprint;

-- +goose Up
-- As migrations/postgres/00009.
ALTER TABLE users ADD COLUMN imported_fingerprint BLOB CHECK (imported_fingerprint IS NULL OR length(imported_fingerprint) = 32);

-- +goose Down
ALTER TABLE users DROP COLUMN imported_fingerprint;

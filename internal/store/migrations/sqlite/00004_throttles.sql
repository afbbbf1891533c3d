-- +goose Up
-- The same table as migrations/postgres (see the comments there).
CREATE TABLE throttles (
    scope            TEXT    NOT NULL CHECK (length(scope) BETWEEN 1 AND 32),
    key              BLOB    NOT NULL CHECK (length(key) = 32),
    failures         INTEGER NOT NULL CHECK (failures >= 0),
    window_start_ms  INTEGER NOT NULL,
    window_ms        INTEGER NOT NULL CHECK (window_ms > 0),
    limit_count      INTEGER NOT NULL CHECK (limit_count > 0),
    blocked_until_ms INTEGER NOT NULL,
    next_delay_ms    INTEGER NOT NULL CHECK (next_delay_ms >= 0),
    expires_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX throttles_expires_at_idx ON throttles (expires_at_ms);

-- +goose Down
DROP TABLE throttles;

-- +goose Up
-- Failure counters shared by every replica (login and sign-up throttling).
-- key is an HMAC-SHA-256 of the normalised value (account, client IP or both),
-- never an email or an address in clear. Times are Unix milliseconds on the
-- database's clock, so one upsert does its arithmetic the same way on both
-- databases. limit_count and window_ms are the rule the last attempt ran
-- under; next_delay_ms is the block the next failure past the limit earns
-- (it doubles up to LANYARD_RATE_LIMIT_MAX_DELAY); expires_at_ms is when the
-- row is worth nothing any more (cleanup deletes it then).
CREATE TABLE throttles (
    scope            text   NOT NULL CHECK (char_length(scope) BETWEEN 1 AND 32),
    key              bytea  NOT NULL CHECK (octet_length(key) = 32),
    failures         bigint NOT NULL CHECK (failures >= 0),
    window_start_ms  bigint NOT NULL,
    window_ms        bigint NOT NULL CHECK (window_ms > 0),
    limit_count      bigint NOT NULL CHECK (limit_count > 0),
    blocked_until_ms bigint NOT NULL,
    next_delay_ms    bigint NOT NULL CHECK (next_delay_ms >= 0),
    expires_at_ms    bigint NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX throttles_expires_at_idx ON throttles (expires_at_ms);

-- +goose Down
DROP TABLE throttles;

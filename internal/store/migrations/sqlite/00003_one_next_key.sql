-- +goose Up
-- At most one key waits to sign next, however many replicas decide at once
-- that a rotation is due.
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';

-- +goose Down
DROP INDEX signing_keys_one_next;

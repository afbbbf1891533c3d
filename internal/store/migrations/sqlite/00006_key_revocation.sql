-- +goose Up
-- As migrations/postgres/00006. SQLite cannot alter a CHECK constraint, so the table is
-- rebuilt (nothing references signing_keys) and its indexes recreated.
CREATE TABLE signing_keys_new (
    kid            TEXT PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 128),
    alg            TEXT NOT NULL CHECK (alg IN ('ES256', 'EdDSA', 'RS256')),
    state          TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired', 'removed', 'revoked')),
    private_sealed BLOB NOT NULL,
    created_at     DATETIME NOT NULL,
    activated_at   DATETIME,
    retired_at     DATETIME,
    removed_at     DATETIME,
    revoked_at     DATETIME,
    CHECK ((state = 'revoked') = (revoked_at IS NOT NULL))
);
INSERT INTO signing_keys_new (kid, alg, state, private_sealed, created_at, activated_at, retired_at, removed_at)
    SELECT kid, alg, state, private_sealed, created_at, activated_at, retired_at, removed_at FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';

-- +goose Down
-- A revoked key must never be published again: going down removes it for good.
CREATE TABLE signing_keys_old (
    kid            TEXT PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 128),
    alg            TEXT NOT NULL CHECK (alg IN ('ES256', 'EdDSA', 'RS256')),
    state          TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired', 'removed')),
    private_sealed BLOB NOT NULL,
    created_at     DATETIME NOT NULL,
    activated_at   DATETIME,
    retired_at     DATETIME,
    removed_at     DATETIME
);
INSERT INTO signing_keys_old (kid, alg, state, private_sealed, created_at, activated_at, retired_at, removed_at)
    SELECT kid, alg, CASE state WHEN 'revoked' THEN 'removed' ELSE state END, private_sealed, created_at,
           activated_at, retired_at, CASE state WHEN 'revoked' THEN revoked_at ELSE removed_at END
    FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_old RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';

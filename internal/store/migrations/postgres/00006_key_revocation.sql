-- +goose Up
-- A key can be revoked (`lanyard keys revoke`): withdrawn from the JWKS at once,
-- whatever state it was in, because it may be compromised. revoked_at says when;
-- the state and the time are set together.
ALTER TABLE signing_keys ADD COLUMN revoked_at timestamptz;
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_state_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_state_check
    CHECK (state IN ('next', 'current', 'retired', 'removed', 'revoked'));
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_revoked_at_check
    CHECK ((state = 'revoked') = (revoked_at IS NOT NULL));

-- +goose Down
-- A revoked key must never be published again: going down removes it for good.
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_revoked_at_check;
UPDATE signing_keys SET state = 'removed', removed_at = revoked_at WHERE state = 'revoked';
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_state_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_state_check
    CHECK (state IN ('next', 'current', 'retired', 'removed'));
ALTER TABLE signing_keys DROP COLUMN revoked_at;

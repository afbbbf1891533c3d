-- +goose Up
-- When an operator disabled the account (lanyard users disable, POST /v1/admin/users/{id}/disable);
-- NULL while it is enabled. A disabled user cannot log in, refresh or exchange a Better-Auth session
-- (403 account_disabled), and Lanyard's own bearer endpoints refuse its access tokens. Adding a
-- nullable column without a default rewrites nothing.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
-- Disabling ends every session of the user with the reason 'disabled'. NOT VALID: the rows already
-- stored satisfy the old, narrower check, so they need no scan under lock.
ALTER TABLE sessions DROP CONSTRAINT sessions_revoke_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoke_reason_check
    CHECK (revoke_reason IN ('logout', 'reuse', 'logout_others', 'password_change', 'admin', 'disabled')) NOT VALID;

-- +goose Down
-- Fails while sessions ended by disabling are stored: they are purged a day after they end.
ALTER TABLE sessions DROP CONSTRAINT sessions_revoke_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoke_reason_check
    CHECK (revoke_reason IN ('logout', 'reuse', 'logout_others', 'password_change', 'admin'));
ALTER TABLE users DROP COLUMN disabled_at;

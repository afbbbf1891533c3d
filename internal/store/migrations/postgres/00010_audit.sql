-- +goose Up
-- The audit trail: one row per security event, written in the transaction (or the statement) of the
-- change it records. user_id has no foreign key: events outlive the user they name, and a deleted
-- user's events keep only the id. details is a small JSON object of strings and never holds a secret,
-- password, token, hash or email address. Rows are only ever inserted, and deleted by age (retention,
-- LANYARD_AUDIT_RETENTION): the trigger below refuses every UPDATE.
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    type       text NOT NULL CHECK (char_length(type) BETWEEN 1 AND 64),
    user_id    text CHECK (user_id IS NULL OR char_length(user_id) BETWEEN 1 AND 64),
    actor      text NOT NULL CHECK (actor IN ('user', 'admin', 'system')),
    ip         text NOT NULL DEFAULT '' CHECK (char_length(ip) <= 64),
    user_agent text NOT NULL DEFAULT '' CHECK (char_length(user_agent) <= 512),
    details    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);
CREATE INDEX audit_events_user_id_idx ON audit_events (user_id, id DESC);
CREATE INDEX audit_events_type_idx ON audit_events (type, id DESC);
CREATE INDEX audit_events_at_idx ON audit_events (at);

-- Append-only: an UPDATE of any row fails, whoever runs it (DELETE stays allowed for the retention purge).
-- +goose StatementBegin
CREATE FUNCTION audit_events_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: UPDATE is not allowed' USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_update();

-- +goose Down
DROP TABLE audit_events;
DROP FUNCTION audit_events_refuse_update();

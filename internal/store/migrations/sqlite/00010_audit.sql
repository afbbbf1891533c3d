-- +goose Up
-- As migrations/postgres/00010, in SQLite's types; details is a JSON object as text.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         DATETIME NOT NULL,
    type       TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
    user_id    TEXT CHECK (user_id IS NULL OR length(user_id) BETWEEN 1 AND 64),
    actor      TEXT NOT NULL CHECK (actor IN ('user', 'admin', 'system')),
    ip         TEXT NOT NULL DEFAULT '' CHECK (length(ip) <= 64),
    user_agent TEXT NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_user_id_idx ON audit_events (user_id, id DESC);
CREATE INDEX audit_events_type_idx ON audit_events (type, id DESC);
CREATE INDEX audit_events_at_idx ON audit_events (at);

-- +goose StatementBegin
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE is not allowed');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_events;

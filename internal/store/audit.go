package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// The audit trail (identity.AuditLog). Rows are only inserted, and deleted
// by age: on PostgreSQL a trigger refuses every UPDATE of audit_events
// (migrations/postgres/00010_audit.sql), on SQLite a trigger does the same.

// Bounds the table's CHECK constraints hold; longer values are clipped,
// since an event must never make its change fail.
const (
	auditMaxIP        = 64
	auditMaxUserAgent = 512
	// maxAuditList bounds one ListAudit page.
	maxAuditList = 1000
)

// auditDetails encodes the details as a JSON object ({} when there are none).
func auditDetails(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("store: audit details: %w", err)
	}
	return string(b), nil
}

// clip shortens s to at most n characters (the CHECK constraints count
// characters), keeping it valid UTF-8.
func clip(s string, n int) string {
	return truncate(strings.ToValidUTF8(s, "\uFFFD"), n)
}

// auditArgs are the values of an event's row, in the column order of
// auditColumns; user_id is NULL when no account is known.
func auditArgs(e identity.AuditEvent) ([]any, error) {
	if e.Type == "" || e.Actor == "" {
		return nil, fmt.Errorf("store: audit event without type or actor")
	}
	details, err := auditDetails(e.Details)
	if err != nil {
		return nil, err
	}
	return []any{e.At, e.Type, nullable(e.UserID), e.Actor, clip(e.IP, auditMaxIP), clip(e.UserAgent, auditMaxUserAgent), details}, nil
}

const auditColumns = `at, type, user_id, actor, ip, user_agent, details`

// withoutUser drops user_id from auditArgs, for statements that take it
// from the row they change.
func withoutUser(args []any) []any {
	return append(append([]any{}, args[:2]...), args[3:]...)
}

// AppendAudit implements identity.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, e identity.AuditEvent) error {
	args, err := auditArgs(e)
	if err != nil {
		return err
	}
	return s.execNumbered(ctx, `INSERT INTO lanyard.audit_events (`+auditColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, args)
}

type auditRow struct {
	ID        int64
	At        dbTime
	Type      string
	UserID    *string
	Actor     string
	IP        string `gorm:"column:ip"`
	UserAgent string
	Details   string
}

// ListAudit implements identity.AuditLog: newest first, at most
// maxAuditList events (Limit <= 0 means 50).
func (s *Store) ListAudit(ctx context.Context, q identity.AuditQuery) ([]identity.AuditEvent, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, maxAuditList)
	details := "details"
	if s.dialect == Postgres {
		details = "details::text"
	}
	var where []string
	args := map[string]any{"limit": limit}
	if q.UserID != "" {
		where, args["user_id"] = append(where, "user_id = @user_id"), q.UserID
	}
	if q.Type != "" {
		where, args["type"] = append(where, "type = @type"), q.Type
	}
	if q.Before > 0 {
		where, args["before"] = append(where, "id < @before"), q.Before
	}
	query := `SELECT id, at, type, user_id, actor, ip, user_agent, ` + details + ` AS details FROM lanyard.audit_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT @limit`
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []auditRow
	if err := s.db.WithContext(ctx).Raw(query, args).Scan(&rows).Error; err != nil {
		return nil, s.fail(err)
	}
	out := make([]identity.AuditEvent, len(rows))
	for i, r := range rows {
		e := identity.AuditEvent{ID: r.ID, At: r.At.Time, Type: r.Type, Actor: r.Actor, IP: r.IP, UserAgent: r.UserAgent}
		if r.UserID != nil {
			e.UserID = *r.UserID
		}
		if r.Details != "" && r.Details != "{}" {
			if err := json.Unmarshal([]byte(r.Details), &e.Details); err != nil {
				return nil, fmt.Errorf("store: audit event %d: details: %w", r.ID, err)
			}
		}
		out[i] = e
	}
	return out, nil
}

// PurgeAudit implements identity.AuditLog.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time, batch int) (int64, error) {
	return s.purge(ctx, `DELETE FROM lanyard.audit_events WHERE id IN (SELECT id FROM lanyard.audit_events
WHERE at < @before ORDER BY at LIMIT @batch`, before, batch)
}

package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

// TestAuditAppendOnly: the database itself refuses to change an audit
// event, whoever asks (DELETE stays possible: retention purges by age).
func TestAuditAppendOnly(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, d)
			ctx := context.Background()
			user := uuid.NewString()
			require.NoError(t, s.AppendAudit(ctx, identity.AuditEvent{At: t0, Type: identity.AuditLoginFailed, UserID: user,
				Actor: identity.ActorUser, IP: "192.0.2.1", Details: map[string]string{"reason": "wrong_password"}}))
			db := testdb.SQL(t, s)
			for _, stmt := range []string{
				`UPDATE audit_events SET type = 'login_succeeded'`,
				`UPDATE audit_events SET user_id = NULL WHERE user_id = ?`,
				`UPDATE audit_events SET details = '{}'`,
			} {
				args := []any{}
				if len(stmt) > 0 && stmt[len(stmt)-1] == '?' {
					args = append(args, user)
				}
				err := db.Exec(stmt, args...).Error
				require.Error(t, err, stmt)
				assert.Contains(t, err.Error(), "append-only", stmt)
			}
			events, err := s.ListAudit(ctx, identity.AuditQuery{UserID: user})
			require.NoError(t, err)
			require.Len(t, events, 1)
			assert.Equal(t, identity.AuditLoginFailed, events[0].Type, "unchanged")
			assert.Equal(t, "wrong_password", events[0].Details["reason"])

			// The schema refuses what no writer should store.
			assert.Error(t, db.Exec(`INSERT INTO audit_events (at, type, actor) VALUES (?, 'x', 'root')`, t0).Error, "unknown actor")
			assert.Error(t, db.Exec(`INSERT INTO audit_events (at, type, actor, user_id) VALUES (?, 'x', 'user', '')`, t0).Error,
				"no account is NULL, not ''")

			require.NoError(t, db.Exec(`DELETE FROM audit_events WHERE user_id = ?`, user).Error, "retention may delete")
			events, err = s.ListAudit(ctx, identity.AuditQuery{UserID: user})
			require.NoError(t, err)
			assert.Empty(t, events)
		})
	}
}

// TestTransactionPastItsDeadline: a transaction that outlives the store's
// operation deadline is rolled back, keeps none of its writes, and reports
// the database unavailable (503 and Retry-After upstream), not the "already
// rolled back" error its next statement gets.
func TestTransactionPastItsDeadline(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			opts := store.Options{Timeout: 100 * time.Millisecond}
			if d == store.Postgres {
				opts.PostgresURL = testdb.PostgresURL(t)
			} else {
				opts.SQLitePath = filepath.Join(t.TempDir(), "lanyard.db")
			}
			s := testdb.OpenWith(t, opts)
			ctx := context.Background()
			user := uuid.NewString()
			written := 0
			err := s.Atomically(ctx, func(tx identity.Tx) error {
				// Writes until the deadline ends the transaction under them.
				for range 10_000_000 {
					if err := tx.AppendAudit(ctx, identity.AuditEvent{At: t0, Type: identity.AuditLoginFailed, UserID: user, Actor: identity.ActorUser}); err != nil {
						return err
					}
					written++
				}
				return nil
			})
			require.Error(t, err)
			assert.ErrorIs(t, err, identity.ErrUnavailable)
			assert.Positive(t, written, "some writes ran before the deadline")
			events, err := s.ListAudit(ctx, identity.AuditQuery{UserID: user})
			require.NoError(t, err)
			assert.Empty(t, events, "none of them stays")
		})
	}
}

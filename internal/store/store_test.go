package store_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/store/storetest"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

const testHash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 123456000, time.UTC)

// TestConformance runs the backend suite on every database Lanyard supports.
func TestConformance(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) storetest.Store { return testdb.Open(t, d) })
		})
	}
	// Through a pooler in transaction mode, as on Neon's pooled endpoint:
	// migrations, locks and every statement.
	for _, mode := range []string{"exec", "simple_protocol"} { // the two modes docs/operations.md names
		t.Run("postgres-pgbouncer-"+mode, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) storetest.Store {
				s := testdb.OpenPooledMode(t, mode)
				require.False(t, s.ServerTimeouts(), "the pooler refused the startup parameters and the store went on without them")
				return s
			})
		})
	}
}

// signUp stores a user with its first session.
func signUp(t *testing.T, s *store.Store, email string) (identity.User, identity.NewSession) {
	t.Helper()
	u := identity.User{ID: uuid.NewString(), Email: email, CreatedAt: t0}
	secret := sha256.Sum256([]byte(u.ID))
	ns := identity.NewSession{ID: uuid.NewString(), UserID: u.ID, SecretHash: secret[:], CreatedAt: t0, ExpiresAt: t0.Add(720 * time.Hour)}
	ctx := context.Background()
	require.NoError(t, s.Atomically(ctx, func(tx identity.Tx) error {
		if err := tx.CreateUser(ctx, u, testHash); err != nil {
			return err
		}
		return tx.CreateSession(ctx, ns)
	}))
	return u, ns
}

// TestSchemaConstraints: the schema itself refuses what no code path should
// write, so a buggy writer cannot store it either.
func TestSchemaConstraints(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, d)
			u, _ := signUp(t, s, "schema@example.com")
			db := testdb.SQL(t, s)
			assert.Error(t, db.Exec(`INSERT INTO profiles (user_id, python_proficiency, updated_at) VALUES (?, 'guru', ?)`, u.ID, t0).Error)
			assert.Error(t, db.Exec(`INSERT INTO profiles (user_id, python_proficiency, developer_role, updated_at) VALUES (?, 'none', 'student', ?)`, u.ID, t0).Error,
				"completed_at must be set when both answers are")
			assert.Error(t, db.Exec(`UPDATE sessions SET revoke_reason = 'logout' WHERE user_id = ?`, u.ID).Error,
				"a revoke reason needs a revocation time")
			var n int64
			require.NoError(t, db.Raw(`SELECT count(*) FROM profiles`).Scan(&n).Error)
			assert.Zero(t, n)
		})
	}
}

// TestDeadline: an operation stuck behind a lock gives up at the deadline
// with ErrUnavailable, and a rotation that gave up did not commit.
func TestDeadline(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, d)
			u, ns := signUp(t, s, "deadline@example.com")
			ctx := context.Background()
			timeout := 300 * time.Millisecond
			bounded := reopen(t, s, timeout)

			// Another writer holds the session row (Postgres) or the database
			// (SQLite) in an open transaction.
			tx := testdb.SQL(t, s).Begin()
			require.NoError(t, tx.Error)
			require.NoError(t, tx.Exec(`UPDATE sessions SET last_used_at = last_used_at WHERE id = ?`, ns.ID).Error)

			start := time.Now()
			_, err := bounded.RotateSession(ctx, identity.RotateRequest{
				SessionID: ns.ID, SecretHash: ns.SecretHash, Generation: 0,
				Now: t0.Add(time.Minute), GraceStart: t0.Add(time.Minute - 10*time.Second), IdleCutoff: t0.Add(-time.Hour),
			})
			elapsed := time.Since(start)
			require.NoError(t, tx.Rollback().Error)
			require.Error(t, err)
			assert.ErrorIs(t, err, identity.ErrUnavailable)
			assert.Less(t, elapsed, timeout+time.Second, "gave up at the deadline")

			st, err := bounded.SessionState(ctx, ns.ID, ns.SecretHash)
			require.NoError(t, err)
			assert.True(t, st.LastUsedAt.Equal(t0), "the rotation that gave up did not commit")
			r, err := bounded.RotateSession(ctx, identity.RotateRequest{
				SessionID: ns.ID, SecretHash: ns.SecretHash, Generation: 0,
				Now: t0.Add(time.Minute), GraceStart: t0.Add(time.Minute - 10*time.Second), IdleCutoff: t0.Add(-time.Hour),
			})
			require.NoError(t, err, "the pool is healthy afterwards")
			assert.Equal(t, int64(1), r.Generation)
			assert.Equal(t, u.ID, r.User.ID)
		})
	}
}

// reopen opens a second store on the database behind s with another deadline.
func reopen(t *testing.T, s *store.Store, timeout time.Duration) *store.Store {
	t.Helper()
	opts := testdb.OptionsOf(t, s)
	opts.Timeout = timeout
	bounded, err := store.Open(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { bounded.Close() })
	return bounded
}

// TestUnreachable: a database that is gone is "unavailable", not a bug.
func TestUnreachable(t *testing.T) {
	s := testdb.Open(t, store.Postgres)
	require.NoError(t, s.Close())
	_, err := s.UserByID(context.Background(), uuid.NewString())
	assert.ErrorIs(t, err, identity.ErrUnavailable)
	assert.ErrorIs(t, s.Ping(context.Background()), identity.ErrUnavailable)

	_, err = store.Open(context.Background(), store.Options{PostgresURL: "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", Timeout: time.Second})
	require.Error(t, err)
	assert.ErrorIs(t, err, identity.ErrUnavailable)
}

// TestCancelReachesTheServer: cancelling a statement that waits behind a
// lock cancels it on the server before the call returns. Otherwise it would
// keep waiting there and, as an auto-commit statement, commit once the lock
// went: after its request had answered, or after the process had exited
// (pgx's default sends the cancel request from a goroutine, afterwards).
func TestCancelReachesTheServer(t *testing.T) {
	s := testdb.Open(t, store.Postgres)
	_, ns := signUp(t, s, "cancel@example.com")
	tx := testdb.SQL(t, s).Begin()
	require.NoError(t, tx.Error)
	require.NoError(t, tx.Exec(`LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`).Error)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.RotateSession(ctx, identity.RotateRequest{
			SessionID: ns.ID, SecretHash: ns.SecretHash, Generation: 0,
			Now: t0.Add(time.Minute), GraceStart: t0.Add(time.Minute - 10*time.Second), IdleCutoff: t0.Add(-time.Hour),
		})
		done <- err
	}()
	raw := testdb.SQL(t, s)
	waiting := func() int64 {
		var n int64
		require.NoError(t, raw.Raw(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE lanyard.sessions%' AND datname = current_database()`).Scan(&n).Error)
		return n
	}
	require.Eventually(t, func() bool { return waiting() == 1 }, 5*time.Second, 10*time.Millisecond, "the rotation waits on the lock")
	cancel()
	err := <-done
	assert.ErrorIs(t, err, identity.ErrUnavailable)
	assert.Zero(t, waiting(), "the server stopped waiting before the call returned (a process exiting now leaves nothing behind)")
	require.NoError(t, tx.Rollback().Error)

	st, err := s.SessionState(context.Background(), ns.ID, ns.SecretHash)
	require.NoError(t, err)
	assert.True(t, st.LastUsedAt.Equal(t0), "nothing committed once the lock went")
	require.NoError(t, s.Ping(context.Background()), "the pool is healthy")
}

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
	"github.com/lanyard-id/lanyard/internal/testdb"
)

// TestDeleteUserRacingExchange: a Better-Auth exchange locks its session
// row, then needs a key-share lock on the user row (the new session's
// foreign key). A deletion racing it must take the rows in the same order
// (the Better-Auth sessions before the user row): the other way round, the
// deletion holds the user row while its cascade waits for the session row,
// and PostgreSQL aborts one of the two with a deadlock (40P01).
func TestDeleteUserRacingExchange(t *testing.T) {
	s := testdb.Open(t, store.Postgres)
	dbURL := testdb.OptionsOf(t, s).PostgresURL
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	userID, email := uuid.NewString(), "racing-delete@example.com"
	require.NoError(t, s.CreateUser(ctx, identity.User{ID: userID, Email: email, CreatedAt: t0}, "$argon2id$not-a-real-hash"))
	token := sha256.Sum256([]byte("racing-delete-better-auth-token"))
	exchange, monitor := testdb.Connect(t, dbURL), testdb.Connect(t, dbURL)
	_, err := exchange.Exec(ctx, `INSERT INTO lanyard.better_auth_sessions (user_id, token_hash, expires_at) VALUES ($1, $2, now() + interval '1 day')`,
		userID, token[:])
	require.NoError(t, err)

	// The exchange spends the session: its row is locked until it commits.
	tx, err := exchange.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	_, err = tx.Exec(ctx, `UPDATE lanyard.better_auth_sessions SET exchanged_at = now() WHERE token_hash = $1`, token[:])
	require.NoError(t, err)
	var exchangePID int
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&exchangePID))

	// The deletion starts meanwhile and waits for a lock.
	deleted := make(chan error, 1)
	go func() {
		deleted <- s.Atomically(ctx, func(tx identity.Tx) error {
			return tx.DeleteUser(ctx, userID, email, nil, nil)
		})
	}()
	require.Eventually(t, func() bool {
		var n int
		err := monitor.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
AND wait_event_type = 'Lock' AND $1 = ANY (pg_blocking_pids(pid))`, exchangePID).Scan(&n)
		return err == nil && n == 1
	}, 10*time.Second, 5*time.Millisecond, "the deletion waits for the exchange")

	// The exchange opens its session: a key-share lock on the user row. The
	// deletion must not hold that row yet.
	_, err = tx.Exec(ctx, `SELECT 1 FROM lanyard.users WHERE id = $1 FOR KEY SHARE`, userID)
	require.NoError(t, err, "the exchange gets the user row: no deadlock")
	require.NoError(t, tx.Commit(ctx))

	require.NoError(t, <-deleted, "the deletion goes through after the exchange")
	_, err = s.UserByID(ctx, userID)
	assert.ErrorIs(t, err, identity.ErrNotFound)
	var left int
	require.NoError(t, monitor.QueryRow(ctx, `SELECT count(*) FROM lanyard.better_auth_sessions WHERE user_id = $1`, userID).Scan(&left))
	assert.Zero(t, left, "the Better-Auth session went with the user")
}

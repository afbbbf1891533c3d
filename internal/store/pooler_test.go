package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

// TestPoolerThatIgnoresStartupParameters: a PgBouncer in transaction mode
// configured to accept and drop statement_timeout and lock_timeout gives
// no refusal to recognise it by, and the URL sets no execution mode. The
// store sees the timeouts missing and sends every statement unnamed, so
// clients sharing the pooler's one server connection never meet each
// other's prepared statements ("prepared statement … already exists").
func TestPoolerThatIgnoresStartupParameters(t *testing.T) {
	pooled := testdb.StartPgBouncerWith(t, testdb.PostgresURL(t), testdb.PgBouncerOptions{
		PoolSize: 1, IgnoreStartupParameters: []string{"statement_timeout", "lock_timeout"}})
	s := testdb.OpenWith(t, store.Options{PostgresURL: pooled, MaxOpenConns: 8})
	assert.False(t, s.ServerTimeouts(), "the pooler dropped the timeouts, and the store noticed")

	ctx := context.Background()
	const workers, rounds = 8, 25
	errs := make(chan error, 2*workers*rounds) // at most two per round: no send blocks
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				// The same statements from every client connection: named
				// and cached, they would collide on the one server connection.
				_, err := s.UserByID(ctx, fmt.Sprintf("00000000-0000-4000-8000-%012d", w*rounds+r))
				if err != nil && !errors.Is(err, identity.ErrNotFound) {
					errs <- err
				}
				if _, err := s.DatabaseNow(ctx); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

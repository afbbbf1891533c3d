package identity_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/keys"
)

// staleFirstRead answers the first SigningKeys call as if the table were
// empty: exactly what a replica sees when another one stores the first key
// between its read and its insert.
type staleFirstRead struct {
	identity.KeyStore
	once sync.Once
}

func (s *staleFirstRead) SigningKeys(ctx context.Context) ([]identity.SigningKeyRecord, error) {
	stale := false
	s.once.Do(func() { stale = true })
	if stale {
		return nil, nil
	}
	return s.KeyStore.SigningKeys(ctx)
}

func sealer(t *testing.T) *keys.Sealer {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	s, err := keys.NewSealer(secret)
	require.NoError(t, err)
	return s
}

// TestFirstKeyRace: replicas that start on an empty database end up with one
// signing key between them, whether the race is lost deterministically or
// run for real.
func TestFirstKeyRace(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			st := testdb.Open(t, d)
			seal := sealer(t)
			ctx := context.Background()
			now := identity.Now()

			winner, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, now)
			require.NoError(t, err)
			loser, _, err := identity.LoadKeyRing(ctx, &staleFirstRead{KeyStore: st}, seal, keys.ES256, now)
			require.NoError(t, err, "the loser's insert conflicts and it reads the winner's key back")
			assert.Equal(t, winner.Ring().SigningKeyID(), loser.Ring().SigningKeyID())

			for round := range 5 {
				require.NoError(t, testdb.SQL(t, st).Exec(`DELETE FROM signing_keys`).Error)
				var wg sync.WaitGroup
				start := make(chan struct{})
				kids := make([]string, 4)
				for i := range kids {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						ring, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, now.Add(time.Duration(round)*time.Second))
						if assert.NoError(t, err) {
							kids[i] = ring.Ring().SigningKeyID()
						}
					}()
				}
				close(start)
				wg.Wait()
				for _, kid := range kids {
					assert.Equal(t, kids[0], kid, "round %d: every replica signs with the same key", round)
				}
				var n int64
				require.NoError(t, testdb.SQL(t, st).Raw(`SELECT count(*) FROM signing_keys`).Scan(&n).Error)
				assert.EqualValues(t, 1, n)
			}
		})
	}
}

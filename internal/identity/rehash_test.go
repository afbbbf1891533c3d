package identity_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/keys"
)

// TestLoginsRacingRehash: after an argon2 parameter change, correct logins
// racing each other all succeed, although each finds the hash it checked
// replaced by another's re-hash (a failed compare-and-swap re-reads the hash
// and verifies the password against it); the stored hash ends up with the
// new parameters.
func TestLoginsRacingRehash(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := testdb.Open(t, d)
			clk := tokentest.NewClock(identity.Now())
			secret := newSecret()
			before := newService(t, st, st, clk.Now, secret)
			signed, err := before.SignUp(ctx, identity.SignUpInput{Email: "dormant@example.com", Password: pw}, identity.Client{})
			require.NoError(t, err)

			stronger, err := password.NewHasher(password.Params{MemoryKiB: 4096, Time: 2, Threads: 1}, 8, 30*time.Second)
			require.NoError(t, err)
			sealer, err := keys.NewSealer(secret)
			require.NoError(t, err)
			ring, _, err := identity.LoadKeyRing(ctx, st, sealer, keys.ES256, clk.Now())
			require.NoError(t, err)
			cfg := testConfig
			cfg.Secret = secret
			after, err := identity.NewService(cfg, st, stronger, ring, slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			after.Now = clk.Now

			const n = 16
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = after.LogIn(ctx, "dormant@example.com", pw, identity.Client{IP: "192.0.2.1"})
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				assert.NoError(t, err, "login %d", i)
			}
			hash, err := st.PasswordHashByID(ctx, signed.User.ID)
			require.NoError(t, err)
			assert.True(t, strings.Contains(hash, "$m=4096,t=2,p=1$"), hash)
		})
	}
}

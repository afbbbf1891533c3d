package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/keys"
)

// TestRevokeKey: a revoked key leaves the published set of the ring that
// revoked it at once and of another replica's at its next maintenance; a
// revoked signing key hands over to a successor in the same transaction.
func TestRevokeKey(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			st := testdb.Open(t, d)
			seal := sealer(t)
			t0 := identity.Now()
			ring, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, t0)
			require.NoError(t, err)
			replica, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, t0)
			require.NoError(t, err)
			a := ring.Ring().SigningKeyID()
			tokenA, err := ring.Sign([]byte(`{"sub":"a"}`))
			require.NoError(t, err)

			_, err = ring.Revoke(ctx, st, seal, policy, "no-such-kid", t0)
			require.ErrorIs(t, err, identity.ErrNotFound)
			assert.Contains(t, err.Error(), `"no-such-kid"`, "the error names the kid")
			assert.Equal(t, map[string]string{a: identity.KeyStateCurrent}, states(t, st), "nothing changed")

			// Revoking the signing key: a new key signs at once.
			b, err := ring.Revoke(ctx, st, seal, policy, a, t0.Add(time.Minute))
			require.NoError(t, err)
			assert.NotEqual(t, a, b)
			assert.Equal(t, b, ring.Ring().SigningKeyID())
			assert.Equal(t, map[string]string{a: identity.KeyStateRevoked, b: identity.KeyStateCurrent}, states(t, st))
			assert.NotContains(t, string(ring.Ring().JWKS()), a)
			_, err = ring.Verify(tokenA)
			assert.Error(t, err, "the revoked key's tokens no longer verify")

			// Another replica still trusts A until its next tick, then not.
			_, err = replica.Verify(tokenA)
			require.NoError(t, err)
			changed, err := replica.Maintain(ctx, st, seal, policy, t0.Add(2*time.Minute))
			require.NoError(t, err)
			assert.True(t, changed)
			_, err = replica.Verify(tokenA)
			assert.Error(t, err)
			assert.Equal(t, b, replica.Ring().SigningKeyID())

			// Revoking again is refused, naming when it happened.
			_, err = ring.Revoke(ctx, st, seal, policy, a, t0.Add(3*time.Minute))
			require.ErrorIs(t, err, identity.ErrKeyRevoked)

			// A waiting next key takes over when the signing key is revoked;
			// a retired key can be revoked before its tokens expire.
			require.NoError(t, ring.Rotate(ctx, st, seal, policy, t0.Add(4*time.Minute), false))
			c := ""
			for kid, state := range states(t, st) {
				if state == identity.KeyStateNext {
					c = kid
				}
			}
			require.NotEmpty(t, c)
			tokenB, err := ring.Sign([]byte(`{"sub":"b"}`))
			require.NoError(t, err)
			signing, err := ring.Revoke(ctx, st, seal, policy, b, t0.Add(5*time.Minute))
			require.NoError(t, err)
			assert.Equal(t, c, signing, "the published next key signs, rather than an unpublished one")
			_, err = ring.Verify(tokenB)
			assert.Error(t, err)
			tokenC, err := ring.Sign([]byte(`{"sub":"c"}`))
			require.NoError(t, err)
			require.NoError(t, ring.Rotate(ctx, st, seal, policy, t0.Add(6*time.Minute), true))
			assert.Equal(t, identity.KeyStateRetired, states(t, st)[c])
			_, err = ring.Verify(tokenC)
			require.NoError(t, err, "retired keys verify until revoked")
			_, err = ring.Revoke(ctx, st, seal, policy, c, t0.Add(7*time.Minute))
			require.NoError(t, err)
			_, err = ring.Verify(tokenC)
			assert.Error(t, err)
			assert.Equal(t, identity.KeyStateRevoked, states(t, st)[c])
			for _, r := range mustRecords(t, st) {
				assert.Equal(t, r.State == identity.KeyStateRevoked, r.RevokedAt != nil, "%s: revoked_at is set exactly when revoked", r.KID)
			}
		})
	}
}

func mustRecords(t *testing.T, st identity.KeyStore) []identity.SigningKeyRecord {
	t.Helper()
	records, err := st.SigningKeys(context.Background())
	require.NoError(t, err)
	return records
}

package identity_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/keys"
	"github.com/lanyard-id/lanyard/verifier"
)

var policy = identity.KeyPolicy{
	Algorithm: keys.ES256, RotationInterval: 30 * 24 * time.Hour,
	PublicationLead: 15 * time.Minute, AccessTTL: 15 * time.Minute,
}

func states(t *testing.T, st identity.KeyStore) map[string]string {
	t.Helper()
	records, err := st.SigningKeys(context.Background())
	require.NoError(t, err)
	out := map[string]string{}
	for _, r := range records {
		out[r.KID] = r.State
	}
	return out
}

// TestKeyLifecycle walks one key through next → current → retired → removed
// on both databases, and checks that tokens verify through the whole overlap.
func TestKeyLifecycle(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			st := testdb.Open(t, d)
			seal := sealer(t)
			t0 := identity.Now()
			ring, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, t0)
			require.NoError(t, err)
			k1 := ring.Ring().SigningKeyID()

			initial := ring.Ring()
			changed, err := ring.Maintain(ctx, st, seal, policy, t0.Add(time.Hour))
			require.NoError(t, err)
			assert.False(t, changed, "nothing is due")
			assert.Same(t, initial, ring.Ring(), "no change, no rebuild: the same ring and JWKS bytes")

			// The lead before the rotation is due: the next key is published, k1 still signs.
			publish := t0.Add(policy.RotationInterval - policy.PublicationLead)
			changed, err = ring.Maintain(ctx, st, seal, policy, publish.Add(-time.Microsecond))
			require.NoError(t, err)
			assert.False(t, changed)
			changed, err = ring.Maintain(ctx, st, seal, policy, publish)
			require.NoError(t, err)
			require.True(t, changed)
			before := ring.Ring()
			assert.Equal(t, k1, before.SigningKeyID())
			var k2 string
			for kid, state := range states(t, st) {
				if state == identity.KeyStateNext {
					k2 = kid
				}
			}
			require.NotEmpty(t, k2)
			assert.Contains(t, string(before.JWKS()), k2, "published before it signs")
			oldToken, err := before.Sign([]byte(`{"sub":"old"}`))
			require.NoError(t, err)

			// A verifier that cached the JWKS now never meets an unknown kid later.
			var fetches atomic.Int32
			snapshot := before.JWKS()
			jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fetches.Add(1)
				_, _ = w.Write(snapshot)
			}))
			defer jwks.Close()

			// Promotion after the lead: k2 signs, k1 is retired but published.
			changed, err = ring.Maintain(ctx, st, seal, policy, publish.Add(policy.PublicationLead))
			require.NoError(t, err)
			require.True(t, changed)
			after := ring.Ring()
			assert.Equal(t, k2, after.SigningKeyID())
			assert.Equal(t, map[string]string{k1: identity.KeyStateRetired, k2: identity.KeyStateCurrent}, states(t, st))
			_, err = after.Verify(oldToken)
			assert.NoError(t, err, "a token signed before the rotation still verifies")
			newToken, err := after.Sign([]byte(`{"sub":"new"}`))
			require.NoError(t, err)
			_, err = before.Verify(newToken)
			assert.NoError(t, err, "the ring cached before promotion already knew k2")
			assertCachedVerifierAccepts(t, jwks.URL, after, &fetches)

			// Retired keys stay until every token they signed has expired.
			retiredAt := publish.Add(policy.PublicationLead)
			changed, err = ring.Maintain(ctx, st, seal, policy, retiredAt.Add(policy.AccessTTL+time.Minute-time.Microsecond))
			require.NoError(t, err)
			assert.False(t, changed)
			changed, err = ring.Maintain(ctx, st, seal, policy, retiredAt.Add(policy.AccessTTL+time.Minute))
			require.NoError(t, err)
			require.True(t, changed)
			assert.Equal(t, identity.KeyStateRemoved, states(t, st)[k1])
			assert.NotContains(t, string(ring.Ring().JWKS()), k1)
			_, err = ring.Ring().Verify(oldToken)
			assert.Error(t, err, "once removed, its tokens no longer verify")
		})
	}
}

// assertCachedVerifierAccepts: the public verifier, having fetched the JWKS
// before promotion, verifies a token of the promoted key with no refetch.
func assertCachedVerifierAccepts(t *testing.T, jwksURL string, ring *keys.Ring, fetches *atomic.Int32) {
	t.Helper()
	now := time.Now()
	v, err := verifier.New(context.Background(), verifier.Config{JWKSURL: jwksURL, Issuer: "https://iss.test", Audience: "aud"})
	require.NoError(t, err)
	require.EqualValues(t, 1, fetches.Load())
	token, err := ring.Sign([]byte(`{"iss":"https://iss.test","aud":"aud","sub":"u","sid":"s","iat":` +
		itoa(now.Unix()) + `,"nbf":` + itoa(now.Unix()) + `,"exp":` + itoa(now.Add(time.Minute).Unix()) + `,"profile_complete":false}`))
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), token)
	require.NoError(t, err)
	assert.EqualValues(t, 1, fetches.Load(), "no unknown kid, no refetch")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestAlgorithmChangeAndImmediateRotation: a new LANYARD_SIGNING_ALG rotates
// under the same overlap rules; an immediate rotation swaps at once.
func TestAlgorithmChangeAndImmediateRotation(t *testing.T) {
	ctx := context.Background()
	st := testdb.Open(t, "sqlite")
	seal := sealer(t)
	t0 := identity.Now()
	ring, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, t0)
	require.NoError(t, err)

	eddsa := policy
	eddsa.Algorithm = keys.EdDSA
	_, err = ring.Maintain(ctx, st, seal, eddsa, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, keys.ES256, ring.Ring().Algorithm(), "the new algorithm waits for the lead")
	_, err = ring.Maintain(ctx, st, seal, eddsa, t0.Add(time.Minute+eddsa.PublicationLead))
	require.NoError(t, err)
	assert.Equal(t, keys.EdDSA, ring.Ring().Algorithm())

	before := ring.Ring().SigningKeyID()
	require.NoError(t, ring.Rotate(ctx, st, seal, eddsa, t0.Add(time.Hour), true))
	assert.NotEqual(t, before, ring.Ring().SigningKeyID(), "immediate rotation signs with a new key at once")
	assert.Equal(t, identity.KeyStateRetired, states(t, st)[before])
}

// TestConcurrentRotation: replicas that find a rotation due at once create
// exactly one next key.
func TestConcurrentRotation(t *testing.T) {
	ctx := context.Background()
	st := testdb.Open(t, "postgres")
	seal := sealer(t)
	t0 := identity.Now()
	first, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, t0)
	require.NoError(t, err)
	due := t0.Add(policy.RotationInterval - policy.PublicationLead)
	var wg sync.WaitGroup
	start := make(chan struct{})
	rings := make([]*identity.KeyRing, 4)
	for i := range rings {
		r, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, t0)
		require.NoError(t, err)
		rings[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := r.Maintain(ctx, st, seal, policy, due)
			assert.NoError(t, err)
		}()
	}
	close(start)
	wg.Wait()
	next := 0
	for _, state := range states(t, st) {
		if state == identity.KeyStateNext {
			next++
		}
	}
	assert.Equal(t, 1, next, "one rotation, not four")
	for _, r := range rings {
		assert.Equal(t, string(rings[0].Ring().JWKS()), string(r.Ring().JWKS()), "every replica serves the same JWKS")
	}
	_, err = first.Maintain(ctx, st, seal, policy, due)
	require.NoError(t, err)
	assert.Equal(t, string(rings[0].Ring().JWKS()), string(first.Ring().JWKS()), "a replica picks the change up on its next tick")
}

package verifier_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/accesstoken"
	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/keys"
	"github.com/lanyard-id/lanyard/verifier"
)

// FuzzVerify feeds whole tokens to this verifier and to Lanyard's own bearer
// check (keys.Ring.Verify, then accesstoken.Policy.Check with the service's
// policy), seeded with the corpus every verifier is held to. Neither may
// panic, they must reach the same verdict, and an accepted token must have
// exactly the signing input (header.payload) of a token the corpus accepts:
// the fuzzer cannot sign, so anything else accepted is a forgery.
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	corpus, err := tokentest.NewCorpus("https://id.example.com", "https://api.example.com", now)
	require.NoError(f, err)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(corpus.JWKS)
	}))
	f.Cleanup(jwks.Close)
	v, err := verifier.New(context.Background(), verifier.Config{
		JWKSURL: jwks.URL + "/.well-known/jwks.json", Issuer: corpus.Issuer, Audience: corpus.Audience,
		Algorithms: corpus.Algorithms, Now: func() time.Time { return now },
		// Tokens with an unknown kid must not turn each fuzz input into a fetch.
		RefetchCooldown: time.Hour,
	})
	require.NoError(f, err)
	require.NoError(f, v.Refresh(context.Background()))
	ring, err := keys.NewRing(corpus.Key.SigningKey())
	require.NoError(f, err)
	policy := accesstoken.Policy{
		Issuer: corpus.Issuer, Audience: corpus.Audience, Leeway: accesstoken.DefaultLeeway,
		MaxLifetime: 15*time.Minute + accesstoken.MaxLeeway,
	}

	accepted := map[string]bool{}
	for _, c := range corpus.Cases {
		f.Add(c.Token)
		if c.Accept {
			accepted[signingInput(c.Token)] = true
		}
	}
	f.Fuzz(func(t *testing.T, token string) {
		_, verr := v.Verify(context.Background(), token)
		payload, lerr := ring.Verify(token)
		if lerr == nil {
			_, lerr = policy.Check(payload, now)
		}
		require.Equal(t, verr == nil, lerr == nil, "verifier: %v; Lanyard: %v; token %q", verr, lerr, token)
		if verr != nil {
			require.ErrorIs(t, verr, verifier.ErrInvalidToken)
			return
		}
		require.True(t, accepted[signingInput(token)], "accepted a token the corpus never signed: %q", token)
	})
}

func signingInput(token string) string {
	if i := strings.LastIndexByte(token, '.'); i >= 0 {
		return token[:i]
	}
	return token
}

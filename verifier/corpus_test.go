package verifier_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/verifier"
)

// TestCorpus holds this verifier to the verdicts the PyJWT and jose
// verifiers are held to: same tokens, same JWKS, same answers.
func TestCorpus(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	corpus, err := tokentest.NewCorpus("https://id.example.com", "https://api.example.com", now)
	require.NoError(t, err)

	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(corpus.JWKS)
	}))
	defer jwks.Close()
	v, err := verifier.New(context.Background(), verifier.Config{
		JWKSURL:    jwks.URL + "/.well-known/jwks.json",
		Issuer:     corpus.Issuer,
		Audience:   corpus.Audience,
		Algorithms: corpus.Algorithms,
		Now:        func() time.Time { return now },
	})
	require.NoError(t, err)
	require.NoError(t, v.Refresh(context.Background()))

	personalised := v.RequireCompleteProfile(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verifier.ClaimsFromContext(r.Context())
		require.True(t, ok)
		require.True(t, c.ProfileComplete)
		w.WriteHeader(http.StatusOK)
	}))

	require.Len(t, corpus.Cases, 29)
	for _, c := range corpus.Cases {
		t.Run(c.Name, func(t *testing.T) {
			claims, err := v.Verify(context.Background(), c.Token)
			if c.Accept {
				require.NoError(t, err)
				assert.Equal(t, c.ProfileComplete, claims.ProfileComplete)
			} else {
				require.ErrorIs(t, err, verifier.ErrInvalidToken)
				t.Log(err)
			}

			want := http.StatusUnauthorized
			switch {
			case c.Accept && c.ProfileComplete:
				want = http.StatusOK
			case c.Accept:
				want = http.StatusForbidden
			}
			req := httptest.NewRequest(http.MethodGet, "/lessons", nil)
			req.Header.Set("Authorization", "Bearer "+c.Token)
			rec := httptest.NewRecorder()
			personalised.ServeHTTP(rec, req)
			assert.Equal(t, want, rec.Code)
		})
	}
}

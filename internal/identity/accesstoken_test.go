package identity

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/accesstoken"
	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/keys"
)

const (
	tokenIssuer   = "https://id.example.com"
	tokenAudience = "https://api.example.com"
)

var tokenNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// bearerService is a Service that checks tokens of ring at tokenNow; the
// bearer check needs no store and no hasher.
func bearerService(t *testing.T, ring *keys.Ring) *Service {
	t.Helper()
	svc, err := NewService(Config{
		Issuer: tokenIssuer, Audience: tokenAudience, AccessTTL: 15 * time.Minute,
		Secret: []byte("0123456789abcdef0123456789abcdef"),
	}, nil, nil, ring, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	svc.Now = func() time.Time { return tokenNow }
	return svc
}

func requireUnauthorized(t *testing.T, err error) {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "%v", err)
	assert.Equal(t, CodeUnauthorized, e.Code)
}

// Lanyard's own bearer check reaches the verdicts every published verifier
// is held to, on the same corpus.
func TestAuthenticateCorpus(t *testing.T) {
	corpus, err := tokentest.NewCorpus(tokenIssuer, tokenAudience, tokenNow)
	require.NoError(t, err)
	ring, err := keys.NewRing(corpus.Key.SigningKey())
	require.NoError(t, err)
	svc := bearerService(t, ring)
	for _, c := range corpus.Cases {
		t.Run(c.Name, func(t *testing.T) {
			claims, err := svc.Authenticate(c.Token)
			if !c.Accept {
				requireUnauthorized(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.ProfileComplete, claims.ProfileComplete)
			assert.NotEmpty(t, claims.Subject)
			assert.NotEmpty(t, claims.SessionID)
		})
	}
}

// A token carrying both "sub" and "SUB" was read by /v1/me as the user in
// "SUB" (encoding/json matches struct fields case-insensitively, the last
// match winning) and by the published verifiers as the user in "sub". It
// is now refused, as is any other duplicate name.
func TestAuthenticateRefusesDuplicateNames(t *testing.T) {
	key := tokentest.NewKey("ES256")
	ring, err := keys.NewRing(key.SigningKey())
	require.NoError(t, err)
	svc := bearerService(t, ring)
	valid := tokentest.Claims(tokenIssuer, tokenAudience, tokenNow)
	sign := func(payload string) string {
		tok, err := ring.Sign([]byte(payload))
		require.NoError(t, err)
		return tok
	}
	base := string(marshal(t, valid))
	_, err = svc.Authenticate(sign(base))
	require.NoError(t, err, "the base token is valid")

	for name, extra := range map[string]string{
		"sub and SUB":          `"SUB":"9d1c4f2e-0000-4000-8000-000000000000"`,
		"sub twice":            `"sub":"9d1c4f2e-0000-4000-8000-000000000000"`,
		"sid and Sid":          `"Sid":"other-session"`,
		"profile_complete too": `"PROFILE_COMPLETE":false`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := svc.Authenticate(sign(base[:len(base)-1] + "," + extra + "}"))
			requireUnauthorized(t, err)
		})
	}

	// Names are exact: "SUB" alone is not sub.
	delete(valid, "sub")
	valid["SUB"] = "0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30"
	_, err = svc.Authenticate(sign(string(marshal(t, valid))))
	requireUnauthorized(t, err)
}

// The validity window is the verifiers': exp, nbf and iat each with the
// same 30 s leeway, in whole seconds; a token issued in the future beyond
// the leeway is refused, and so is one that lives longer than Lanyard mints.
func TestAuthenticateValidityWindow(t *testing.T) {
	key := tokentest.NewKey("ES256")
	ring, err := keys.NewRing(key.SigningKey())
	require.NoError(t, err)
	svc := bearerService(t, ring)
	now := tokenNow.Unix()
	for name, tc := range map[string]struct {
		mut    func(map[string]any)
		accept bool
	}{
		"iat at the leeway":      {func(c map[string]any) { c["iat"] = now + 30; c["nbf"] = now }, true},
		"iat beyond the leeway":  {func(c map[string]any) { c["iat"] = now + 31; c["nbf"] = now }, false},
		"iat an hour ahead":      {func(c map[string]any) { c["iat"] = now + 3600; c["nbf"] = now; c["exp"] = now + 4500 }, false},
		"iat missing":            {func(c map[string]any) { delete(c, "iat") }, false},
		"exp within the leeway":  {func(c map[string]any) { c["exp"] = now - 29 }, true},
		"exp at the leeway":      {func(c map[string]any) { c["exp"] = now - 30 }, false},
		"nbf at the leeway":      {func(c map[string]any) { c["nbf"] = now + 30 }, true},
		"nbf beyond the leeway":  {func(c map[string]any) { c["nbf"] = now + 31 }, false},
		"nbf absent":             {func(c map[string]any) { delete(c, "nbf") }, true},
		"exp a string":           {func(c map[string]any) { c["exp"] = strconv.FormatInt(now+900, 10) }, false},
		"aud an array with ours": {func(c map[string]any) { c["aud"] = []string{"other", tokenAudience} }, true},
		"aud another":            {func(c map[string]any) { c["aud"] = tokenIssuer }, false},
		// The lifetime bound is the access TTL (15 min here) plus 60 s.
		"lifetime TTL + 60 s": {func(c map[string]any) { c["exp"] = now + 960 }, true},
		"lifetime beyond":     {func(c map[string]any) { c["exp"] = now + 961 }, false},
	} {
		t.Run(name, func(t *testing.T) {
			c := tokentest.Claims(tokenIssuer, tokenAudience, tokenNow)
			tc.mut(c)
			tok, err := ring.Sign(marshal(t, c))
			require.NoError(t, err)
			_, err = svc.Authenticate(tok)
			if tc.accept {
				require.NoError(t, err)
			} else {
				requireUnauthorized(t, err)
			}
		})
	}
}

// What Lanyard mints, its bearer check reads back field for field, and
// the token carries exactly the contract's claim names.
func TestMintAuthenticateRoundTrip(t *testing.T) {
	signing, err := keys.Generate(keys.ES256)
	require.NoError(t, err)
	ring, err := keys.NewRing(signing)
	require.NoError(t, err)
	svc := bearerService(t, ring)
	user := User{
		ID: "0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30", Email: "ada@example.com",
		Profile: &Profile{PythonProficiency: "advanced", DeveloperRole: "researcher"},
	}
	tok, err := svc.mintAccessToken(user, "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", tokenNow)
	require.NoError(t, err)

	c, err := svc.Authenticate(tok)
	require.NoError(t, err)
	at := time.Unix(tokenNow.Unix(), 0)
	assert.NotEmpty(t, c.ID)
	c.ID = ""
	assert.Equal(t, AccessClaims{
		Subject:         user.ID,
		SessionID:       "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
		Email:           user.Email,
		ProfileComplete: true,
		Profile:         &accesstoken.Profile{PythonProficiency: "advanced", DeveloperRole: "researcher"},
		Issuer:          tokenIssuer,
		Audience:        tokenAudience,
		IssuedAt:        at,
		ExpiresAt:       at.Add(15 * time.Minute),
		NotBefore:       at,
	}, c)

	payload, err := ring.Verify(tok)
	require.NoError(t, err)
	assert.Regexp(t, `^\{"iss":"[^"]+","sub":"[^"]+","aud":"[^"]+","iat":\d+,"nbf":\d+,"exp":\d+,"jti":"[A-Za-z0-9_-]{22}",`+
		`"sid":"[^"]+","email":"[^"]+","email_verified":false,"profile_complete":true,"profile":\{"python_proficiency":"advanced","developer_role":"researcher"\}\}$`,
		string(payload))
}

func marshal(t *testing.T, v map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// BenchmarkAuthenticate is the bearer check on every authenticated
// request: the ring's verification (fast header path) and the shared
// claim rules. Compare with BenchmarkMintAccessToken's floor.
func BenchmarkAuthenticate(b *testing.B) {
	svc := benchService(b)
	tok, err := svc.mintAccessToken(benchUser, "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", time.Now())
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Authenticate(tok); err != nil {
			b.Fatal(err)
		}
	}
}

package identity_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/keys"
)

// The use cases, driven directly (no HTTP) against each real database.

const pw = "correct horse battery staple"

var testConfig = identity.Config{
	Issuer: "https://id.example.test", Audience: "https://id.example.test",
	AccessTTL: 15 * time.Minute, RefreshIdleTTL: 168 * time.Hour, RefreshAbsoluteTTL: 720 * time.Hour,
	RefreshReuseGrace: 10 * time.Second, PasswordMinLength: 15, PasswordMaxLength: 1024,
}

// newService returns a service over st whose process clock is now.
func newService(t *testing.T, st identity.Store, ks identity.KeyStore, now func() time.Time, secret []byte) *identity.Service {
	t.Helper()
	hasher, err := password.NewHasher(password.Params{MemoryKiB: 64, Time: 1, Threads: 1}, 4, time.Second)
	require.NoError(t, err)
	sealer, err := keys.NewSealer(secret)
	require.NoError(t, err)
	ring, _, err := identity.LoadKeyRing(context.Background(), ks, sealer, keys.ES256, now())
	require.NoError(t, err)
	cfg := testConfig
	cfg.Secret = secret
	svc, err := identity.NewService(cfg, st, hasher, ring, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	svc.Now = now
	return svc
}

func newSecret() []byte {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return secret
}

func code(err error) identity.Code { return identity.ErrorCode(err) }

func TestUseCases(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, d)
			clk := tokentest.NewClock(identity.Now())
			svc := newService(t, st, st, clk.Now, newSecret())
			ctx := context.Background()
			client := identity.Client{UserAgent: "test/1.0", IP: "192.0.2.1"}

			t.Run("sign up, log in, refresh, log out", func(t *testing.T) {
				signed, err := svc.SignUp(ctx, identity.SignUpInput{Email: "Ada@Example.com", Password: pw}, client)
				require.NoError(t, err)
				assert.Equal(t, "ada@example.com", signed.User.Email)
				_, err = svc.SignUp(ctx, identity.SignUpInput{Email: "ADA@example.com", Password: pw}, client)
				assert.Equal(t, identity.CodeEmailTaken, code(err))

				_, err = svc.LogIn(ctx, "ada@example.com", pw+"!", client)
				assert.Equal(t, identity.CodeInvalidCredentials, code(err))
				_, err = svc.LogIn(ctx, "nobody@example.com", pw, client)
				assert.Equal(t, identity.CodeInvalidCredentials, code(err))
				logged, err := svc.LogIn(ctx, "ada@example.com", pw, client)
				require.NoError(t, err)
				assert.Equal(t, signed.User.ID, logged.User.ID)

				claims, err := svc.AuthenticateSession(ctx, logged.AccessToken)
				require.NoError(t, err)
				assert.Equal(t, signed.User.ID, claims.Subject)

				next, err := svc.Refresh(ctx, logged.RefreshToken)
				require.NoError(t, err)
				assert.NotEqual(t, logged.RefreshToken, next.RefreshToken)
				again, err := svc.Refresh(ctx, logged.RefreshToken)
				require.NoError(t, err, "the parent within grace")
				assert.Equal(t, next.RefreshToken, again.RefreshToken, "gets the same successor")

				require.NoError(t, svc.LogOut(ctx, next.RefreshToken))
				_, err = svc.Refresh(ctx, next.RefreshToken)
				assert.Equal(t, identity.CodeInvalidRefreshToken, code(err))
				_, err = svc.AuthenticateSession(ctx, logged.AccessToken)
				assert.Equal(t, identity.CodeUnauthorized, code(err), "Lanyard's own endpoints refuse an ended session's token at once")
				require.NoError(t, svc.LogOut(ctx, "garbage"), "logout says nothing about the token")
			})

			t.Run("reuse after grace revokes", func(t *testing.T) {
				first, err := svc.SignUp(ctx, identity.SignUpInput{Email: "reuse@example.com", Password: pw}, client)
				require.NoError(t, err)
				second, err := svc.Refresh(ctx, first.RefreshToken)
				require.NoError(t, err)
				clk.Advance(testConfig.RefreshReuseGrace + time.Second)
				_, err = svc.Refresh(ctx, first.RefreshToken)
				assert.Equal(t, identity.CodeRefreshTokenReused, code(err))
				_, err = svc.Refresh(ctx, second.RefreshToken)
				assert.Equal(t, identity.CodeRefreshTokenReused, code(err), "the whole session is gone")
			})

			t.Run("lifetimes at their edges", func(t *testing.T) {
				tk, err := svc.SignUp(ctx, identity.SignUpInput{Email: "idle@example.com", Password: pw}, client)
				require.NoError(t, err)
				clk.Advance(testConfig.RefreshIdleTTL - time.Microsecond)
				tk, err = svc.Refresh(ctx, tk.RefreshToken)
				require.NoError(t, err, "a microsecond before going idle")
				clk.Advance(testConfig.RefreshIdleTTL)
				_, err = svc.Refresh(ctx, tk.RefreshToken)
				assert.Equal(t, identity.CodeSessionExpired, code(err), "idle")

				tk, err = svc.LogIn(ctx, "idle@example.com", pw, client)
				require.NoError(t, err)
				for range 4 { // refreshing keeps it from idling, never past the absolute end
					clk.Advance(testConfig.RefreshAbsoluteTTL / 5)
					tk, err = svc.Refresh(ctx, tk.RefreshToken)
					require.NoError(t, err)
				}
				assert.LessOrEqual(t, tk.RefreshExpiresIn, testConfig.RefreshAbsoluteTTL/5)
				clk.Advance(testConfig.RefreshAbsoluteTTL / 5)
				_, err = svc.Refresh(ctx, tk.RefreshToken)
				assert.Equal(t, identity.CodeSessionExpired, code(err), "absolute")
			})

			t.Run("password change ends other sessions", func(t *testing.T) {
				a, err := svc.SignUp(ctx, identity.SignUpInput{Email: "change@example.com", Password: pw}, client)
				require.NoError(t, err)
				b, err := svc.LogIn(ctx, "change@example.com", pw, client)
				require.NoError(t, err)
				claims, err := svc.AuthenticateSession(ctx, a.AccessToken)
				require.NoError(t, err)
				err = svc.ChangePassword(ctx, claims, pw+"x", pw+" and more")
				assert.Equal(t, identity.CodeInvalidCredentials, code(err))
				err = svc.ChangePassword(ctx, claims, pw, "short")
				assert.Equal(t, identity.CodeValidation, code(err))
				require.NoError(t, svc.ChangePassword(ctx, claims, pw, pw+" and more"))
				_, err = svc.Refresh(ctx, b.RefreshToken)
				assert.Equal(t, identity.CodeInvalidRefreshToken, code(err), "the other session ended")
				_, err = svc.Refresh(ctx, a.RefreshToken)
				assert.NoError(t, err, "the current one lives on")
				_, err = svc.LogIn(ctx, "change@example.com", pw, client)
				assert.Equal(t, identity.CodeInvalidCredentials, code(err))
				_, err = svc.LogIn(ctx, "change@example.com", pw+" and more", client)
				assert.NoError(t, err)
			})

			t.Run("profile", func(t *testing.T) {
				tk, err := svc.SignUp(ctx, identity.SignUpInput{Email: "profile@example.com", Password: pw}, client)
				require.NoError(t, err)
				claims, err := svc.AuthenticateSession(ctx, tk.AccessToken)
				require.NoError(t, err)
				assert.False(t, claims.ProfileComplete)
				_, err = svc.UpdateProfile(ctx, claims, identity.Profile{PythonProficiency: "guru", DeveloperRole: "student"})
				assert.Equal(t, identity.CodeValidation, code(err))
				up, err := svc.UpdateProfile(ctx, claims, identity.Profile{PythonProficiency: "advanced", DeveloperRole: "researcher"})
				require.NoError(t, err)
				fresh, err := svc.AuthenticateSession(ctx, up.AccessToken)
				require.NoError(t, err)
				assert.True(t, fresh.ProfileComplete)
				assert.Equal(t, claims.SessionID, fresh.SessionID, "same session")
				next, err := svc.Refresh(ctx, tk.RefreshToken)
				require.NoError(t, err)
				assert.True(t, next.User.ProfileComplete(), "refresh re-reads the profile")
			})
		})
	}
}

// TestDatabaseUnavailable: a use case whose database is gone answers
// "unavailable" (503, retry), never "internal".
func TestDatabaseUnavailable(t *testing.T) {
	st := testdb.Open(t, store.Postgres)
	clk := tokentest.NewClock(identity.Now())
	svc := newService(t, st, st, clk.Now, newSecret())
	ctx := context.Background()
	tk, err := svc.SignUp(ctx, identity.SignUpInput{Email: "gone@example.com", Password: pw}, identity.Client{})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	_, err = svc.Refresh(ctx, tk.RefreshToken)
	assert.Equal(t, identity.CodeUnavailable, code(err))
	_, err = svc.LogIn(ctx, "gone@example.com", pw, identity.Client{})
	assert.Equal(t, identity.CodeUnavailable, code(err))
	_, err = svc.SignUp(ctx, identity.SignUpInput{Email: "new@example.com", Password: pw}, identity.Client{})
	assert.Equal(t, identity.CodeUnavailable, code(err))
	_, err = svc.AuthenticateSession(ctx, tk.AccessToken)
	assert.Equal(t, identity.CodeUnavailable, code(err))
}

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
	return newServiceWith(t, testConfig, st, ks, now, secret)
}

// newServiceWith is newService with other rules than testConfig.
func newServiceWith(t *testing.T, cfg identity.Config, st identity.Store, ks identity.KeyStore, now func() time.Time, secret []byte) *identity.Service {
	t.Helper()
	hasher, err := password.NewHasher(password.Params{MemoryKiB: 64, Time: 1, Threads: 1}, 4, time.Second)
	require.NoError(t, err)
	sealer, err := keys.NewSealer(secret)
	require.NoError(t, err)
	ring, _, err := identity.LoadKeyRing(context.Background(), ks, sealer, keys.ES256, now())
	require.NoError(t, err)
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

				next, err := svc.Refresh(ctx, logged.RefreshToken, client)
				require.NoError(t, err)
				assert.NotEqual(t, logged.RefreshToken, next.RefreshToken)
				again, err := svc.Refresh(ctx, logged.RefreshToken, client)
				require.NoError(t, err, "the parent within grace")
				assert.Equal(t, next.RefreshToken, again.RefreshToken, "gets the same successor")

				require.NoError(t, svc.LogOut(ctx, next.RefreshToken, identity.Client{}))
				_, err = svc.Refresh(ctx, next.RefreshToken, client)
				assert.Equal(t, identity.CodeInvalidRefreshToken, code(err))
				_, err = svc.AuthenticateSession(ctx, logged.AccessToken)
				assert.Equal(t, identity.CodeUnauthorized, code(err), "Lanyard's own endpoints refuse an ended session's token at once")
				require.NoError(t, svc.LogOut(ctx, "garbage", identity.Client{}), "logout says nothing about the token")
			})

			t.Run("reuse after grace revokes", func(t *testing.T) {
				first, err := svc.SignUp(ctx, identity.SignUpInput{Email: "reuse@example.com", Password: pw}, client)
				require.NoError(t, err)
				second, err := svc.Refresh(ctx, first.RefreshToken, client)
				require.NoError(t, err)
				clk.Advance(testConfig.RefreshReuseGrace + time.Second)
				_, err = svc.Refresh(ctx, first.RefreshToken, client)
				assert.Equal(t, identity.CodeRefreshTokenReused, code(err))
				_, err = svc.Refresh(ctx, second.RefreshToken, client)
				assert.Equal(t, identity.CodeRefreshTokenReused, code(err), "the whole session is gone")
			})

			t.Run("lifetimes at their edges", func(t *testing.T) {
				tk, err := svc.SignUp(ctx, identity.SignUpInput{Email: "idle@example.com", Password: pw}, client)
				require.NoError(t, err)
				clk.Advance(testConfig.RefreshIdleTTL - time.Microsecond)
				tk, err = svc.Refresh(ctx, tk.RefreshToken, client)
				require.NoError(t, err, "a microsecond before going idle")
				clk.Advance(testConfig.RefreshIdleTTL)
				_, err = svc.Refresh(ctx, tk.RefreshToken, client)
				assert.Equal(t, identity.CodeSessionExpired, code(err), "idle")

				tk, err = svc.LogIn(ctx, "idle@example.com", pw, client)
				require.NoError(t, err)
				for range 4 { // refreshing keeps it from idling, never past the absolute end
					clk.Advance(testConfig.RefreshAbsoluteTTL / 5)
					tk, err = svc.Refresh(ctx, tk.RefreshToken, client)
					require.NoError(t, err)
				}
				assert.LessOrEqual(t, tk.RefreshExpiresIn, testConfig.RefreshAbsoluteTTL/5)
				clk.Advance(testConfig.RefreshAbsoluteTTL / 5)
				_, err = svc.Refresh(ctx, tk.RefreshToken, client)
				assert.Equal(t, identity.CodeSessionExpired, code(err), "absolute")
			})

			t.Run("password change ends other sessions", func(t *testing.T) {
				a, err := svc.SignUp(ctx, identity.SignUpInput{Email: "change@example.com", Password: pw}, client)
				require.NoError(t, err)
				b, err := svc.LogIn(ctx, "change@example.com", pw, client)
				require.NoError(t, err)
				claims, err := svc.AuthenticateSession(ctx, a.AccessToken)
				require.NoError(t, err)
				_, err = svc.ChangePassword(ctx, claims, client, pw+"x", pw+" and more")
				assert.Equal(t, identity.CodeInvalidCredentials, code(err))
				_, err = svc.ChangePassword(ctx, claims, client, pw, "short")
				assert.Equal(t, identity.CodeValidation, code(err))
				changed, err := svc.ChangePassword(ctx, claims, client, pw, pw+" and more")
				require.NoError(t, err)
				_, err = svc.Refresh(ctx, b.RefreshToken, client)
				assert.Equal(t, identity.CodeInvalidRefreshToken, code(err), "the other session ended")
				next, err := svc.Refresh(ctx, changed.RefreshToken, client)
				require.NoError(t, err, "the current one lives on, under the returned token")
				fresh, err := svc.AuthenticateSession(ctx, next.AccessToken)
				require.NoError(t, err)
				assert.Equal(t, claims.SessionID, fresh.SessionID, "same session")
				assert.Equal(t, claims.Subject, changed.User.ID)
				_, err = svc.LogIn(ctx, "change@example.com", pw, client)
				assert.Equal(t, identity.CodeInvalidCredentials, code(err))
				_, err = svc.LogIn(ctx, "change@example.com", pw+" and more", client)
				assert.NoError(t, err)
			})

			t.Run("password change evicts a thief of the current session", func(t *testing.T) {
				victim, err := svc.SignUp(ctx, identity.SignUpInput{Email: "evict@example.com", Password: pw}, client)
				require.NoError(t, err)
				stolen := victim.RefreshToken // copied by the thief
				victim, err = svc.Refresh(ctx, victim.RefreshToken, client)
				require.NoError(t, err)
				claims, err := svc.AuthenticateSession(ctx, victim.AccessToken)
				require.NoError(t, err)
				changed, err := svc.ChangePassword(ctx, claims, client, pw, pw+" and more")
				require.NoError(t, err)

				for name, token := range map[string]string{"the copied parent": stolen, "the live token before the change": victim.RefreshToken} {
					_, err = svc.Refresh(ctx, token, client)
					assert.Equal(t, identity.CodeInvalidRefreshToken, code(err), "%s, even from the victim's own client inside grace", name)
				}
				next, err := svc.Refresh(ctx, changed.RefreshToken, client)
				require.NoError(t, err, "the returned pair works")
				_, err = svc.Refresh(ctx, next.RefreshToken, client)
				require.NoError(t, err, "and its chain goes on")
			})

			t.Run("the grace window is the rotating client's", func(t *testing.T) {
				tabs, err := svc.SignUp(ctx, identity.SignUpInput{Email: "tabs@example.com", Password: pw}, client)
				require.NoError(t, err)
				first, err := svc.Refresh(ctx, tabs.RefreshToken, client)
				require.NoError(t, err)
				sameNetwork := identity.Client{UserAgent: client.UserAgent, IP: "192.0.2.200"}
				for name, c := range map[string]identity.Client{"a lost response retried": client, "a second tab, same /24": sameNetwork} {
					again, err := svc.Refresh(ctx, tabs.RefreshToken, c)
					require.NoError(t, err, name)
					assert.Equal(t, first.RefreshToken, again.RefreshToken, name)
				}

				// The ride-along: the victim rotated; a thief holding the same
				// pair presents the parent inside grace from elsewhere.
				for name, thief := range map[string]identity.Client{
					"ride-ip": {UserAgent: client.UserAgent, IP: "198.51.100.7"},
					"ride-ua": {UserAgent: "curl/8.0", IP: client.IP},
				} {
					victim, err := svc.SignUp(ctx, identity.SignUpInput{Email: name + "@example.com", Password: pw}, client)
					require.NoError(t, err)
					copied := victim.RefreshToken
					victim, err = svc.Refresh(ctx, victim.RefreshToken, client)
					require.NoError(t, err)
					clk.Advance(time.Second)
					_, err = svc.Refresh(ctx, copied, thief)
					assert.Equal(t, identity.CodeRefreshTokenReused, code(err), "%s: the thief gets nothing", name)
					_, err = svc.Refresh(ctx, victim.RefreshToken, client)
					assert.Equal(t, identity.CodeRefreshTokenReused, code(err), "%s: the session is revoked, the victim's token too", name)
				}
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
				next, err := svc.Refresh(ctx, tk.RefreshToken, client)
				require.NoError(t, err)
				assert.True(t, next.User.ProfileComplete(), "refresh re-reads the profile")
			})
		})
	}
}

// TestGraceUnbound: with LANYARD_REFRESH_GRACE_BINDING=none the parent
// inside grace gets the successor from any client, as before the binding;
// after grace it is still reuse.
func TestGraceUnbound(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, d)
			clk := tokentest.NewClock(identity.Now())
			cfg := testConfig
			cfg.RefreshGraceUnbound = true
			svc := newServiceWith(t, cfg, st, st, clk.Now, newSecret())
			ctx := context.Background()
			home := identity.Client{UserAgent: "test/1.0", IP: "192.0.2.1"}
			elsewhere := identity.Client{UserAgent: "curl/8.0", IP: "198.51.100.7"}

			first, err := svc.SignUp(ctx, identity.SignUpInput{Email: "unbound@example.com", Password: pw}, home)
			require.NoError(t, err)
			next, err := svc.Refresh(ctx, first.RefreshToken, home)
			require.NoError(t, err)
			clk.Advance(time.Second)
			again, err := svc.Refresh(ctx, first.RefreshToken, elsewhere)
			require.NoError(t, err, "any client inside grace")
			assert.Equal(t, next.RefreshToken, again.RefreshToken)
			clk.Advance(testConfig.RefreshReuseGrace)
			_, err = svc.Refresh(ctx, first.RefreshToken, home)
			assert.Equal(t, identity.CodeRefreshTokenReused, code(err), "after grace it is reuse")
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

	_, err = svc.Refresh(ctx, tk.RefreshToken, identity.Client{})
	assert.Equal(t, identity.CodeUnavailable, code(err))
	_, err = svc.LogIn(ctx, "gone@example.com", pw, identity.Client{})
	assert.Equal(t, identity.CodeUnavailable, code(err))
	_, err = svc.SignUp(ctx, identity.SignUpInput{Email: "new@example.com", Password: pw}, identity.Client{})
	assert.Equal(t, identity.CodeUnavailable, code(err))
	_, err = svc.AuthenticateSession(ctx, tk.AccessToken)
	assert.Equal(t, identity.CodeUnavailable, code(err))
}

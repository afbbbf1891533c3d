package identity_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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

// throttledConfig is testConfig with the contract's default rate limits.
func throttledConfig() identity.Config {
	cfg := testConfig
	cfg.RateLimits = identity.DefaultRateLimits()
	return cfg
}

// replicas returns n services, each over its own store on one database,
// sharing one secret and one clock: n replicas of one deployment.
func replicas(t *testing.T, d store.Dialect, n int, clk *tokentest.Clock, logs *syncBuffer) []*identity.Service {
	t.Helper()
	first := testdb.Open(t, d)
	secret := newSecret()
	out := make([]*identity.Service, n)
	for i := range out {
		st := first
		if i > 0 {
			var err error
			st, err = store.Open(context.Background(), testdb.OptionsOf(t, first))
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
		}
		out[i] = newLoggedService(t, throttledConfig(), st, clk.Now, secret, logs)
	}
	return out
}

// syncBuffer is a log sink many goroutines may write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLoggedService(t *testing.T, cfg identity.Config, st *store.Store, now func() time.Time, secret []byte, logs *syncBuffer) *identity.Service {
	t.Helper()
	hasher, err := password.NewHasher(password.Params{MemoryKiB: 64, Time: 1, Threads: 1}, 4, 10*time.Second)
	require.NoError(t, err)
	sealer, err := keys.NewSealer(secret)
	require.NoError(t, err)
	ring, _, err := identity.LoadKeyRing(context.Background(), st, sealer, keys.ES256, now())
	require.NoError(t, err)
	cfg.Secret = secret
	svc, err := identity.NewService(cfg, st, hasher, ring, slog.New(slog.NewJSONHandler(logs, nil)))
	require.NoError(t, err)
	svc.Now = now
	return svc
}

// retryAfter returns how long a rate_limited error says to wait, failing
// the test for any other error.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	require.Equal(t, identity.CodeRateLimited, code(err), "%v", err)
	var th *identity.Throttled
	require.True(t, errors.As(err, &th))
	return th.RetryAfter
}

// TestThrottlingAcrossReplicas: three replicas on one database enforce one
// set of limits. Wrong passwords for one account from one client, spread
// over the replicas and sent all at once, get exactly 10 answers of 401;
// the rest and the right password from that client get 429 with the time
// left in the window, while the owner on another network logs in. Then the
// per-client ceiling across accounts, the account-wide ceiling and the
// sign-up limit.
func TestThrottlingAcrossReplicas(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := tokentest.NewClock(identity.Now())
			logs := &syncBuffer{}
			svcs := replicas(t, d, 3, clk, logs)
			attacker := identity.Client{IP: "203.0.113.7", UserAgent: "guesser"}
			owner := identity.Client{IP: "198.51.100.20", UserAgent: "browser"}
			signed, err := svcs[0].SignUp(ctx, identity.SignUpInput{Email: "victim@example.com", Password: pw}, owner)
			require.NoError(t, err)

			const n = 30
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { _, errs[i] = svcs[i%3].LogIn(ctx, "victim@example.com", "wrong password number one", attacker) })
			}
			wg.Wait()
			counts := map[identity.Code]int{}
			for _, err := range errs {
				counts[code(err)]++
			}
			assert.Equal(t, map[identity.Code]int{identity.CodeInvalidCredentials: 10, identity.CodeRateLimited: 20}, counts)

			clk.Advance(time.Minute)
			_, err = svcs[1].LogIn(ctx, "victim@example.com", pw, attacker)
			wait := retryAfter(t, err)
			assert.InDelta(t, (14 * time.Minute).Seconds(), wait.Seconds(), 1, "blocked until the 15-minute window ends")
			_, err = svcs[2].LogIn(ctx, "victim@example.com", pw, owner)
			require.NoError(t, err, "the owner on another network still logs in")

			// After the window: one attempt, then an escalating delay.
			clk.Advance(wait)
			_, err = svcs[0].LogIn(ctx, "victim@example.com", "wrong password number two", attacker)
			assert.Equal(t, identity.CodeInvalidCredentials, code(err))
			_, err = svcs[1].LogIn(ctx, "victim@example.com", "wrong password number three", attacker)
			assert.InDelta(t, (15 * time.Minute).Seconds(), retryAfter(t, err).Seconds(), 1)

			// Password spraying: 30 failures from one client across accounts.
			sprayer := identity.Client{IP: "2001:db8:1:2::5"}
			for i := range 30 {
				_, err := svcs[i%3].LogIn(ctx, fmt.Sprintf("user%d@example.com", i), "some password or other", sprayer)
				require.Equal(t, identity.CodeInvalidCredentials, code(err), "attempt %d", i+1)
			}
			// Another address in the same IPv6 /64 is the same client.
			_, err = svcs[0].LogIn(ctx, "fresh@example.com", "some password or other", identity.Client{IP: "2001:db8:1:2::99"})
			retryAfter(t, err)

			// The account-wide ceiling: 100 failures from everywhere.
			_, err = svcs[0].SignUp(ctx, identity.SignUpInput{Email: "popular@example.com", Password: pw}, owner)
			require.NoError(t, err)
			for i := range 100 {
				from := identity.Client{IP: fmt.Sprintf("192.0.2.%d", i+1)}
				_, err := svcs[i%3].LogIn(ctx, "popular@example.com", "not the password at all", from)
				require.Equal(t, identity.CodeInvalidCredentials, code(err), "attempt %d", i+1)
			}
			_, err = svcs[1].LogIn(ctx, "popular@example.com", pw, owner)
			assert.InDelta(t, time.Hour.Seconds(), retryAfter(t, err).Seconds(), 1, "even the owner waits: a delay, not a lock")
			clk.Advance(time.Hour)
			_, err = svcs[1].LogIn(ctx, "popular@example.com", pw, owner)
			require.NoError(t, err, "after the delay the owner logs in")

			// Sign-ups: 20 per client per hour.
			for i := range 20 {
				_, err := svcs[i%3].SignUp(ctx, identity.SignUpInput{Email: fmt.Sprintf("new%d@example.com", i), Password: pw}, attacker)
				require.NoError(t, err, "sign-up %d", i+1)
			}
			_, err = svcs[0].SignUp(ctx, identity.SignUpInput{Email: "one-too-many@example.com", Password: pw}, attacker)
			assert.InDelta(t, time.Hour.Seconds(), retryAfter(t, err).Seconds(), 1)

			// The log names the account by id, never by email.
			out := logs.String()
			assert.Contains(t, out, `"msg":"auth event","event":"login_failed","user_id":"`+signed.User.ID+`","client_ip":"203.0.113.7","outcome":"failure"`)
			assert.Contains(t, out, `"event":"throttled","user_id":"`+signed.User.ID+`","client_ip":"203.0.113.7","outcome":"blocked","scope":"login_account_ip"`)
			assert.Contains(t, out, `"event":"login_succeeded","user_id":"`+signed.User.ID+`","client_ip":"198.51.100.20","outcome":"success"`)
			assert.NotContains(t, out, "victim@example.com")
			assert.NotContains(t, out, pw)
		})
	}
}

// TestSuccessClearsClientCounter: a successful login clears the account's
// counter for that client, and current-password checks count with logins.
func TestSuccessClearsClientCounter(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := tokentest.NewClock(identity.Now())
			svc := replicas(t, d, 1, clk, &syncBuffer{})[0]
			client := identity.Client{IP: "192.0.2.44"}
			signed, err := svc.SignUp(ctx, identity.SignUpInput{Email: "forgetful@example.com", Password: pw}, client)
			require.NoError(t, err)
			fail := func(n int) {
				t.Helper()
				for i := range n {
					_, err := svc.LogIn(ctx, "forgetful@example.com", "not it at all, sorry", client)
					require.Equal(t, identity.CodeInvalidCredentials, code(err), "failure %d", i+1)
				}
			}
			fail(9)
			_, err = svc.LogIn(ctx, "forgetful@example.com", pw, client)
			require.NoError(t, err)
			fail(10)
			_, err = svc.LogIn(ctx, "forgetful@example.com", pw, client)
			retryAfter(t, err)

			// The password change shares the account's counter for that client.
			clk.Advance(15 * time.Minute)
			claims, err := svc.Authenticate(signed.AccessToken)
			require.NoError(t, err)
			_, err = svc.ChangePassword(ctx, claims, client, "not it at all, sorry", pw+" and more")
			assert.Equal(t, identity.CodeInvalidCredentials, code(err))
			_, err = svc.ChangePassword(ctx, claims, client, pw, pw+" and more")
			retryAfter(t, err)
			assert.False(t, strings.Contains(err.Error(), pw), "the error never carries the password")

			// Counters expire on their own; cleanup only reclaims the rows.
			n, err := svc.PurgeThrottles(ctx)
			require.NoError(t, err)
			assert.Zero(t, n, "nothing has expired yet")
			clk.Advance(24 * time.Hour)
			n, err = svc.PurgeThrottles(ctx)
			require.NoError(t, err)
			assert.EqualValues(t, 4, n, "account and client, client, account, sign-ups")
		})
	}
}

// TestOwnerLoginAfterAttack: once an attack from many networks has run the
// account-wide ceiling out and its block has passed, the owner's login
// clears the account's count (consecutive failures, as NIST counts them):
// the owner's next login from another device is not refused, and the
// attacker starts from nothing. Before, an admitted attempt that then
// succeeded left the next escalated block in place.
func TestOwnerLoginAfterAttack(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := tokentest.NewClock(identity.Now())
			cfg := throttledConfig()
			cfg.RateLimits.LoginAccount = identity.RateLimit{Max: 5, Window: time.Hour}
			svc := newLoggedService(t, cfg, testdb.Open(t, d), clk.Now, newSecret(), &syncBuffer{})
			_, err := svc.SignUp(ctx, identity.SignUpInput{Email: "target@example.com", Password: pw}, identity.Client{IP: "198.51.100.1"})
			require.NoError(t, err)
			for i := range 5 { // five networks, one wrong guess each
				_, err := svc.LogIn(ctx, "target@example.com", "a wrong guess, surely", identity.Client{IP: fmt.Sprintf("203.0.113.%d", i+1)})
				require.Equal(t, identity.CodeInvalidCredentials, code(err), "guess %d", i+1)
			}
			phone, laptop := identity.Client{IP: "198.51.100.1", UserAgent: "phone"}, identity.Client{IP: "192.0.2.9", UserAgent: "laptop"}
			_, err = svc.LogIn(ctx, "target@example.com", pw, phone)
			retryAfter(t, err) // the account-wide ceiling holds, for the owner too

			clk.Advance(time.Hour)
			_, err = svc.LogIn(ctx, "target@example.com", pw, phone)
			require.NoError(t, err, "after the block, the owner gets in")
			_, err = svc.LogIn(ctx, "target@example.com", pw, laptop)
			require.NoError(t, err, "and again from another device: the success did not block the account")
			for i := range 4 {
				_, err := svc.LogIn(ctx, "target@example.com", "another wrong guess", identity.Client{IP: fmt.Sprintf("203.0.113.%d", i+10)})
				require.Equal(t, identity.CodeInvalidCredentials, code(err), "the count started afresh: guess %d", i+1)
			}
		})
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/keys"
)

func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	assert.True(t, c.Embedded())
	assert.Equal(t, "./lanyard-data", c.DataDir)
	assert.Equal(t, "127.0.0.1:8080", c.Addr)
	assert.Equal(t, "127.0.0.1:9090", c.AdminAddr, "operator endpoints on loopback unless told otherwise")
	assert.Equal(t, "http://localhost:8080", c.Issuer)
	assert.Equal(t, c.Issuer, c.Audience)
	assert.Equal(t, 15*time.Minute, c.AccessTTL)
	assert.Equal(t, 168*time.Hour, c.RefreshIdleTTL)
	assert.Equal(t, 720*time.Hour, c.RefreshAbsoluteTTL)
	assert.Equal(t, 10*time.Second, c.RefreshReuseGrace)
	assert.Equal(t, "client", c.RefreshGraceBinding, "the grace window is bound to the rotating client unless told otherwise")
	assert.Equal(t, keys.ES256, c.SigningAlg)
	assert.Equal(t, 15, c.PasswordMinLength)
	assert.Equal(t, uint32(19456), c.Argon2.MemoryKiB)
	assert.Equal(t, uint32(2), c.Argon2.Time)
	assert.Equal(t, uint8(1), c.Argon2.Threads)
	assert.Nil(t, c.Secret)
	assert.Empty(t, c.CORSOrigins)
	assert.True(t, c.MigrateOnStart)
	assert.Equal(t, 3*time.Second, c.DBTimeout)
	assert.Equal(t, 5*time.Second, c.ShutdownDrain, "readiness goes 503 before the listener closes unless told otherwise")
}

func TestOverrides(t *testing.T) {
	c, err := Load(env(map[string]string{
		"LANYARD_DATABASE_URL":    "postgres://u@db:5432/lanyard?sslmode=require",
		"LANYARD_SECRET":          "0123456789abcdef0123456789abcdef",
		"LANYARD_ISSUER":          "https://id.example.com",
		"LANYARD_AUDIENCE":        "textbook-api",
		"LANYARD_ACCESS_TTL":      "5m",
		"LANYARD_SIGNING_ALG":     "EdDSA",
		"LANYARD_CORS_ORIGINS":    "https://app.example.com, http://localhost:3000",
		"LANYARD_MIGRATE":         "false",
		"LANYARD_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.1",

		"LANYARD_REFRESH_GRACE_BINDING": "none",
	}))
	require.NoError(t, err)
	assert.Equal(t, "none", c.RefreshGraceBinding)
	assert.False(t, c.Embedded())
	assert.Equal(t, "textbook-api", c.Audience)
	assert.Equal(t, 5*time.Minute, c.AccessTTL)
	assert.Equal(t, keys.EdDSA, c.SigningAlg)
	assert.Equal(t, []string{"https://app.example.com", "http://localhost:3000"}, c.CORSOrigins)
	assert.Equal(t, []string{"10.0.0.0/8", "192.168.1.1"}, c.TrustedProxies)
	assert.False(t, c.MigrateOnStart)
}

// TestAdminAddr: the admin listener moves or turns off; an empty value is the
// default, like every other setting.
func TestAdminAddr(t *testing.T) {
	for value, want := range map[string]string{"": "127.0.0.1:9090", "0.0.0.0:9100": "0.0.0.0:9100", "off": ""} {
		c, err := Load(env(map[string]string{"LANYARD_ADMIN_ADDR": value}))
		require.NoError(t, err, value)
		assert.Equal(t, want, c.AdminAddr, value)
	}
}

func TestRejects(t *testing.T) {
	for variable, value := range map[string]string{
		"LANYARD_REFRESH_REUSE_GRACE":  "-1s",
		"LANYARD_REFRESH_IDLE_TTL":     "forever",
		"LANYARD_PASSWORD_MIN_LENGTH":  "7",
		"LANYARD_ARGON2_MEMORY_KIB":    "1024",
		"LANYARD_HASH_CONCURRENCY":     "0",
		"LANYARD_MIGRATE":              "maybe",
		"LANYARD_LOG_LEVEL":            "verbose",
		"LANYARD_ADDR":                 "8080",
		"LANYARD_ADMIN_ADDR":           "9090",
		"LANYARD_ISSUER":               "https://id.example.com/",
		"LANYARD_CORS_ORIGINS":         "https://app.example.com/path",
		"LANYARD_TRUSTED_PROXIES":      "not-an-ip",
		"LANYARD_REFRESH_ABSOLUTE_TTL": "1h",
		"LANYARD_DB_TIMEOUT":           "50ms",
		"LANYARD_SHUTDOWN_DRAIN":       "-1s",

		"LANYARD_REFRESH_GRACE_BINDING": "ip",

		"LANYARD_RATE_LIMIT_LOGIN_IP":                "-1",
		"LANYARD_RATE_LIMIT_SIGNUP_IP_WINDOW":        "0s",
		"LANYARD_RATE_LIMIT_LOGIN_ACCOUNT_IP":        "ten",
		"LANYARD_RATE_LIMIT_LOGIN_ACCOUNT_WINDOW":    "200h",
		"LANYARD_RATE_LIMIT_MAX_DELAY":               "0s",
		"LANYARD_RATE_LIMIT_LOGIN_ACCOUNT_IP_WINDOW": "soon",
		"LANYARD_CLIENT_IP_HEADER":                   "Forwarded",
	} {
		_, err := Load(env(map[string]string{variable: value}))
		var e *Error
		require.ErrorAs(t, err, &e, variable)
		assert.Equal(t, variable, e.Variable)
	}
}

// TestRateLimits: the contract's defaults, each rule settable and 0 turning
// one off; the client IP header is X-Forwarded-For unless told otherwise.
func TestRateLimits(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	assert.Equal(t, identity.DefaultRateLimits(), c.RateLimits)
	assert.Equal(t, identity.RateLimit{Max: 10, Window: 15 * time.Minute}, c.RateLimits.LoginAccountIP)
	assert.Equal(t, identity.RateLimit{Max: 30, Window: 15 * time.Minute}, c.RateLimits.LoginIP)
	assert.Equal(t, identity.RateLimit{Max: 100, Window: time.Hour}, c.RateLimits.LoginAccount)
	assert.Equal(t, identity.RateLimit{Max: 20, Window: time.Hour}, c.RateLimits.SignUpIP)
	assert.Equal(t, "X-Forwarded-For", c.ClientIPHeader)

	c, err = Load(env(map[string]string{
		"LANYARD_RATE_LIMIT_LOGIN_ACCOUNT_IP":        "5",
		"LANYARD_RATE_LIMIT_LOGIN_ACCOUNT_IP_WINDOW": "30m",
		"LANYARD_RATE_LIMIT_LOGIN_IP":                "0",
		"LANYARD_RATE_LIMIT_LOGIN_ACCOUNT_WINDOW":    "2h",
		"LANYARD_RATE_LIMIT_SIGNUP_IP":               "3",
		"LANYARD_RATE_LIMIT_FORGOT_EMAIL":            "2",
		"LANYARD_RATE_LIMIT_FORGOT_IP_WINDOW":        "10m",
		"LANYARD_RATE_LIMIT_MAIL_RESEND":             "0",
		"LANYARD_RATE_LIMIT_MAX_DELAY":               "1h",
		"LANYARD_CLIENT_IP_HEADER":                   "X-Real-IP",
	}))
	require.NoError(t, err)
	assert.Equal(t, identity.RateLimits{
		LoginAccountIP: identity.RateLimit{Max: 5, Window: 30 * time.Minute},
		LoginIP:        identity.RateLimit{Max: 0, Window: 15 * time.Minute},
		LoginAccount:   identity.RateLimit{Max: 100, Window: 2 * time.Hour},
		SignUpIP:       identity.RateLimit{Max: 3, Window: time.Hour},
		ForgotEmail:    identity.RateLimit{Max: 2, Window: time.Hour},
		ForgotIP:       identity.RateLimit{Max: 20, Window: 10 * time.Minute},
		MailResend:     identity.RateLimit{Max: 0, Window: time.Hour},
		MaxDelay:       time.Hour,
	}, c.RateLimits)
	assert.Equal(t, "X-Real-IP", c.ClientIPHeader)
}

// TestDBTimeoutWithinGrace: the database deadline must be shorter than the
// reuse grace window, so the retry of a refresh lost to the deadline still
// lands inside it; with no grace window there is nothing to fit into.
func TestDBTimeoutWithinGrace(t *testing.T) {
	for _, tc := range []struct {
		grace, timeout string
		ok             bool
	}{
		{"10s", "", true},      // the defaults fit
		{"2s", "", false},      // the 3s default does not fit a 2s window
		{"5s", "5s", false},    // equal is not shorter
		{"5s", "4999ms", true}, // just inside
		{"0s", "60s", true},    // grace off: any allowed deadline
		{"0s", "61s", false},   // still bounded by its own range
	} {
		_, err := Load(env(map[string]string{"LANYARD_REFRESH_REUSE_GRACE": tc.grace, "LANYARD_DB_TIMEOUT": tc.timeout}))
		if tc.ok {
			assert.NoError(t, err, "grace %s, timeout %q", tc.grace, tc.timeout)
			continue
		}
		var e *Error
		require.ErrorAs(t, err, &e, "grace %s, timeout %q", tc.grace, tc.timeout)
		assert.Equal(t, "LANYARD_DB_TIMEOUT", e.Variable)
	}
	_, err := Load(env(map[string]string{"LANYARD_REFRESH_REUSE_GRACE": "2s"}))
	assert.ErrorContains(t, err, "LANYARD_DB_TIMEOUT: must be shorter than the grace window LANYARD_REFRESH_REUSE_GRACE (2s)")
}

func TestEnsureSecret(t *testing.T) {
	dir := t.TempDir()
	c := Config{DataDir: filepath.Join(dir, "data")}
	generated, err := c.EnsureSecret()
	require.NoError(t, err)
	assert.True(t, generated)
	assert.GreaterOrEqual(t, len(c.Secret), MinSecretBytes)
	info, err := os.Stat(filepath.Join(dir, "data", "secret"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	again := Config{DataDir: c.DataDir}
	generated, err = again.EnsureSecret()
	require.NoError(t, err)
	assert.False(t, generated)
	assert.Equal(t, c.Secret, again.Secret, "the same secret is read back at the next start")

	require.NoError(t, os.Chmod(filepath.Join(dir, "data", "secret"), 0o644))
	_, err = (&Config{DataDir: c.DataDir}).EnsureSecret()
	assert.ErrorContains(t, err, "too open")

	configured := Config{DataDir: t.TempDir(), Secret: []byte("given")}
	generated, err = configured.EnsureSecret()
	require.NoError(t, err)
	assert.False(t, generated)
	assert.Equal(t, []byte("given"), configured.Secret)
}

// TestMailSettings: the email flows' settings, their defaults and the
// combinations refused.
func TestMailSettings(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	assert.Nil(t, c.SMTP, "no SMTP: links are logged")
	assert.Equal(t, identity.VerificationOptional, c.Mail.Verification)
	assert.Equal(t, "http://localhost:3000", c.Mail.AppURL.String())
	assert.Equal(t, "/verify-email", c.Mail.VerifyPath)
	assert.Equal(t, 30*time.Minute, c.Mail.ResetTTL)

	c, err = Load(env(map[string]string{
		"LANYARD_CORS_ORIGINS":            "https://learn.example.com",
		"LANYARD_SMTP_URL":                "smtp://mailer:s3cret@smtp.example.com:587",
		"LANYARD_MAIL_FROM":               "Learn <no-reply@example.com>",
		"LANYARD_EMAIL_VERIFICATION":      "required",
		"LANYARD_APP_RESET_PASSWORD_PATH": "/account/reset",
	}))
	require.NoError(t, err)
	require.NotNil(t, c.SMTP)
	assert.Equal(t, "smtp.example.com", c.SMTP.Host)
	assert.Equal(t, "https://learn.example.com", c.Mail.AppURL.String(), "the web app by default")
	assert.Equal(t, identity.VerificationRequired, c.Mail.Verification)
	assert.Equal(t, "/account/reset", c.Mail.ResetPath)

	for name, vars := range map[string]map[string]string{
		"LANYARD_MAIL_FROM":               {"LANYARD_SMTP_URL": "smtp://127.0.0.1:2525"},
		"LANYARD_SMTP_URL":                {"LANYARD_SMTP_URL": "http://mail.example.com", "LANYARD_MAIL_FROM": "a@example.com"},
		"LANYARD_EMAIL_VERIFICATION":      {"LANYARD_EMAIL_VERIFICATION": "sometimes"},
		"LANYARD_APP_URL":                 {"LANYARD_APP_URL": "learn.example.com/app"},
		"LANYARD_APP_VERIFY_EMAIL_PATH":   {"LANYARD_APP_VERIFY_EMAIL_PATH": "verify"},
		"LANYARD_RESET_PASSWORD_TTL":      {"LANYARD_RESET_PASSWORD_TTL": "48h"},
		"LANYARD_APP_CONFIRM_EMAIL_PATH?": {"LANYARD_APP_CONFIRM_EMAIL_PATH": "/confirm?x=1"},
	} {
		_, err := Load(env(vars))
		var cfgErr *Error
		require.ErrorAs(t, err, &cfgErr, name)
		assert.Equal(t, strings.TrimSuffix(name, "?"), cfgErr.Variable)
		assert.NotContains(t, err.Error(), "s3cret")
	}
}

// TestCORSOriginsCanonical: origins are kept as browsers send them, so an
// entry with capitals or a default port still matches.
func TestCORSOriginsCanonical(t *testing.T) {
	c, err := Load(env(map[string]string{"LANYARD_CORS_ORIGINS": "https://App.Example.com:443, http://LocalHost:3000,http://localhost:80,http://[::1]:8080"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"https://app.example.com", "http://localhost:3000", "http://localhost", "http://[::1]:8080"}, c.CORSOrigins)
}

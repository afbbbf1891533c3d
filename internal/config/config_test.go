package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/keys"
)

func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	assert.True(t, c.Embedded())
	assert.Equal(t, "./lanyard-data", c.DataDir)
	assert.Equal(t, "127.0.0.1:8080", c.Addr)
	assert.Equal(t, "http://localhost:8080", c.Issuer)
	assert.Equal(t, c.Issuer, c.Audience)
	assert.Equal(t, 15*time.Minute, c.AccessTTL)
	assert.Equal(t, 168*time.Hour, c.RefreshIdleTTL)
	assert.Equal(t, 720*time.Hour, c.RefreshAbsoluteTTL)
	assert.Equal(t, 10*time.Second, c.RefreshReuseGrace)
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
	}))
	require.NoError(t, err)
	assert.False(t, c.Embedded())
	assert.Equal(t, "textbook-api", c.Audience)
	assert.Equal(t, 5*time.Minute, c.AccessTTL)
	assert.Equal(t, keys.EdDSA, c.SigningAlg)
	assert.Equal(t, []string{"https://app.example.com", "http://localhost:3000"}, c.CORSOrigins)
	assert.Equal(t, []string{"10.0.0.0/8", "192.168.1.1"}, c.TrustedProxies)
	assert.False(t, c.MigrateOnStart)
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
		"LANYARD_ISSUER":               "https://id.example.com/",
		"LANYARD_CORS_ORIGINS":         "https://app.example.com/path",
		"LANYARD_TRUSTED_PROXIES":      "not-an-ip",
		"LANYARD_REFRESH_ABSOLUTE_TTL": "1h",
		"LANYARD_DB_TIMEOUT":           "50ms",
		"LANYARD_SHUTDOWN_DRAIN":       "-1s",
	} {
		_, err := Load(env(map[string]string{variable: value}))
		var e *Error
		require.ErrorAs(t, err, &e, variable)
		assert.Equal(t, variable, e.Variable)
	}
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

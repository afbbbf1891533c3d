package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdminToken: LANYARD_ADMIN_TOKEN is off when unset, kept as given when
// at least 32 bytes long, and refused naming the variable otherwise.
func TestAdminToken(t *testing.T) {
	c, err := Load(env(map[string]string{}))
	require.NoError(t, err)
	assert.Nil(t, c.AdminToken, "unset: the admin API is off")

	token := strings.Repeat("t", MinAdminTokenBytes)
	c, err = Load(env(map[string]string{"LANYARD_ADMIN_TOKEN": token}))
	require.NoError(t, err)
	assert.Equal(t, []byte(token), c.AdminToken)

	for _, short := range []string{"short-token", strings.Repeat("t", MinAdminTokenBytes-1)} {
		_, err = Load(env(map[string]string{"LANYARD_ADMIN_TOKEN": short}))
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "LANYARD_ADMIN_TOKEN", e.Variable)
		assert.NotContains(t, err.Error(), short, "the value is never echoed")
	}

	// A Kubernetes secret made with `echo` ends in a newline: refused at
	// start rather than never matching a client's token.
	for _, padded := range []string{token + "\n", token + "\r\n", " " + token, "\t" + token, token + " ", strings.Repeat(" ", MinAdminTokenBytes)} {
		_, err = Load(env(map[string]string{"LANYARD_ADMIN_TOKEN": padded}))
		var e *Error
		require.ErrorAs(t, err, &e, "%q", padded)
		assert.Equal(t, "LANYARD_ADMIN_TOKEN", e.Variable)
		assert.Contains(t, err.Error(), "LANYARD_ADMIN_TOKEN")
		assert.Contains(t, err.Error(), "must not start or end with whitespace")
		assert.NotContains(t, err.Error(), token, "the value is never echoed")
	}
}

package config

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAuditRetention: 90 days by default; a Go duration between a day and
// ten years; anything else names the variable.
func TestAuditRetention(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	assert.Equal(t, 2160*time.Hour, c.AuditRetention)

	c, err = Load(env(map[string]string{"LANYARD_AUDIT_RETENTION": "720h"}))
	require.NoError(t, err)
	assert.Equal(t, 720*time.Hour, c.AuditRetention)

	for _, bad := range []string{"1h", "23h59m", "87601h", "0", "-24h", "90d", "forever"} {
		_, err := Load(env(map[string]string{"LANYARD_AUDIT_RETENTION": bad}))
		var e *Error
		require.True(t, errors.As(err, &e), bad)
		assert.Equal(t, "LANYARD_AUDIT_RETENTION", e.Variable, bad)
	}
	for _, good := range []string{"24h", "87600h"} {
		_, err := Load(env(map[string]string{"LANYARD_AUDIT_RETENTION": good}))
		assert.NoError(t, err, good)
	}
}

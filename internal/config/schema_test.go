package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDatabaseSchema: lanyard by default; any valid lowercase identifier,
// public included (a deployment made before the setting); anything else is
// refused naming the variable.
func TestDatabaseSchema(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "lanyard", c.DatabaseSchema)

	for _, good := range []string{"public", "auth", "lanyard_2"} {
		c, err := Load(env(map[string]string{"LANYARD_DATABASE_SCHEMA": good}))
		require.NoError(t, err, good)
		assert.Equal(t, good, c.DatabaseSchema)
	}
	for _, bad := range []string{"Lanyard", "pg_lanyard", "information_schema", "select", "1st", "a-b", "a b", `a"b`, "lanyard;drop"} {
		_, err := Load(env(map[string]string{"LANYARD_DATABASE_SCHEMA": bad}))
		var e *Error
		require.True(t, errors.As(err, &e), "%q: %v", bad, err)
		assert.Equal(t, "LANYARD_DATABASE_SCHEMA", e.Variable, bad)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const openPermissionsWarning = "data directory permissions let other users in; fixed, but whoever could read it may have copied it"

// warnedPaths lists the paths of the permission warnings in JSON log lines.
func warnedPaths(t *testing.T, records []map[string]any) []string {
	t.Helper()
	var paths []string
	for _, rec := range records {
		if rec["msg"] == openPermissionsWarning {
			assert.Equal(t, "WARN", rec["level"])
			paths = append(paths, rec["path"].(string))
		}
	}
	return paths
}

// snapshot copies the records so far; start returns once "listening" is
// recorded, and every permission warning comes before it.
func (b *logBook) snapshot() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]map[string]any(nil), b.logs...)
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	return info.Mode().Perm()
}

// TestDataDirPermissions: an embedded data directory made beforehand with
// 0755, and its database, WAL and secret left 0644 (as mkdir and cp leave
// them under umask 022), are made private by serve and by migrate, each
// change logged as a warning; commands that take no lock refuse the secret
// instead.
func TestDataDirPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.Chmod(dir, 0o755)) // whatever the umask
	vars := map[string]string{"LANYARD_DATA_DIR": dir}

	l := start(t, vars)
	l.stop(t)
	assert.Equal(t, []string{dir}, warnedPaths(t, l.snapshot()), "the directory made beforehand")
	assert.Equal(t, fs.FileMode(0o700), perm(t, dir))
	db, secret := filepath.Join(dir, "lanyard.db"), filepath.Join(dir, "secret")
	for _, p := range []string{db, secret, filepath.Join(dir, lockFile)} {
		assert.Equal(t, fs.FileMode(0o600), perm(t, p), "%s as created", p)
	}

	// Opened up, as a copy or a careless chmod -R leaves them.
	openUp := func() {
		require.NoError(t, os.Chmod(dir, 0o755))
		for _, p := range []string{db, db + "-wal", secret} {
			f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644) // an empty WAL is an empty WAL
			require.NoError(t, err)
			require.NoError(t, f.Close())
			require.NoError(t, os.Chmod(p, 0o644))
		}
	}
	private := func() {
		assert.Equal(t, fs.FileMode(0o700), perm(t, dir))
		for _, p := range []string{db, db + "-wal", secret} {
			if _, err := os.Stat(p); p == db+"-wal" && os.IsNotExist(err) {
				continue // SQLite removes the WAL when the last connection closes
			}
			assert.Equal(t, fs.FileMode(0o600), perm(t, p), p)
		}
	}

	require.NoError(t, os.Chmod(secret, 0o644))
	err := run(context.Background(), []string{"keys", "reseal"}, env(vars), io.Discard, io.Discard)
	assert.ErrorContains(t, err, "permissions 0644 are too open", "a command that takes no lock refuses")

	openUp()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"migrate"}, env(vars), &out, io.Discard))
	var records []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			records = append(records, rec)
		}
	}
	assert.ElementsMatch(t, []string{dir, db, db + "-wal", secret}, warnedPaths(t, records), "migrate")
	private()

	openUp()
	l = start(t, vars)
	assert.ElementsMatch(t, []string{dir, db, db + "-wal", secret}, warnedPaths(t, l.snapshot()), "serve")
	private()
	status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "perm@example.com", "password": "correct horse battery staple"})
	assert.Equal(t, 201, status, "%v", body)
	l.stop(t)

	l = start(t, vars)
	l.stop(t)
	assert.Empty(t, warnedPaths(t, l.snapshot()), "nothing to fix, nothing said")
}

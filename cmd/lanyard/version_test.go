package main

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setVersion sets the ldflags variables for one test.
func setVersion(t *testing.T, v, built string) {
	oldVersion, oldBuilt := version, buildTime
	version, buildTime = v, built
	t.Cleanup(func() { version, buildTime = oldVersion, oldBuilt })
}

func versionOutput(t *testing.T, v versionInfo) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, v.write(&out))
	return out.String()
}

// TestVersionFromBuildInfo: a release build (-X main.version, -X
// main.buildTime) from a modified checkout prints the version on the first
// line, the module, the full revision marked modified, the commit time, the
// build time and the Go version.
func TestVersionFromBuildInfo(t *testing.T) {
	setVersion(t, "1.4.0", "2026-11-30T10:00:00Z")
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/lanyard-id/lanyard", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "ae45b14c0ffee0123456789abcdef0123456789a"},
			{Key: "vcs.time", Value: "2026-11-29T18:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	assert.Equal(t, "lanyard 1.4.0\n"+
		"module: github.com/lanyard-id/lanyard v1.4.0\n"+
		"revision: ae45b14c0ffee0123456789abcdef0123456789a (modified)\n"+
		"committed: 2026-11-29T18:00:00Z\n"+
		"built: 2026-11-30T10:00:00Z\n"+
		"go: go1.26.8\n", versionOutput(t, readVersion(info, true)))

	info.Settings[3].Value = "false"
	assert.Contains(t, versionOutput(t, readVersion(info, true)), "revision: ae45b14c0ffee0123456789abcdef0123456789a\n",
		"a clean tree is not marked modified")
}

// TestVersionWithoutLdflags: with no -X main.version, the version Go stamped
// on the module (go install …@v1.2.3, or a pseudo-version from the VCS) is
// the version; "(devel)" is not.
func TestVersionWithoutLdflags(t *testing.T) {
	setVersion(t, "", "")
	info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/lanyard-id/lanyard", Version: "v0.0.0-20261130103826-ae45b14c0ffe+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "ae45b14c0ffee0123456789abcdef0123456789a"}, {Key: "vcs.modified", Value: "true"}}}
	v := readVersion(info, true)
	assert.Equal(t, "v0.0.0-20261130103826-ae45b14c0ffe+dirty", v.Version)
	assert.True(t, v.Modified)
	assert.Contains(t, versionOutput(t, v), "built: unknown\n", "no build time is invented")

	info.Main.Version = "(devel)"
	assert.Equal(t, "dev-ae45b14c0ffe", readVersion(info, true).Version, "go build without a stamped version: dev and the revision")
}

// TestVersionRevisionFromLdflags: a build without VCS information (a
// container build without .git) reports the revision it was given with -X
// main.revision; Go's own vcs.revision, when there is one, wins.
func TestVersionRevisionFromLdflags(t *testing.T) {
	setVersion(t, "1.4.0", "2026-11-30T10:00:00Z")
	old := revision
	revision = "0123456789abcdef0123456789abcdef01234567"
	t.Cleanup(func() { revision = old })
	info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/lanyard-id/lanyard", Version: "(devel)"}}
	assert.Contains(t, versionOutput(t, readVersion(info, true)), "revision: 0123456789abcdef0123456789abcdef01234567\n")
	info.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "ae45b14c0ffee0123456789abcdef0123456789a"}}
	assert.Contains(t, versionOutput(t, readVersion(info, true)), "revision: ae45b14c0ffee0123456789abcdef0123456789a\n")
}

// TestVersionUnderGoRun: go run and go test builds carry no VCS settings,
// and a binary may have no build info at all; every missing fact reads
// "unknown" and nothing fails.
func TestVersionUnderGoRun(t *testing.T) {
	setVersion(t, "", "")
	v := readVersion(&debug.BuildInfo{Main: debug.Module{Path: "github.com/lanyard-id/lanyard", Version: "(devel)"}}, true)
	assert.Equal(t, "lanyard dev\n"+
		"module: github.com/lanyard-id/lanyard (devel)\n"+
		"revision: unknown\n"+
		"committed: unknown\n"+
		"built: unknown\n"+
		"go: "+runtime.Version()+"\n", versionOutput(t, v))

	out := versionOutput(t, readVersion(nil, false))
	assert.True(t, strings.HasPrefix(out, "lanyard dev\nmodule: unknown\nrevision: unknown\n"), out)
}

// TestVersionCommand: `lanyard version` and `--version` through run print
// the same report, whose first line is still "lanyard VERSION".
func TestVersionCommand(t *testing.T) {
	setVersion(t, "9.9.9-test", "")
	for _, arg := range []string{"version", "--version"} {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), []string{arg}, env(map[string]string{}), &out, io.Discard))
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		require.Len(t, lines, 6, out.String())
		assert.Equal(t, "lanyard 9.9.9-test", lines[0])
		for i, key := range []string{"module: ", "revision: ", "committed: ", "built: ", "go: "} {
			assert.True(t, strings.HasPrefix(lines[i+1], key), "line %d: %q", i+1, lines[i+1])
		}
	}
}

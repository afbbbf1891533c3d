package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// buildTime may be set at build time with -ldflags "-X main.buildTime=…"
// (for example $(date -u +%Y-%m-%dT%H:%M:%SZ)); Go's build info records the
// commit's time, not the build's.
var buildTime = ""

// revision may be set at build time with -ldflags "-X main.revision=…" where
// the build sees no VCS (a container build whose context leaves out .git);
// Go's own vcs.revision wins when there is one.
var revision = ""

// versionInfo is what `lanyard version` prints.
type versionInfo struct {
	Version    string // main.version, else the module version Go stamped, else "dev-" and the revision, else "dev"
	Module     string // the main module's path and version
	Revision   string // vcs.revision, else main.revision, else ""
	Modified   bool   // vcs.modified: built from a tree with uncommitted changes
	CommitTime string // vcs.time
	BuildTime  string // main.buildTime
	GoVersion  string
}

// readVersion gathers the version from the ldflags variables and the build
// info. Under `go run` and `go test` the build info has no VCS settings and
// the module version is "(devel)"; those fields are then reported as
// unknown rather than invented.
func readVersion(info *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Version: version, BuildTime: buildTime, GoVersion: runtime.Version()}
	if ok && info != nil {
		v.fromBuildInfo(info)
	}
	if v.Revision == "" {
		v.Revision = revision
	}
	// The start-up log carries this version too (buildVersion).
	switch {
	case v.Version != "":
	case len(v.Revision) >= 12:
		v.Version = "dev-" + v.Revision[:12]
	default:
		v.Version = "dev"
	}
	return v
}

// fromBuildInfo fills in what Go recorded in the binary.
func (v *versionInfo) fromBuildInfo(info *debug.BuildInfo) {
	if info.GoVersion != "" {
		v.GoVersion = info.GoVersion
	}
	v.Module = info.Main.Path
	if info.Main.Version != "" {
		v.Module += " " + info.Main.Version
	}
	if v.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		// go install module@v1.2.3, or a go build that stamped the version
		// from the VCS tag (a pseudo-version otherwise).
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		case "vcs.time":
			v.CommitTime = s.Value
		}
	}
}

// write prints the version: the first line is "lanyard VERSION", as it
// always was, then one "key: value" line per fact.
func (v versionInfo) write(w io.Writer) error {
	unknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	revision := unknown(v.Revision)
	if v.Revision != "" && v.Modified {
		revision += " (modified)"
	}
	_, err := fmt.Fprintf(w, "lanyard %s\nmodule: %s\nrevision: %s\ncommitted: %s\nbuilt: %s\ngo: %s\n",
		v.Version, unknown(v.Module), revision, unknown(v.CommitTime), unknown(v.BuildTime), v.GoVersion)
	return err
}

// printVersion runs `lanyard version`.
func printVersion(w io.Writer) error {
	info, ok := debug.ReadBuildInfo()
	return readVersion(info, ok).write(w)
}

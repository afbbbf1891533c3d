package betterauth

import (
	"fmt"
	"io"
	"time"
)

// Kind sorts a report line.
type Kind string

const (
	Skipped Kind = "skipped" // deliberately not imported (no password to carry, an id Lanyard cannot hold)
	Failed  Kind = "failed"  // should have been imported and was not: the exit status says so
	Warning Kind = "warning" // imported, with something left out
)

// Entry is one report line about one user. Reasons name ids and rules,
// never passwords or hashes.
type Entry struct {
	UserID string
	Kind   Kind
	Reason string
}

// Report is what an import did.
type Report struct {
	DryRun                      bool
	Read                        int
	Created, Updated, Unchanged int
	Sessions                    int // sessions written (new, or with a new expiry)
	Entries                     []Entry
	Elapsed                     time.Duration
}

func (r *Report) add(id string, kind Kind, reason string) {
	r.Entries = append(r.Entries, Entry{UserID: id, Kind: kind, Reason: reason})
}

// Count returns how many entries are of kind.
func (r *Report) Count(kind Kind) int {
	n := 0
	for _, e := range r.Entries {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// Write prints one line per entry, failures first, then the counts:
//
//	user <id>: failed: <reason>
//	user <id>: skipped: <reason>
//	user <id>: warning: <reason>
//	created 5, updated 0, unchanged 0, skipped 2, failed 3, warnings 2, sessions 1 (of 10 Better-Auth users)
//
// A dry run says so first and last.
func (r *Report) Write(w io.Writer) error {
	if r.DryRun {
		fmt.Fprintln(w, "dry run: every batch is rolled back, nothing is written")
	}
	for _, kind := range []Kind{Failed, Skipped, Warning} {
		for _, e := range r.Entries {
			if e.Kind == kind {
				fmt.Fprintf(w, "user %s: %s: %s\n", displayID(e.UserID), e.Kind, e.Reason)
			}
		}
	}
	verb := ""
	if r.DryRun {
		verb = "dry run, would have: "
	}
	_, err := fmt.Fprintf(w, "%screated %d, updated %d, unchanged %d, skipped %d, failed %d, warnings %d, sessions %d (of %d Better-Auth users)\n",
		verb, r.Created, r.Updated, r.Unchanged, r.Count(Skipped), r.Count(Failed), r.Count(Warning), r.Sessions, r.Read)
	return err
}

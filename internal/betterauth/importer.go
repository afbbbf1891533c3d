package betterauth

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Options tune an import.
type Options struct {
	BatchSize int  // users per destination transaction
	DryRun    bool // do the work, roll every batch back
	Sessions  bool // also import the live sessions of imported users
	// Now is the import time: email_verified_at and completed_at of what is
	// imported, and the cut-off for live sessions.
	Now time.Time
	// Progress, when set, gets one line per batch.
	Progress io.Writer
}

// Import reads every user of src and writes it to dst, batch by batch, and
// returns the report. An error means the import stopped (a database
// failed); what earlier batches committed stays, and running it again
// carries on, since a re-run writes only what differs.
func Import(ctx context.Context, src *Source, dst Destination, opts Options) (*Report, error) {
	rep := &Report{DryRun: opts.DryRun}
	total, err := src.CountUsers(ctx)
	if err != nil {
		return rep, fmt.Errorf("count Better-Auth users: %w", err)
	}
	// claimed maps each address given to a user by this run to that user,
	// across batches: two Better-Auth users whose addresses Lanyard holds
	// equal (they differ only in case) are then a conflict whichever batch
	// each falls in, and a dry run finds it too, though it commits nothing
	// for the store to find.
	claimed := make(map[string]string)
	// Addresses several Better-Auth users share ignoring case: Lanyard can
	// give such an address to one of them only, and which one is for the
	// operator to decide, so every one of them is reported and none is
	// imported.
	sharedEmails, err := src.sharedEmails(ctx)
	if err != nil {
		return rep, fmt.Errorf("look for shared Better-Auth addresses: %w", err)
	}
	shared := make(map[string]string) // user id -> the ids sharing its address
	for _, ids := range sharedEmails {
		for _, id := range ids {
			shared[id] = strings.Join(ids, ", ")
		}
	}
	start := time.Now()
	after := ""
	done := 0
	for {
		batch, err := src.readBatch(ctx, after, opts.BatchSize)
		if err != nil {
			return rep, err
		}
		if len(batch) == 0 {
			break
		}
		after = batch[len(batch)-1].ID
		if err := importBatch(ctx, src, dst, batch, claimed, shared, opts, rep); err != nil {
			return rep, err
		}
		done += len(batch)
		if opts.Progress != nil {
			elapsed := time.Since(start)
			fmt.Fprintf(opts.Progress, "import: %d/%d users, %.0f users/s\n", done, total, float64(done)/max(elapsed.Seconds(), 1e-3))
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// importBatch maps one batch, writes it in one destination transaction
// and records each user's outcome.
func importBatch(ctx context.Context, src *Source, dst Destination, batch []sourceUser, claimed, shared map[string]string, opts Options, rep *Report) error {
	rep.Read += len(batch)
	var users []User
	warnings := make(map[string][]string)
	emails := make(map[string]string)
	for _, su := range batch {
		m := mapUser(su)
		switch {
		case shared[su.ID] != "":
			rep.add(su.ID, Failed, fmt.Sprintf("email address shared, ignoring case, by Better-Auth users %s; Lanyard compares addresses without case: resolve in Better-Auth and import again", shared[su.ID]))
		case m.skip != "":
			rep.add(su.ID, Skipped, m.skip)
		case m.fail != "":
			rep.add(su.ID, Failed, m.fail)
		case claimed[m.user.Email] != "":
			rep.add(su.ID, Failed, fmt.Sprintf("email address conflict: Better-Auth user %s has the same address as Lanyard compares them (ignoring case and Unicode form); resolve in Better-Auth and import again", claimed[m.user.Email]))
		default:
			claimed[m.user.Email] = m.user.ID
			users = append(users, *m.user)
			warnings[m.user.ID] = m.warnings
			emails[m.user.ID] = m.user.Email
		}
	}
	if len(users) == 0 {
		return nil
	}
	var sessions []Session
	if opts.Sessions {
		ids := make([]string, len(users))
		for i, u := range users {
			ids[i] = u.ID
		}
		var err error
		if sessions, err = src.liveSessions(ctx, ids, opts.Now); err != nil {
			return err
		}
	}
	results, written, err := dst.ImportBetterAuthBatch(ctx, users, sessions, opts.Now, opts.DryRun)
	if err != nil {
		return fmt.Errorf("write a batch to Lanyard: %w", err)
	}
	rep.Sessions += written
	for _, r := range results {
		switch r.Outcome {
		case Created:
			rep.Created++
		case Updated:
			rep.Updated++
		case Unchanged:
			rep.Unchanged++
		case Conflict:
			rep.add(r.ID, Failed, fmt.Sprintf("email address conflict: it already belongs to Lanyard user %s; nothing written for this user", r.ConflictID))
			// The address stays the Lanyard user's: a later Better-Auth user
			// with it meets the same conflict, reported the same way.
			delete(claimed, emails[r.ID])
			continue
		}
		for _, w := range warnings[r.ID] {
			rep.add(r.ID, Warning, w)
		}
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/lanyard-id/lanyard/internal/emailaddr"
	"github.com/lanyard-id/lanyard/internal/store"
)

// emailRulesMigration is the migration that came with the stricter email
// rules (internal/emailaddr); once it is applied, existing addresses are
// checked against them.
const emailRulesMigration = "00007_mail.sql"

// emailFinding is a stored address the current rules would refuse or
// spell differently. It is reported, never rewritten: the account keeps
// signing in with the address it has (comparison stays case-insensitive),
// and an operator decides what to do with a lookalike.
type emailFinding struct {
	UserID string
	Reason string
}

// storedEmailFindings checks the stored addresses once the migration that
// brought the email rules (emailRulesMigration) is among applied; nothing
// otherwise.
func storedEmailFindings(ctx context.Context, st *store.Store, applied []string) ([]emailFinding, error) {
	if !slices.Contains(applied, emailRulesMigration) {
		return nil, nil
	}
	findings, err := checkStoredEmails(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("check stored email addresses: %w", err)
	}
	return findings, nil
}

// checkStoredEmails reports every stored address that emailaddr.Normalize
// refuses or changes.
func checkStoredEmails(ctx context.Context, st *store.Store) ([]emailFinding, error) {
	var findings []emailFinding
	after := ""
	for {
		page, err := st.UserEmails(ctx, after, 500)
		if err != nil {
			return findings, err
		}
		for _, u := range page {
			normalised, err := emailaddr.Normalize(u.Email)
			switch {
			case err != nil: // the rule's message, which never quotes the address
				findings = append(findings, emailFinding{UserID: u.ID, Reason: err.Error()})
			case normalised != u.Email:
				findings = append(findings, emailFinding{UserID: u.ID, Reason: "stored in another form than the rules now give (IDNA or Unicode normalisation)"})
			}
		}
		if len(page) < 500 {
			return findings, nil
		}
		after = page[len(page)-1].ID
	}
}

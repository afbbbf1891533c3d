// Package betterauth moves a Better-Auth deployment's users into Lanyard:
// it reads Better-Auth's tables from its Postgres database (source.go),
// turns each user into what Lanyard stores or into a reason why not
// (mapping.go), hands the batches to a Destination (Lanyard's store) and
// keeps the report (report.go). `lanyard import better-auth` drives it.
package betterauth

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lanyard-id/lanyard/internal/emailaddr"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
)

// User is one Better-Auth user as Lanyard stores it.
type User struct {
	ID            string // Better-Auth's user.id, kept as Lanyard's sub
	Email         string // normalised (emailaddr.Normalize)
	Name          *string
	PasswordHash  string // password.BetterAuthScryptPrefix + Better-Auth's value
	CreatedAt     time.Time
	EmailVerified bool
	Profile       *Profile // nil: no user_profile row, or one that was not imported
}

// Profile holds the onboarding answers in Lanyard's spellings; "" is no
// answer.
type Profile struct {
	PythonProficiency string
	DeveloperRole     string
}

// Complete reports whether both answers are there, which is what makes a
// Lanyard profile complete.
func (p Profile) Complete() bool { return p.PythonProficiency != "" && p.DeveloperRole != "" }

// Session is a live Better-Auth session of an imported user; only the
// SHA-256 of its token is kept.
type Session struct {
	TokenHash []byte
	UserID    string
	ExpiresAt time.Time
}

// Outcome is what a batch did to one user.
type Outcome int

const (
	Created Outcome = iota
	Updated
	Unchanged
	// Conflict: the email address belongs to another Lanyard user; nothing
	// was written for this user.
	Conflict
)

// Result is the outcome for one user of a batch; ConflictID names the
// Lanyard user holding the address when Outcome is Conflict.
type Result struct {
	ID         string
	Outcome    Outcome
	ConflictID string
}

// Destination is where users go: Lanyard's store. A batch is one
// transaction; with dryRun it is rolled back after doing all the work, so
// the outcomes are what a real run would give. sessions may name users of
// the batch whose outcome ends up Conflict: those are left out.
type Destination interface {
	ImportBetterAuthBatch(ctx context.Context, users []User, sessions []Session, at time.Time, dryRun bool) (results []Result, sessionsWritten int, err error)
}

// sourceUser is a user row with its account and user_profile rows as read.
type sourceUser struct {
	ID            string
	Name          []byte // bytes as stored: a database in SQL_ASCII can hold invalid UTF-8
	Email         string
	EmailVerified bool
	CreatedAt     time.Time
	Accounts      []sourceAccount
	Profiles      []sourceProfile
}

type sourceAccount struct {
	Provider string
	Password *string
}

type sourceProfile struct {
	PythonProficiency *string
	DeveloperRole     *string
}

// mapped is the verdict on one source user: either user is set, or skip or
// fail says why not. warnings apply when the user is imported.
type mapped struct {
	user     *User
	skip     string
	fail     string
	warnings []string
}

const maxIDLength = 64 // users.id's CHECK: the sub claim is an opaque string of at most 64 characters

// mapUser applies the import rules to one user.
func mapUser(src sourceUser) mapped {
	var m mapped
	if n := utf8.RuneCountInString(src.ID); n < 1 || n > maxIDLength || !utf8.ValidString(src.ID) || strings.ContainsFunc(src.ID, unicode.IsControl) {
		// Lanyard's sub must be this id unchanged (the application's own
		// tables reference it), so an id Lanyard cannot hold is skipped
		// rather than replaced.
		m.skip = fmt.Sprintf("id is not 1 to %d characters of UTF-8 without control characters, which Lanyard's sub must be", maxIDLength)
		return m
	}
	hash, reason, skip := credential(src.Accounts)
	if reason != "" {
		if skip {
			m.skip = reason
		} else {
			m.fail = reason
		}
		return m
	}
	email, err := emailaddr.Normalize(src.Email)
	if err != nil {
		// The rule's own message, which never quotes the address.
		m.fail = "email address refused by Lanyard's rules: it " + err.Error()
		return m
	}
	u := &User{ID: src.ID, Email: email, PasswordHash: hash, CreatedAt: src.CreatedAt.UTC().Truncate(time.Microsecond), EmailVerified: src.EmailVerified}
	switch {
	case !utf8.Valid(src.Name):
		m.warnings = append(m.warnings, "name is not valid UTF-8; imported without a name")
	default:
		name, ok := identity.NormaliseName(string(src.Name))
		switch {
		case !ok:
			m.warnings = append(m.warnings, "name breaks Lanyard's name rules (at most 200 characters, no invisible or control characters); imported without a name")
		case name != "":
			u.Name = &name
		}
	}
	p, warning := mapProfile(src.Profiles)
	if warning != "" {
		m.warnings = append(m.warnings, warning)
	}
	u.Profile = p
	m.user = u
	return m
}

// credential finds the password among a user's accounts. reason is empty
// when hash is usable; skip tells a deliberate skip (nothing to sign in
// with by password) from a failure (a password that cannot be carried).
func credential(accounts []sourceAccount) (hash, reason string, skip bool) {
	var creds []sourceAccount
	var others []string
	for _, a := range accounts {
		if a.Provider == "credential" {
			creds = append(creds, a)
		} else {
			others = append(others, strconv.Quote(a.Provider))
		}
	}
	switch {
	case len(creds) == 0 && len(others) == 0:
		return "", "no account row, so no password to carry over (a magic-link or deleted-account user; Lanyard's password reset can enrol them)", true
	case len(creds) == 0:
		// OAuth and plugin accounts are not carried over: Lanyard signs in
		// by password only.
		return "", "no password (credential) account; providers found: " + strings.Join(others, ", ") + "; Lanyard signs in by password only", true
	case len(creds) > 1:
		return "", fmt.Sprintf("%d credential accounts, Better-Auth keeps one; resolve in Better-Auth and import again", len(creds)), false
	case creds[0].Password == nil || *creds[0].Password == "":
		return "", "the credential account has no password hash", false
	}
	h, err := password.ImportBetterAuthHash(*creds[0].Password)
	if err != nil {
		// The error never quotes the hash (a corrupt row may hold a
		// password typed into the wrong column).
		return "", "corrupt password hash in the credential account: " + err.Error(), false
	}
	return h, "", false
}

// mapProfile maps the user_profile rows of one user. A value that does not
// map is reported and the profile left out: an onboarding answer is never
// guessed, and Lanyard then asks the user again.
func mapProfile(rows []sourceProfile) (*Profile, string) {
	switch len(rows) {
	case 0:
		return nil, ""
	case 1:
	default:
		return nil, fmt.Sprintf("%d user_profile rows; profile not imported", len(rows))
	}
	python, ok := mapAnswer(rows[0].PythonProficiency, identity.PythonProficiencies)
	if !ok {
		return nil, fmt.Sprintf("user_profile.python_proficiency %s is not one of %s; profile not imported",
			quoteShort(*rows[0].PythonProficiency), strings.Join(identity.PythonProficiencies, ", "))
	}
	role, ok := mapAnswer(rows[0].DeveloperRole, identity.DeveloperRoles)
	if !ok {
		return nil, fmt.Sprintf("user_profile.developer_role %s is not one of %s; profile not imported",
			quoteShort(*rows[0].DeveloperRole), strings.Join(identity.DeveloperRoles, ", "))
	}
	if python == "" && role == "" {
		return nil, ""
	}
	return &Profile{PythonProficiency: python, DeveloperRole: role}, ""
}

// mapAnswer maps one spelling onto Lanyard's: case-insensitively, with
// spaces and hyphens read as underscores ("Software Engineer",
// "software-engineer"). NULL or blank is no answer.
func mapAnswer(v *string, allowed []string) (string, bool) {
	if v == nil || strings.TrimSpace(*v) == "" {
		return "", true
	}
	key := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return '_'
		}
		return r
	}, strings.ToLower(strings.TrimSpace(*v)))
	for _, a := range allowed {
		if key == a {
			return a, true
		}
	}
	return "", false
}

// quoteShort quotes a value for the report, cut to a readable length.
func quoteShort(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return strconv.QuoteToGraphic(s)
}

// displayID writes an id for the report: as it is when it is a valid id,
// else quoted and cut (an id that was skipped for its form).
func displayID(id string) string {
	if n := utf8.RuneCountInString(id); n >= 1 && n <= maxIDLength && utf8.ValidString(id) && !strings.ContainsFunc(id, unicode.IsControl) {
		return id
	}
	if len(id) > maxIDLength {
		id = id[:maxIDLength]
	}
	return strconv.QuoteToASCII(id)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/httpapi"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/keys"
)

// The operators' commands, `lanyard users …` and `lanyard audit`: the same
// use cases as the admin API (identity/admin.go), recorded in the audit
// trail with actor admin, via cli and user agent lanyard-cli.

const usersUsage = `usage:
  lanyard users list [--email-prefix P] [--limit N] [--cursor C] [--json]
  lanyard users show [--json] ID
  lanyard users disable ID
  lanyard users enable ID
  lanyard users end-sessions ID
  lanyard users delete --yes ID
  lanyard audit [--user ID] [--type T] [--limit N] [--cursor C] [--json]

list finds users by email prefix, a page at a time (--cursor: the cursor the previous
page printed). disable ends every session of the user at once and refuses its logins,
refreshes and access tokens at Lanyard (403 account_disabled) until enable. delete
removes the user and everything tied to it (docs/admin.md) and cannot be undone: it
needs --yes. Every change, and show, is recorded in the audit trail.
`

// cliAdmin is who the commands act as in the audit trail.
var cliAdmin = identity.Admin{Via: "cli", UserAgent: "lanyard-cli"}

// adminService opens the existing database (openStore never guesses one)
// and builds the use cases on it, on the database's clock, with the
// server's secret (throttle counters are keyed with it).
func adminService(ctx context.Context, getenv func(string) string) (*identity.Service, func(), error) {
	cfg, st, records, err := openStore(ctx, getenv)
	if err != nil {
		return nil, nil, err
	}
	if _, err := cfg.EnsureSecret(); err != nil {
		st.Close()
		return nil, nil, err
	}
	if err := proveSecret(cfg, records); err != nil {
		st.Close()
		return nil, nil, err
	}
	svc, err := identity.NewService(serviceConfig(cfg), st, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	clock, err := syncedClock(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	svc.SetSessionClock(clock.Now)
	return svc, func() { st.Close() }, nil
}

// errForeignSecret is the one line a command refuses with when
// LANYARD_SECRET is not the server's.
var errForeignSecret = errors.New("LANYARD_SECRET does not open the stored signing keys: it is not the server's secret")

// proveSecret checks that LANYARD_SECRET is the server's, as `lanyard keys
// reseal` does: of the stored records, the signing key in use (current, else next) must open with
// it (or with LANYARD_SECRET_PREVIOUS). Throttle counters are keyed by an
// HMAC under the secret, so with another secret `users delete` would
// report success and leave the user's counters behind. A database with no
// such key has nothing to prove the secret against.
func proveSecret(cfg config.Config, records []identity.SigningKeyRecord) error {
	inState := func(state string) func(identity.SigningKeyRecord) bool {
		return func(r identity.SigningKeyRecord) bool { return r.State == state }
	}
	i := slices.IndexFunc(records, inState(identity.KeyStateCurrent))
	if i < 0 {
		i = slices.IndexFunc(records, inState(identity.KeyStateNext))
	}
	if i < 0 {
		return nil
	}
	key := records[i]
	sealer, err := newSealer(cfg)
	if err != nil {
		return err
	}
	alg, err := keys.ParseAlgorithm(key.Alg)
	if err != nil {
		return err
	}
	if _, err := sealer.Open(key.KID, alg, key.Sealed); err != nil {
		return errForeignSecret
	}
	return nil
}

// checkLimit refuses a --limit outside a page's bounds before any
// database is opened.
func checkLimit(limit int) error {
	if limit < 1 || limit > identity.MaxPageLimit {
		return fmt.Errorf("--limit must be between 1 and %d", identity.MaxPageLimit)
	}
	return nil
}

// parseArgs parses flags wherever they appear among the arguments and
// returns the others.
func parseArgs(flags *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := flags.Parse(args); err != nil {
			return nil, err
		}
		args = flags.Args()
		if len(args) == 0 {
			return rest, nil
		}
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

// commandError turns a use case's error into the command's one line.
func commandError(err error, userID string) error {
	var e *identity.Error
	if !errors.As(err, &e) {
		return err
	}
	if e.Code == identity.CodeNotFound && userID != "" {
		return fmt.Errorf("no user with id %q", userID)
	}
	msg := e.Message
	for _, f := range e.Fields {
		msg += "; " + f.Field + " " + f.Message
	}
	return fmt.Errorf("%s (%s)", msg, e.Code)
}

func usersCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			return errors.New(usersUsage)
		}
		fmt.Fprint(stdout, usersUsage)
		return nil
	}
	sub, args := args[0], args[1:]
	flags := flag.NewFlagSet("users "+sub, flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	var (
		prefix, cursor string
		limit          int
		asJSON, yes    bool
	)
	switch sub {
	case "list":
		flags.StringVar(&prefix, "email-prefix", "", "")
		flags.StringVar(&cursor, "cursor", "", "")
		flags.IntVar(&limit, "limit", identity.DefaultPageLimit, "")
		flags.BoolVar(&asJSON, "json", false, "")
	case "show":
		flags.BoolVar(&asJSON, "json", false, "")
	case "delete":
		flags.BoolVar(&yes, "yes", false, "")
	case "disable", "enable", "end-sessions":
	default:
		return fmt.Errorf("unknown users command %q\n%s", sub, usersUsage)
	}
	rest, err := parseArgs(flags, args)
	if err != nil {
		return fmt.Errorf("%v\n%s", err, usersUsage)
	}
	var id string
	switch {
	case sub == "list" && len(rest) > 0:
		return fmt.Errorf("users list takes no arguments\n%s", usersUsage)
	case sub != "list" && len(rest) != 1:
		return fmt.Errorf("users %s takes exactly one user id\n%s", sub, usersUsage)
	case sub != "list":
		id = rest[0]
	}
	if sub == "list" {
		if err := checkLimit(limit); err != nil {
			return err
		}
	}
	if sub == "delete" && !yes {
		return fmt.Errorf("refusing to delete user %q without --yes: deletion removes the account, its sessions and its profile, and cannot be undone", id)
	}
	svc, done, err := adminService(ctx, getenv)
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "list":
		page, err := svc.AdminListUsers(ctx, prefix, cursor, limit)
		if err != nil {
			return commandError(err, "")
		}
		return printUsers(stdout, page, asJSON)
	case "show":
		u, err := svc.AdminGetUser(ctx, cliAdmin, id)
		if err != nil {
			return commandError(err, id)
		}
		return printUser(stdout, u, asJSON)
	case "disable":
		if err := svc.AdminDisableUser(ctx, cliAdmin, id); err != nil {
			return commandError(err, id)
		}
		fmt.Fprintf(stdout, "user %s disabled; every session of it has ended\n", id)
	case "enable":
		if err := svc.AdminEnableUser(ctx, cliAdmin, id); err != nil {
			return commandError(err, id)
		}
		fmt.Fprintf(stdout, "user %s enabled\n", id)
	case "end-sessions":
		if err := svc.AdminEndSessions(ctx, cliAdmin, id); err != nil {
			return commandError(err, id)
		}
		fmt.Fprintf(stdout, "every session of user %s has ended\n", id)
	case "delete":
		if err := svc.AdminDeleteUser(ctx, cliAdmin, id); err != nil {
			return commandError(err, id)
		}
		fmt.Fprintf(stdout, "user %s deleted\n", id)
	}
	return nil
}

func auditCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, usersUsage)
		return nil
	}
	flags := flag.NewFlagSet("audit", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	userID := flags.String("user", "", "")
	eventType := flags.String("type", "", "")
	cursor := flags.String("cursor", "", "")
	limit := flags.Int("limit", identity.DefaultPageLimit, "")
	asJSON := flags.Bool("json", false, "")
	rest, err := parseArgs(flags, args)
	if err != nil || len(rest) > 0 {
		return fmt.Errorf("usage: lanyard audit [--user ID] [--type T] [--limit N] [--cursor C] [--json]")
	}
	if err := checkLimit(*limit); err != nil {
		return err
	}
	svc, done, err := adminService(ctx, getenv)
	if err != nil {
		return err
	}
	defer done()
	page, err := svc.AdminAudit(ctx, *userID, *eventType, *cursor, *limit)
	if err != nil {
		return commandError(err, "")
	}
	if *asJSON {
		return writeJSON(stdout, httpapi.AuditEventList(page))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tTYPE\tUSER\tACTOR\tIP\tDETAILS")
	for _, e := range page.Events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.UTC().Format(time.RFC3339), e.Type, dash(e.UserID), e.Actor,
			dash(e.IP), details(e.Details))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printNext(stdout, page.NextCursor)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// details prints an event's details as sorted key=value pairs.
func details(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(d[k])
	}
	return dash(strings.Join(parts, " "))
}

func printNext(w io.Writer, cursor string) {
	if cursor != "" {
		fmt.Fprintf(w, "more: --cursor %s\n", cursor)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printUsers(w io.Writer, page identity.UserPage, asJSON bool) error {
	if asJSON {
		return writeJSON(w, httpapi.AdminUserList(page))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tVERIFIED\tDISABLED\tCREATED")
	for _, u := range page.Users {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\n", u.ID, u.Email, u.EmailVerified, stamp(u.DisabledAt), u.CreatedAt.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printNext(w, page.NextCursor)
	return nil
}

func printUser(w io.Writer, u identity.AdminUser, asJSON bool) error {
	if asJSON {
		return writeJSON(w, httpapi.AdminUserDetail(u))
	}
	name := "-"
	if u.Name != nil {
		name = *u.Name
	}
	proficiency, role := "-", "-"
	if u.Profile != nil {
		proficiency, role = dash(u.Profile.PythonProficiency), dash(u.Profile.DeveloperRole)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"id", u.ID}, {"email", u.Email}, {"name", name}, {"email verified", strconv.FormatBool(u.EmailVerified)},
		{"created", u.CreatedAt.UTC().Format(time.RFC3339)}, {"disabled", stamp(u.DisabledAt)},
		{"profile complete", strconv.FormatBool(u.ProfileComplete())}, {"python proficiency", proficiency}, {"developer role", role},
		{"live sessions", strconv.Itoa(u.LiveSessions)}, {"last login", stamp(u.LastLoginAt)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

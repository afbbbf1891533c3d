// Package config reads Lanyard's settings from LANYARD_* environment variables
// into one validated Config. getenv is injected so tests never touch the process
// environment.
package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/mail"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/keys"
)

// MinSecretBytes is the shortest LANYARD_SECRET accepted: it keys the AEAD that
// protects private signing keys and the refresh-token MAC.
const MinSecretBytes = 32

// MinAdminTokenBytes is the shortest LANYARD_ADMIN_TOKEN accepted.
const MinAdminTokenBytes = 32

// adminOff as LANYARD_ADMIN_ADDR turns the admin listener off (an empty value
// means the default, like every other setting).
const adminOff = "off"

// Config is every setting Lanyard reads at start.
type Config struct {
	DatabaseURL string // "" means the embedded SQLite database in DataDir
	// DatabaseSchema is the PostgreSQL schema holding Lanyard's tables.
	DatabaseSchema string
	DataDir        string
	Addr           string
	AdminAddr      string // the listener for operators only (/metrics); "" when LANYARD_ADMIN_ADDR is "off"
	// AdminAddrDefault: LANYARD_ADMIN_ADDR was not set. A default address
	// already in use (a second process on one host) then turns the admin
	// listener off with a warning instead of stopping start-up.
	AdminAddrDefault bool
	Issuer           string
	Audience         string
	Secret           []byte // nil with the embedded default: generated into DataDir at first start
	// PreviousSecret is the secret being rotated out: still accepted to open
	// sealed keys and refresh tokens until `lanyard keys reseal` has run and
	// refresh tokens have rotated.
	PreviousSecret []byte
	// BetterAuthSecret is the Better-Auth server's secret: with it, a live
	// Better-Auth session imported with --sessions can be exchanged once
	// for a Lanyard session. Nil turns the exchange off.
	BetterAuthSecret []byte
	// AdminToken is LANYARD_ADMIN_TOKEN, the operators' bearer token for the
	// admin API on the admin listener; nil turns the admin API off.
	AdminToken []byte

	AccessTTL          time.Duration
	RefreshIdleTTL     time.Duration
	RefreshAbsoluteTTL time.Duration
	RefreshReuseGrace  time.Duration
	// RefreshGraceBinding is "client" (only the client that rotated a token
	// may present its parent inside the grace window) or "none" (any client).
	RefreshGraceBinding string

	SigningAlg keys.Algorithm
	// Key rotation: a new key is published KeyPublicationLead before it
	// signs, every KeyRotationInterval (0: only on demand); every replica
	// looks for due transitions and key changes every KeyCheckInterval.
	KeyRotationInterval time.Duration
	KeyPublicationLead  time.Duration
	KeyCheckInterval    time.Duration

	PasswordMinLength int // Unicode code points
	PasswordMaxLength int
	Argon2            password.Params
	HashConcurrency   int           // argon2 hashes allowed at once
	HashQueueWait     time.Duration // how long a request waits for a hashing slot before 503
	// RateLimits throttle failed logins and sign-ups (LANYARD_RATE_LIMIT_*).
	RateLimits identity.RateLimits

	CORSOrigins    []string
	TrustedProxies []string // CIDRs or IPs whose ClientIPHeader is believed
	// ClientIPHeader is the header the trusted proxies write the client's
	// address into: X-Forwarded-For or X-Real-IP, never both.
	ClientIPHeader string
	DBMaxConns     int
	// DBTimeout bounds every database operation (and sets Postgres's
	// statement_timeout and lock_timeout, SQLite's busy timeout). It must be
	// shorter than RefreshReuseGrace: a refresh whose answer was lost to the
	// deadline is retried with the same token, and that retry has to land
	// inside the grace window to get the same successor.
	DBTimeout time.Duration

	MigrateOnStart  bool
	ShutdownTimeout time.Duration
	// ShutdownDrain is how long readiness reports 503 before the listener
	// closes. Not zero by default: a load balancer needs a few polls of
	// /readyz to stop sending traffic, or requests land on a closed port.
	ShutdownDrain   time.Duration
	CleanupInterval time.Duration // how often ended sessions are purged; 0 turns the job off
	// AuditRetention is how long audit events are kept (LANYARD_AUDIT_RETENTION);
	// older ones are purged every CleanupInterval.
	AuditRetention time.Duration

	// Mail: the email flows (identity.MailConfig, with the link base
	// LANYARD_APP_URL and paths) and how mail leaves. SMTP is nil without
	// LANYARD_SMTP_URL: then each mail's link is logged instead (development).
	Mail             identity.MailConfig
	SMTP             *mail.Config
	MailFrom         string
	MailTemplatesDir string
	AppName          string
	MailPollInterval time.Duration

	LogLevel  string
	LogFormat string // "json" or "text"
}

// Embedded reports whether Lanyard runs on the embedded SQLite database.
func (c Config) Embedded() bool { return c.DatabaseURL == "" }

// SQLitePath is the embedded database file.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "lanyard.db") }

// Error names the variable whose value was rejected; its message is the single
// line start-up prints.
type Error struct {
	Variable string
	Reason   string
}

func (e *Error) Error() string { return e.Variable + ": " + e.Reason }

// Load reads and validates the configuration. The first bad value stops it.
func Load(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	c := Config{
		DatabaseURL:         r.str("LANYARD_DATABASE_URL", ""),
		DatabaseSchema:      r.str("LANYARD_DATABASE_SCHEMA", store.DefaultSchema),
		DataDir:             r.str("LANYARD_DATA_DIR", "./lanyard-data"),
		Addr:                r.str("LANYARD_ADDR", "127.0.0.1:8080"),
		Issuer:              r.str("LANYARD_ISSUER", "http://localhost:8080"),
		AccessTTL:           r.duration("LANYARD_ACCESS_TTL", 15*time.Minute, time.Minute, 24*time.Hour),
		RefreshIdleTTL:      r.duration("LANYARD_REFRESH_IDLE_TTL", 168*time.Hour, time.Minute, 10*365*24*time.Hour),
		RefreshAbsoluteTTL:  r.duration("LANYARD_REFRESH_ABSOLUTE_TTL", 720*time.Hour, time.Minute, 10*365*24*time.Hour),
		RefreshReuseGrace:   r.duration("LANYARD_REFRESH_REUSE_GRACE", 10*time.Second, 0, 5*time.Minute),
		RefreshGraceBinding: r.oneOf("LANYARD_REFRESH_GRACE_BINDING", "client", "client", "none"),
		KeyRotationInterval: r.duration("LANYARD_KEY_ROTATION_INTERVAL", 720*time.Hour, 0, 10*365*24*time.Hour),
		KeyPublicationLead:  r.duration("LANYARD_KEY_PUBLICATION_LEAD", 15*time.Minute, time.Minute, 7*24*time.Hour),
		KeyCheckInterval:    r.duration("LANYARD_KEY_CHECK_INTERVAL", 30*time.Second, time.Second, 10*time.Minute),
		// The minimum's ceiling is the maximum's floor, so the two never cross.
		PasswordMinLength: r.integer("LANYARD_PASSWORD_MIN_LENGTH", 15, 8, 64),
		PasswordMaxLength: r.integer("LANYARD_PASSWORD_MAX_LENGTH", 1024, 64, 1024),
		// These ranges keep every combination valid for password.NewHasher.
		Argon2: password.Params{
			MemoryKiB: uint32(r.integer("LANYARD_ARGON2_MEMORY_KIB", int(password.DefaultParams().MemoryKiB), 8*1024, 1024*1024)),
			Time:      uint32(r.integer("LANYARD_ARGON2_TIME", int(password.DefaultParams().Time), 1, 16)),
			Threads:   uint8(r.integer("LANYARD_ARGON2_THREADS", int(password.DefaultParams().Threads), 1, 16)),
		},
		HashConcurrency: r.integer("LANYARD_HASH_CONCURRENCY", runtime.NumCPU(), 1, 1024),
		HashQueueWait:   r.duration("LANYARD_HASH_QUEUE_WAIT", 2*time.Second, 0, time.Minute),
		DBMaxConns:      r.integer("LANYARD_DB_MAX_CONNS", 20, 2, 1000),
		DBTimeout:       r.duration("LANYARD_DB_TIMEOUT", 3*time.Second, 100*time.Millisecond, time.Minute),
		MigrateOnStart:  r.boolean("LANYARD_MIGRATE", true),
		ShutdownTimeout: r.duration("LANYARD_SHUTDOWN_TIMEOUT", 20*time.Second, time.Second, 10*time.Minute),
		ShutdownDrain:   r.duration("LANYARD_SHUTDOWN_DRAIN", 5*time.Second, 0, 5*time.Minute),
		CleanupInterval: r.duration("LANYARD_CLEANUP_INTERVAL", 10*time.Minute, 0, 24*time.Hour),
		AuditRetention:  r.duration("LANYARD_AUDIT_RETENTION", identity.DefaultAuditRetention, identity.MinAuditRetention, identity.MaxAuditRetention),
		LogLevel:        r.oneOf("LANYARD_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:       r.oneOf("LANYARD_LOG_FORMAT", "json", "json", "text"),
	}
	c.Audience = r.str("LANYARD_AUDIENCE", c.Issuer)
	c.RateLimits = r.rateLimits()
	c.ClientIPHeader = r.oneOf("LANYARD_CLIENT_IP_HEADER", "X-Forwarded-For", "X-Forwarded-For", "X-Real-IP")
	c.AdminAddrDefault = getenv("LANYARD_ADMIN_ADDR") == ""
	if c.AdminAddr = r.str("LANYARD_ADMIN_ADDR", "127.0.0.1:9090"); c.AdminAddr == adminOff {
		c.AdminAddr = ""
	}
	if alg := r.str("LANYARD_SIGNING_ALG", string(keys.ES256)); r.err == nil {
		parsed, err := keys.ParseAlgorithm(alg)
		if err != nil {
			r.fail("LANYARD_SIGNING_ALG", "must be ES256, EdDSA or RS256")
		}
		c.SigningAlg = parsed
	}
	if origins := r.str("LANYARD_CORS_ORIGINS", ""); origins != "" && r.err == nil {
		c.CORSOrigins = r.origins("LANYARD_CORS_ORIGINS", origins)
	}
	if proxies := r.str("LANYARD_TRUSTED_PROXIES", ""); proxies != "" {
		for _, p := range strings.Split(proxies, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.TrustedProxies = append(c.TrustedProxies, p)
			}
		}
	}
	r.mail(&c)
	if secret := getenv("LANYARD_SECRET"); secret != "" {
		c.Secret = []byte(secret)
	}
	if baSecret := getenv("LANYARD_BETTER_AUTH_SECRET"); baSecret != "" {
		c.BetterAuthSecret = []byte(baSecret)
	}
	if token := getenv("LANYARD_ADMIN_TOKEN"); token != "" {
		c.AdminToken = []byte(token)
	}
	if previous := getenv("LANYARD_SECRET_PREVIOUS"); previous != "" {
		c.PreviousSecret = []byte(previous)
	}
	if r.err != nil {
		return Config{}, r.err
	}
	return c, c.validate()
}

// validate checks the rules that join several settings.
func (c Config) validate() error {
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return &Error{"LANYARD_DATABASE_URL", "must be a postgres:// URL (leave it unset for the embedded database)"}
		}
		if len(c.Secret) == 0 {
			return &Error{"LANYARD_SECRET", fmt.Sprintf("is required with LANYARD_DATABASE_URL: set at least %d random bytes, e.g. `openssl rand -base64 48`", MinSecretBytes)}
		}
	}
	if err := store.ValidSchema(c.DatabaseSchema); err != nil {
		return &Error{"LANYARD_DATABASE_SCHEMA", err.Error()}
	}
	if c.Secret != nil && len(c.Secret) < MinSecretBytes {
		return &Error{"LANYARD_SECRET", fmt.Sprintf("must be at least %d bytes (got %d)", MinSecretBytes, len(c.Secret))}
	}
	if c.AdminToken != nil && strings.TrimSpace(string(c.AdminToken)) != string(c.AdminToken) {
		// A secret made with `echo` ends in a newline no client sends.
		return &Error{"LANYARD_ADMIN_TOKEN", "must not start or end with whitespace (a secret made with `echo` ends in a newline: use `echo -n` or `printf`)"}
	}
	if c.AdminToken != nil && len(c.AdminToken) < MinAdminTokenBytes {
		return &Error{"LANYARD_ADMIN_TOKEN", fmt.Sprintf("must be at least %d bytes (got %d), e.g. `openssl rand -base64 33`", MinAdminTokenBytes, len(c.AdminToken))}
	}
	if c.PreviousSecret != nil && len(c.PreviousSecret) < MinSecretBytes {
		return &Error{"LANYARD_SECRET_PREVIOUS", fmt.Sprintf("must be at least %d bytes (got %d)", MinSecretBytes, len(c.PreviousSecret))}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return &Error{"LANYARD_ADDR", "must be host:port, e.g. 127.0.0.1:8080"}
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			return &Error{"LANYARD_ADMIN_ADDR", "must be host:port, e.g. 127.0.0.1:9090, or " + adminOff}
		}
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.Issuer, "/") {
		return &Error{"LANYARD_ISSUER", "must be an absolute http(s) URL without query, fragment or trailing slash"}
	}
	if strings.TrimSpace(c.Audience) == "" {
		return &Error{"LANYARD_AUDIENCE", "must not be blank"}
	}
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return &Error{"LANYARD_TRUSTED_PROXIES", "must be a comma-separated list of IP addresses or CIDR ranges"}
			}
		}
	}
	if c.KeyRotationInterval != 0 && c.KeyRotationInterval <= c.KeyPublicationLead {
		return &Error{"LANYARD_KEY_ROTATION_INTERVAL", "must be longer than LANYARD_KEY_PUBLICATION_LEAD (or 0 to rotate only on demand)"}
	}
	if c.RefreshAbsoluteTTL < c.RefreshIdleTTL {
		return &Error{"LANYARD_REFRESH_ABSOLUTE_TTL", "must be at least LANYARD_REFRESH_IDLE_TTL"}
	}
	if c.RefreshReuseGrace > 0 && c.DBTimeout >= c.RefreshReuseGrace {
		return &Error{"LANYARD_DB_TIMEOUT", fmt.Sprintf("must be shorter than the grace window LANYARD_REFRESH_REUSE_GRACE (%s): a refresh whose answer was lost to the deadline is retried within it", c.RefreshReuseGrace)}
	}
	return nil
}

// mail reads the email settings. The application URL defaults to the first
// CORS origin (the web app), else http://localhost:3000.
func (r *reader) mail(c *Config) {
	c.Mail = identity.MailConfig{
		Verification:     r.oneOf("LANYARD_EMAIL_VERIFICATION", identity.VerificationOptional, identity.VerificationOptional, identity.VerificationRequired),
		VerifyPath:       r.path("LANYARD_APP_VERIFY_EMAIL_PATH", "/verify-email"),
		ResetPath:        r.path("LANYARD_APP_RESET_PASSWORD_PATH", "/reset-password"),
		ConfirmEmailPath: r.path("LANYARD_APP_CONFIRM_EMAIL_PATH", "/confirm-email"),
		VerifyTTL:        r.duration("LANYARD_VERIFY_EMAIL_TTL", 24*time.Hour, 5*time.Minute, 30*24*time.Hour),
		ResetTTL:         r.duration("LANYARD_RESET_PASSWORD_TTL", 30*time.Minute, time.Minute, 24*time.Hour),
		ChangeEmailTTL:   r.duration("LANYARD_CHANGE_EMAIL_TTL", time.Hour, time.Minute, 7*24*time.Hour),
		RetryBase:        r.duration("LANYARD_MAIL_RETRY_BASE", 10*time.Second, 100*time.Millisecond, time.Hour),
	}
	appURL := "http://localhost:3000"
	if len(c.CORSOrigins) > 0 {
		appURL = c.CORSOrigins[0]
	}
	appURL = r.str("LANYARD_APP_URL", appURL)
	if u, err := url.Parse(appURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		r.fail("LANYARD_APP_URL", "must be an absolute http(s) URL without query or fragment: the web app that receives the mailed links")
	} else {
		c.Mail.AppURL = u
	}
	if raw := r.str("LANYARD_SMTP_URL", ""); raw != "" {
		smtp, err := mail.ParseSMTPURL(raw)
		if err != nil {
			r.fail("LANYARD_SMTP_URL", err.Error())
		}
		c.SMTP = &smtp
	}
	c.MailFrom = r.str("LANYARD_MAIL_FROM", "")
	if c.SMTP != nil && c.MailFrom == "" {
		r.fail("LANYARD_MAIL_FROM", "is required with LANYARD_SMTP_URL: the sender address, e.g. \"Example <no-reply@example.com>\"")
	}
	c.MailTemplatesDir = r.str("LANYARD_MAIL_TEMPLATES_DIR", "")
	c.AppName = r.str("LANYARD_APP_NAME", "Lanyard")
	c.MailPollInterval = r.duration("LANYARD_MAIL_POLL_INTERVAL", 5*time.Second, 100*time.Millisecond, time.Hour)
}

// path reads a URL path that must start with a slash.
func (r *reader) path(name, def string) string {
	p := r.str(name, def)
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#") {
		r.fail(name, "must be a path starting with / (no query or fragment)")
		return def
	}
	return p
}

// reader parses variables and keeps the first failure, so Load reads straight
// through and reports one clear line.
type reader struct {
	getenv func(string) string
	err    error
}

func (r *reader) fail(name, reason string) {
	if r.err == nil {
		r.err = &Error{name, reason}
	}
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, fmt.Sprintf("must be a Go duration such as %s", def))
		return def
	}
	if d < lo || d > hi {
		r.fail(name, fmt.Sprintf("must be between %s and %s", lo, hi))
		return def
	}
	return d
}

func (r *reader) integer(name string, def, lo, hi int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

// rateLimits reads each rule as LANYARD_RATE_LIMIT_<RULE> (attempts, 0 turns
// the rule off) and LANYARD_RATE_LIMIT_<RULE>_WINDOW.
func (r *reader) rateLimits() identity.RateLimits {
	def := identity.DefaultRateLimits()
	rule := func(name string, d identity.RateLimit) identity.RateLimit {
		return identity.RateLimit{
			Max:    r.integer("LANYARD_RATE_LIMIT_"+name, d.Max, 0, 1_000_000),
			Window: r.duration("LANYARD_RATE_LIMIT_"+name+"_WINDOW", d.Window, time.Second, 7*24*time.Hour),
		}
	}
	return identity.RateLimits{
		LoginAccountIP: rule("LOGIN_ACCOUNT_IP", def.LoginAccountIP),
		LoginIP:        rule("LOGIN_IP", def.LoginIP),
		LoginAccount:   rule("LOGIN_ACCOUNT", def.LoginAccount),
		SignUpIP:       rule("SIGNUP_IP", def.SignUpIP),
		ForgotEmail:    rule("FORGOT_EMAIL", def.ForgotEmail),
		ForgotIP:       rule("FORGOT_IP", def.ForgotIP),
		MailResend:     rule("MAIL_RESEND", def.MailResend),
		MaxDelay:       r.duration("LANYARD_RATE_LIMIT_MAX_DELAY", def.MaxDelay, time.Second, 30*24*time.Hour),
	}
}

func (r *reader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "must be true or false")
		return def
	}
	return b
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := r.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "must be one of "+strings.Join(allowed, ", "))
	return def
}

// origins parses a comma-separated list of exact browser origins
// (scheme://host[:port]); anything else would never match an Origin header.
func (r *reader) origins(name, list string) []string {
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			r.fail(name, "each origin must look like https://app.example.com (scheme, host, optional port; no path)")
			return nil
		}
		out = append(out, canonicalOrigin(u))
	}
	return out
}

// canonicalOrigin spells an origin as browsers send it in the Origin
// header (RFC 6454 §6.1): lower-case scheme and host, no default port.
// Requests are matched against it exactly, so "https://App.example.com:443"
// in the settings must still match what a browser sends.
func canonicalOrigin(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

package testdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgbouncerBin is Debian's PgBouncer (apt-get install pgbouncer). Debian 12
// ships 1.18, which has no prepared-statement support in transaction mode:
// the pooler Lanyard must cope with at its most limited.
const pgbouncerBin = "/usr/sbin/pgbouncer"

// pgbouncerTimeout bounds its start (readiness) and its stop.
const pgbouncerTimeout = 15 * time.Second

// PgBouncerOptions adjusts the pooler StartPgBouncerWith starts.
type PgBouncerOptions struct {
	// PoolSize is default_pool_size, the server connections per database and
	// user; 0 means 20. 1 makes transaction pooling observable: every client
	// shares the one server connection between its transactions.
	PoolSize int
	// IgnoreStartupParameters are startup parameters PgBouncer accepts and
	// drops, besides extra_float_digits: a pooler configured to ignore
	// Lanyard's statement_timeout and lock_timeout instead of refusing them.
	IgnoreStartupParameters []string
}

// StartPgBouncer starts a PgBouncer in transaction mode in front of the
// server of upstreamURL, as Neon's pooled endpoint is, and returns
// upstreamURL's database through it: same user, password, database and
// query parameters, host and port replaced. See StartPgBouncerWith.
func StartPgBouncer(t testing.TB, upstreamURL string) string {
	t.Helper()
	return StartPgBouncerWith(t, upstreamURL, PgBouncerOptions{})
}

// StartPgBouncerWith starts Debian's pgbouncer as a child process on a free
// 127.0.0.1 port (no unix socket), its files (ini, auth file, log) in a
// private temporary directory: pool_mode = transaction, trust
// authentication of clients, every database of the upstream server
// reachable under its own name, and no startup parameter ignored but
// extra_float_digits (and opts.IgnoreStartupParameters), so a client's
// statement_timeout is refused as a pooler refuses it ("unsupported startup
// parameter"). A password in
// upstreamURL is what PgBouncer logs in to the server with.
//
// It returns once a real connection through the pooler to upstreamURL's
// database succeeds; at cleanup the process is stopped and, when the test
// failed, its log is written to the test log. It fails, never skips, when
// pgbouncer is not installed. Call it from the test goroutine.
func StartPgBouncerWith(t testing.TB, upstreamURL string, opts PgBouncerOptions) string {
	t.Helper()
	if _, err := os.Stat(pgbouncerBin); err != nil {
		t.Fatalf("the pooler tests need Debian's PgBouncer at %s (apt-get install pgbouncer; .ci/run does): %v", pgbouncerBin, err)
	}
	up, err := url.Parse(upstreamURL)
	if err != nil || (up.Scheme != "postgres" && up.Scheme != "postgresql") {
		t.Fatalf("StartPgBouncer needs a postgres:// URL, got %q (%v)", upstreamURL, err)
	}
	host, port := up.Hostname(), up.Port()
	if host == "" {
		t.Fatalf("StartPgBouncer: %q names no host", upstreamURL)
	}
	if port == "" {
		port = "5432"
	}
	username := up.User.Username()
	if username == "" {
		username = "postgres"
	}
	password, hasPassword := up.User.Password()
	poolSize := opts.PoolSize
	if poolSize == 0 {
		poolSize = 20
	}

	// Not t.TempDir(): as for StartCluster, its parents are private to
	// root, and pgbouncer runs as postgres then.
	dir, err := os.MkdirTemp("", "pgb")
	if err != nil {
		t.Fatal(err)
	}
	b := &bouncer{t: t, dir: dir}
	t.Cleanup(b.cleanup)
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// pgbouncer refuses root: "PgBouncer should not run as root".
		uid, gid, err := osUser("postgres")
		if err != nil {
			t.Fatalf("pgbouncer refuses to run as root and runs as the postgres OS user here: %v", err)
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	// private writes a file of the pooler's, readable by its user only.
	private := func(path, data string) {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The databases line: "*" is the fallback for any name, so every
	// database of the upstream server is reachable as itself. With a
	// password, the user is forced to the same one so the password applies.
	server := fmt.Sprintf("host=%s port=%s", pgbouncerValue(host), pgbouncerValue(port))
	if hasPassword {
		server += fmt.Sprintf(" user=%s password=%s", pgbouncerValue(username), pgbouncerValue(password))
	}
	// auth_type = trust checks no client password, but the user must be
	// listed; the password there is also what PgBouncer answers the
	// server's md5 or SCRAM challenge with.
	authFile := filepath.Join(dir, "users.txt")
	private(authFile, fmt.Sprintf("%s %s\n", authFileValue(username), authFileValue(password)))

	// The port is free when picked but not reserved: a bind failure picks
	// again, as StartCluster does.
	for attempt := 1; ; attempt++ {
		if b.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		ini := fmt.Sprintf(`[databases]
* = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 500
server_reset_query = DISCARD ALL
ignore_startup_parameters = %s
logfile = %s
`, server, b.port, authFile, poolSize, strings.Join(append([]string{"extra_float_digits"}, opts.IgnoreStartupParameters...), ","), b.logFile())
		iniFile := filepath.Join(dir, "pgbouncer.ini")
		private(iniFile, ini)
		b.start(iniFile, cred)

		through := *up
		through.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
		err := b.waitReady(through.String())
		if err == nil {
			return through.String()
		}
		b.stop()
		if attempt == 3 || !strings.Contains(b.log(), "Address already in use") {
			t.Fatalf("pgbouncer did not come up: %v\npgbouncer log:\n%s", err, b.log())
		}
	}
}

// bouncer is one running pgbouncer process.
type bouncer struct {
	t      testing.TB
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returns
	stderr *os.File
}

func (b *bouncer) logFile() string    { return filepath.Join(b.dir, "pgbouncer.log") }
func (b *bouncer) stderrFile() string { return filepath.Join(b.dir, "stderr.log") }

func (b *bouncer) start(iniFile string, cred *syscall.Credential) {
	b.t.Helper()
	stderr, err := os.OpenFile(b.stderrFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.t.Fatal(err)
	}
	// In the foreground (no -d), so the child is pgbouncer itself and
	// stopping it needs no pid file.
	cmd := exec.Command(pgbouncerBin, iniFile)
	cmd.Dir = b.dir
	cmd.Stdout, cmd.Stderr = stderr, stderr // files: no copying goroutine
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		b.t.Fatalf("start pgbouncer: %v", err)
	}
	b.cmd, b.stderr, b.exited = cmd, stderr, make(chan struct{})
	go func(exited chan<- struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(b.exited)
}

// waitReady polls, on a ticker, until a connection through the pooler
// runs a query on the upstream database, pgbouncer exits or the deadline
// passes.
func (b *bouncer) waitReady(through string) error {
	deadline := time.Now().Add(pgbouncerTimeout)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-b.exited:
			return fmt.Errorf("pgbouncer exited: %v", b.cmd.ProcessState)
		default:
		}
		err := pingThrough(through)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no connection through it within %v: %w", pgbouncerTimeout, err)
		}
		select {
		case <-poll.C:
		case <-b.exited:
		}
	}
}

// pingThrough connects and runs one query with the simple protocol, which
// every pooler passes whatever its prepared-statement support.
func pingThrough(through string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, through)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.PgConn().Exec(ctx, "SELECT 1").ReadAll()
	return err
}

// stop ends the process: SIGTERM (immediate shutdown), then SIGKILL if it
// lingers.
func (b *bouncer) stop() {
	if b.cmd == nil {
		return
	}
	select {
	case <-b.exited:
	default:
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(pgbouncerTimeout)
		select {
		case <-b.exited:
		case <-timer.C:
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
		timer.Stop()
	}
	b.stderr.Close()
	b.cmd = nil
}

func (b *bouncer) cleanup() {
	b.stop()
	if b.t.Failed() {
		b.t.Logf("pgbouncer log (%s):\n%s", b.dir, b.log())
	}
	if err := os.RemoveAll(b.dir); err != nil {
		b.t.Errorf("remove pgbouncer directory: %v", err)
	}
}

// log returns the end of pgbouncer's log file or, when it is empty, of
// what it wrote to stderr (a configuration error comes before the log file
// is open; after that, stderr repeats the log).
func (b *bouncer) log() string {
	for _, f := range []string{b.logFile(), b.stderrFile()} {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) || len(data) == 0 {
			continue
		}
		if len(data) > 8192 {
			data = data[len(data)-8192:]
		}
		return string(data)
	}
	return ""
}

// pgbouncerValue quotes a value of a [databases] connection string: in
// single quotes, a quote doubled.
func pgbouncerValue(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// authFileValue quotes a field of an auth_file: in double quotes, a double
// quote doubled.
func authFileValue(v string) string {
	return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
}

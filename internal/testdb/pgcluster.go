package testdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cluster is a throwaway PostgreSQL server that one test owns, so it can be
// stopped, killed or frozen without touching the shared server every other
// test uses. It lives in its own temporary directory (data, socket, log) on
// a free loopback port and is torn down at cleanup.
//
// The methods fail the test on error, so call them from the test goroutine.
type Cluster struct {
	t       testing.TB
	bin     string // directory holding initdb, pg_ctl and postgres
	dir     string // temporary root: data/, the unix socket, postgres.log
	port    int
	runAs   string // OS user the server runs as ("" = the current one)
	state   clusterState
	stopped []int // pids Freeze stopped, for Thaw
}

type clusterState int

const (
	clusterRunning clusterState = iota
	clusterFrozen
	clusterDown
)

// clusterTimeout bounds every pg_ctl and initdb call: a wedged server fails
// the test instead of hanging it.
const clusterTimeout = 60 * time.Second

// StartCluster creates and starts a new cluster with trust authentication
// (user postgres), listening on 127.0.0.1 only. fsync and full_page_writes
// are off: they only protect against the machine crashing, and the cluster
// dies with the test. synchronous_commit stays on: a killed server loses
// what it had not yet written out of its own memory, so without it Kill
// would lose acknowledged commits, which no real crash of the server alone
// does. It fails, never skips, when the PostgreSQL server binaries are
// missing.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Fatalf("a throwaway PostgreSQL cluster needs the server binaries (apt-get install postgresql; .ci/run does): %v", err)
	}
	// Not t.TempDir(): its parents are private to root, which the postgres
	// user cannot traverse, and its long names overflow the 107-byte limit
	// on a unix socket path.
	dir, err := os.MkdirTemp("", "pgc")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, bin: bin, dir: dir}
	t.Cleanup(c.cleanup)
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		c.runAs = "postgres"
		if err := chownToUser(dir, c.runAs); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.command("initdb", "-D", c.dataDir(), "-A", "trust", "-U", "postgres",
		"--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// The port is free when picked but not reserved: another process may
	// take it before the server binds, so a bind failure picks again.
	for attempt := 1; ; attempt++ {
		if c.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		if err := c.writeConfig(); err != nil {
			t.Fatal(err)
		}
		out, err := c.pgCtl("start")
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(c.log(), "Address already in use") {
			t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, c.log())
		}
	}
	return c
}

// URL is the connection URL of the cluster's postgres database.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Stop shuts the server down as an operator would (pg_ctl stop -m fast):
// sessions are terminated, open transactions roll back.
func (c *Cluster) Stop() {
	c.t.Helper()
	c.requireState(clusterRunning, "Stop")
	if out, err := c.pgCtl("stop", "-m", "fast"); err != nil {
		c.t.Fatalf("pg_ctl stop: %v\n%s\nserver log:\n%s", err, out, c.log())
	}
	c.state = clusterDown
}

// Kill crashes the server: SIGKILL to the postmaster and every backend, as
// the OOM killer or a crashed container would. It returns once none of
// them runs.
func (c *Cluster) Kill() {
	c.t.Helper()
	if c.state == clusterDown {
		c.t.Fatal("Kill: the cluster is not running")
	}
	pm := c.postmaster()
	// Stopped first, the postmaster can neither fork a new backend nor
	// reap (and replace) a killed one while the tree is being collected.
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		c.t.Fatalf("SIGSTOP postmaster %d: %v", pm, err)
	}
	c.waitState(pm, stoppedState)
	// Backends before the postmaster: none of them may see it exit and say
	// goodbye to its client first.
	pids := append(descendants(pm), pm)
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			c.t.Fatalf("SIGKILL %d: %v", pid, err)
		}
	}
	for _, pid := range pids {
		c.waitState(pid, deadState)
	}
	// Nothing may reap the orphaned postmaster (a container's init often
	// does not), and a zombie still "exists" for postgres's stale-lock check.
	// Every process of the cluster is dead, so its lock files (the data
	// directory's and the socket's) are stale; with the first goes the
	// record of the System V segment the next start would have cleaned up,
	// so that is removed here.
	lock := filepath.Join(c.dataDir(), "postmaster.pid")
	shmid := c.lockFileLine(lock, 7)
	for _, f := range []string{lock, filepath.Join(c.dir, fmt.Sprintf(".s.PGSQL.%d.lock", c.port))} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.t.Fatal(err)
		}
	}
	if f := strings.Fields(shmid); len(f) == 2 {
		if out, err := exec.Command("ipcrm", "-m", f[1]).CombinedOutput(); err != nil {
			c.t.Fatalf("ipcrm -m %s: %v: %s", f[1], err, out)
		}
	}
	c.state = clusterDown
	c.stopped = nil
}

// Freeze stops every process of the cluster with SIGSTOP: connections stay
// open, new ones complete the TCP handshake, and nothing ever answers, as
// with a hung host or a stalled disk. It returns once all are stopped.
func (c *Cluster) Freeze() {
	c.t.Helper()
	c.requireState(clusterRunning, "Freeze")
	pm := c.postmaster()
	// The postmaster first, so no backend is forked after the scan below.
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		c.t.Fatalf("SIGSTOP postmaster %d: %v", pm, err)
	}
	c.waitState(pm, stoppedState)
	c.stopped = []int{pm}
	for _, pid := range descendants(pm) {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				continue // exited meanwhile
			}
			c.t.Fatalf("SIGSTOP %d: %v", pid, err)
		}
		c.stopped = append(c.stopped, pid)
	}
	for _, pid := range c.stopped {
		c.waitState(pid, stoppedState)
	}
	c.state = clusterFrozen
}

// Thaw resumes every process Freeze stopped.
func (c *Cluster) Thaw() {
	c.t.Helper()
	c.requireState(clusterFrozen, "Thaw")
	c.thaw()
}

func (c *Cluster) thaw() {
	c.t.Helper()
	// Backends first: the postmaster resumes into a tree that runs again.
	for i := len(c.stopped) - 1; i >= 0; i-- {
		if err := syscall.Kill(c.stopped[i], syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			c.t.Fatalf("SIGCONT %d: %v", c.stopped[i], err)
		}
	}
	c.stopped = nil
	c.state = clusterRunning
}

// Start starts a stopped or killed cluster again, on the same port and data
// directory; after a kill the server runs crash recovery first. It returns
// once the server accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	c.requireState(clusterDown, "Start")
	if out, err := c.pgCtl("start"); err != nil {
		c.t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, c.log())
	}
	c.state = clusterRunning
}

// cleanup stops the server however the test left it and removes its files.
func (c *Cluster) cleanup() {
	switch c.state {
	case clusterFrozen:
		c.thaw()
		fallthrough
	case clusterRunning:
		// immediate: nothing of this cluster needs to survive.
		if out, err := c.pgCtl("stop", "-m", "immediate"); err != nil {
			c.t.Errorf("pg_ctl stop: %v\n%s", err, out)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		c.t.Errorf("remove cluster directory: %v", err)
	}
}

func (c *Cluster) requireState(want clusterState, op string) {
	c.t.Helper()
	if c.state != want {
		names := map[clusterState]string{clusterRunning: "running", clusterFrozen: "frozen", clusterDown: "down"}
		c.t.Fatalf("%s: the cluster is %s", op, names[c.state])
	}
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// log returns the end of the server log, for failure messages.
func (c *Cluster) log() string {
	b, _ := os.ReadFile(c.logFile())
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

func (c *Cluster) writeConfig() error {
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = off
full_page_writes = off
autovacuum = off
shared_buffers = 16MB
`, c.port, c.dir)
	// postgresql.auto.conf is read last and is meant to be rewritten whole.
	path := filepath.Join(c.dataDir(), "postgresql.auto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return err
	}
	if c.runAs != "" {
		return chownToUser(path, c.runAs)
	}
	return nil
}

func (c *Cluster) pgCtl(args ...string) ([]byte, error) {
	return c.command("pg_ctl", append([]string{"-D", c.dataDir(), "-l", c.logFile(), "-w", "-t", "60"}, args...)...)
}

// command runs a PostgreSQL program, as the postgres user when we are root.
func (c *Cluster) command(program string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	path := filepath.Join(c.bin, program)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// pg_ctl leaves the server running with our pipes unless it detaches
	// them; WaitDelay keeps a leaked pipe from blocking Wait forever.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// postmaster reads the server's pid from its lock file.
func (c *Cluster) postmaster() int {
	c.t.Helper()
	line := c.lockFileLine(filepath.Join(c.dataDir(), "postmaster.pid"), 1)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		c.t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

// lockFileLine returns line n (from 1) of postmaster.pid: 1 is the pid, 7
// the System V shared memory key and id.
func (c *Cluster) lockFileLine(path string, n int) string {
	c.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatalf("postmaster.pid: %v", err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < n {
		c.t.Fatalf("postmaster.pid has %d lines, want at least %d", len(lines), n)
	}
	return lines[n-1]
}

type wantState int

const (
	stoppedState wantState = iota
	deadState
)

// waitState polls /proc until pid is stopped (SIGSTOP delivered) or dead
// (gone or a zombie). Signals are asynchronous: kill(2) returning says
// nothing about the target having stopped yet.
func (c *Cluster) waitState(pid int, want wantState) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	// The kernel offers no notification of another process's state
	// change, so this polls, on a ticker.
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for {
		state, err := procState(pid)
		switch {
		case err != nil || state == 'Z' || state == 'X':
			if want == deadState {
				return
			}
			if want == stoppedState && err != nil {
				return // exited: nothing left to stop
			}
		case want == stoppedState && state == 'T':
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("process %d did not reach the wanted state within 10s (state %c, %v)", pid, state, err)
		}
		<-poll.C
	}
}

// procStat is the part of /proc/<pid>/stat after the command name, which
// may itself contain spaces and parentheses.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return f, nil // f[0] state, f[1] ppid
}

func procState(pid int) (byte, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return f[0][0], nil
}

// descendants lists every live process below root, found through the ppid
// field of /proc/*/stat, in no particular order.
func descendants(root int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil || f[0] == "Z" || f[0] == "X" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		kids := children[queue[0]]
		queue = append(queue[1:], kids...)
		out = append(out, kids...)
	}
	sort.Ints(out)
	return out
}

// postgresBin finds the newest installed PostgreSQL server binaries.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		ok := true
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", errors.New("no initdb, pg_ctl and postgres under /usr/lib/postgresql/*/bin")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func chownToUser(path, name string) error {
	uid, gid, err := osUser(name)
	if err != nil {
		return fmt.Errorf("the %s OS user runs the throwaway cluster: %w", name, err)
	}
	return os.Chown(path, uid, gid)
}

// osUser returns the uid and gid of the OS user name.
func osUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

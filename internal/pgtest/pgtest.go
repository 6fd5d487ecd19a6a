// Package pgtest provides throwaway PostgreSQL servers and databases for
// tests.
//
// A test package that needs PostgreSQL declares
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and each test calls
//
//	dsn := pgtest.Shared(t).NewDatabase(t)
//
// to get a fresh, empty database (dropped again when the test ends) on a
// cluster shared by the whole test binary. The cluster is started lazily on
// the first Shared call, so packages whose selected tests do not need
// PostgreSQL pay nothing.
//
// # Where the server comes from
//
// If CUSTOS_TEST_PG is set to a postgres:// URL of a superuser connection,
// that server is used as is (and never stopped). Otherwise Start creates a
// private cluster with initdb and runs it with pg_ctl on a free loopback TCP
// port. The binaries are looked up in PATH, then in
// /usr/lib/postgresql/*/bin (newest version first); run
// scripts/ensure-postgres.sh to install them. PostgreSQL refuses to run as
// root, so when the tests run as root, initdb, pg_ctl and the server run as
// the OS user "postgres", which must exist. The cluster trusts every
// connection, but listens on 127.0.0.1 and in a Unix socket directory
// readable only by its owner. Durability is turned off (fsync,
// full_page_writes, synchronous_commit) for speed.
//
// # Leftovers
//
// Every cluster lives in its own directory os.TempDir()/custos-pgtest-*
// (usually /tmp/custos-pgtest-NNNN): the data directory "data", the server
// log "postgres.log" and the server's Unix socket. Stop stops the server and
// removes the directory. If the test process dies without calling Stop
// (crash, panic, test timeout, Ctrl-C, SIGKILL), a small watchdog process
// started with the cluster (a shell blocked reading a pipe from the test
// process) notices the pipe closing, stops the server with
// "pg_ctl stop -m immediate" and removes the directory. As a last resort,
// every Start also removes directories of dead test processes (a test
// process holds a flock on custos-pgtest-*/owner.lock while it lives), so
// nothing survives the next test run. To clean up by hand:
//
//	for d in /tmp/custos-pgtest-*; do
//		runuser -u postgres -- pg_ctl stop -D "$d/data" -m immediate; rm -rf "$d"
//	done
//
// The package is for Unix-like systems (Linux in practice).
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable holding the URL of an external
// server to use instead of starting one.
const EnvVar = "CUSTOS_TEST_PG"

const (
	dirPrefix    = "custos-pgtest-"
	lockName     = "owner.lock"
	readyTimeout = 60 * time.Second
	superuser    = "postgres"
	installHint  = "run scripts/ensure-postgres.sh"
)

// Server is a throwaway PostgreSQL cluster (or an external one).
type Server struct {
	dsn      string
	external bool

	// Only for clusters started by Start.
	dir      string // os.TempDir()/custos-pgtest-*
	dataDir  string // dir/data
	logFile  string // dir/postgres.log
	pgCtl    string
	cred     *syscall.Credential // non-nil when running as root
	lock     *os.File            // flock held while the test process lives
	watchdog *exec.Cmd
	wdPipe   *os.File // write end of the watchdog's stdin

	stopOnce sync.Once
	stopErr  error
}

// Start returns a server to create test databases on.
//
// If the environment variable CUSTOS_TEST_PG is set (a postgres:// URL to a
// superuser connection), it is used as is and Stop does nothing. Otherwise
// Start finds initdb and pg_ctl, creates a cluster in a new directory
// os.TempDir()/custos-pgtest-* (as the OS user postgres when running as
// root), starts it on a free 127.0.0.1 port and waits until it accepts
// connections (at most 60s). The caller must call Stop.
func Start() (*Server, error) {
	if dsn := os.Getenv(EnvVar); dsn != "" {
		return startExternal(dsn)
	}
	return startLocal()
}

func startExternal(dsn string) (*Server, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("pgtest: %s must be a postgres://user@host:port/db URL of a superuser connection, got %q", EnvVar, dsn)
	}
	s := &Server{dsn: dsn, external: true}
	if err := waitReady(dsn, time.Now().Add(readyTimeout)); err != nil {
		return nil, fmt.Errorf("pgtest: server from %s (%s) not reachable within %v: %w", EnvVar, redact(u), readyTimeout, err)
	}
	return s, nil
}

func startLocal() (_ *Server, err error) {
	initdb, pgCtl, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	reapStale(pgCtl, cred)

	dir, err := os.MkdirTemp("", dirPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("pgtest: creating cluster directory: %w", err)
	}
	s := &Server{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		logFile: filepath.Join(dir, "postgres.log"),
		pgCtl:   pgCtl,
		cred:    cred,
	}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	if err := s.lockDir(); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: chown %s to the postgres user: %w", dir, err)
		}
	}
	if err := s.startWatchdog(); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := s.run(ctx, initdb, "-D", s.dataDir, "-U", superuser, "-A", "trust",
		"--no-sync", "-E", "UTF8", "--locale=C")
	if err != nil {
		hint := ""
		if cred != nil {
			hint = fmt.Sprintf(" (initdb runs as OS user %q, which needs access to %s)", superuser, dir)
		}
		return nil, fmt.Errorf("pgtest: %s failed%s: %w\n%s", initdb, hint, err, out)
	}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}

	// The free port may be taken by someone else (say, another test binary
	// starting a cluster) before the server binds it: retry with a new one.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		retry, err := s.startServer(ctx, port)
		if err == nil {
			s.dsn = fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", superuser, port)
			break
		}
		if !retry || attempt == 5 {
			return nil, err
		}
	}
	if err := waitReady(s.dsn, time.Now().Add(readyTimeout)); err != nil {
		return nil, fmt.Errorf("pgtest: server in %s not accepting connections within %v: %w\nserver log:\n%s",
			s.dir, readyTimeout, err, s.logTail(0))
	}
	return s, nil
}

// lockDir takes the flock that tells reapStale this directory is in use.
func (s *Server) lockDir() error {
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	// Blocking: a concurrent reapStale may hold it for a moment, but it
	// leaves fresh directories alone.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return fmt.Errorf("pgtest: locking %s: %w", f.Name(), err)
	}
	s.lock = f
	return nil
}

func (s *Server) writeConfig() error {
	conf := fmt.Sprintf(`
# Added by github.com/custos/custos/internal/pgtest.
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 200
`, strings.ReplaceAll(s.dir, "'", "''"))
	// Appending keeps the file's owner (the postgres user) and mode.
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return fmt.Errorf("pgtest: writing postgresql.conf: %w", err)
	}
	return f.Close()
}

// startServer runs pg_ctl start on port. retry reports whether the failure
// was the port being in use.
func (s *Server) startServer(ctx context.Context, port int) (retry bool, err error) {
	var logStart int64
	if fi, err := os.Stat(s.logFile); err == nil {
		logStart = fi.Size()
	}
	out, err := s.run(ctx, s.pgCtl, "start", "-D", s.dataDir, "-l", s.logFile, "-w", "-t", "60",
		"-o", "-p "+strconv.Itoa(port))
	if err == nil {
		return false, nil
	}
	log := s.logTail(logStart)
	retry = strings.Contains(log, "Address already in use") || strings.Contains(log, "could not create lock file")
	// Make sure nothing half-started survives before a retry.
	if _, statErr := os.Stat(filepath.Join(s.dataDir, "postmaster.pid")); statErr == nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, _ = s.run(stopCtx, s.pgCtl, "stop", "-D", s.dataDir, "-m", "immediate", "-w", "-t", "30")
		cancel()
	}
	return retry, fmt.Errorf("pgtest: %s start (port %d) failed: %w\n%s\nserver log:\n%s", s.pgCtl, port, err, out, log)
}

// logTail returns the server log from offset from, at most its last 8 KiB.
func (s *Server) logTail(from int64) string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	if from > 0 && from <= int64(len(b)) {
		b = b[from:]
	}
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// Stop stops the cluster (pg_ctl stop -m immediate) and removes its
// directory. It does nothing for an external server, and only the first
// call does anything.
func (s *Server) Stop() error {
	if s == nil || s.external {
		return nil
	}
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	var errs []error
	if s.dataDir != "" {
		pid, _ := postmasterPID(s.dataDir)
		if pid > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			out, err := s.run(ctx, s.pgCtl, "stop", "-D", s.dataDir, "-m", "immediate", "-w", "-t", "30")
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("pgtest: %s stop failed: %w\n%s", s.pgCtl, err, out))
			}
			if processAlive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				for i := 0; i < 100 && processAlive(pid); i++ {
					time.Sleep(50 * time.Millisecond)
				}
				if processAlive(pid) {
					errs = append(errs, fmt.Errorf("pgtest: postmaster (pid %d) still running after stop", pid))
				}
			}
		}
	}
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("pgtest: removing %s: %w", s.dir, err))
		}
	}
	if s.lock != nil {
		s.lock.Close()
	}
	if s.wdPipe != nil {
		// The watchdog wakes up, finds the directory gone and exits.
		s.wdPipe.Close()
		done := make(chan struct{})
		go func() { _ = s.watchdog.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = s.watchdog.Process.Kill()
			<-done
		}
	}
	return errors.Join(errs...)
}

// DSN returns the postgres:// URL of the superuser connection to the
// server's "postgres" database (or CUSTOS_TEST_PG as is).
func (s *Server) DSN() string { return s.dsn }

// NewDatabase creates a fresh, uniquely named database
// (custos_test_<random>) and returns its postgres:// URL. It registers a
// t.Cleanup that drops it (DROP DATABASE ... WITH (FORCE)), so connections
// left open do not prevent the drop. On error it calls t.Fatalf.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "custos_test_" + hex.EncodeToString(b[:])
	dsn, err := withDatabase(s.dsn, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := s.exec("DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return dsn
}

// exec runs one statement on the superuser connection.
func (s *Server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns dsn with its database replaced by name.
func withDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parsing server URL: %w", err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

func redact(u *url.URL) string {
	c := *u
	if _, ok := c.User.Password(); ok {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	return c.String()
}

// waitReady connects to dsn until it works or deadline passes.
func waitReady(dsn string, deadline time.Time) error {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.Background())
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs a PostgreSQL program (as the postgres user when running as
// root) and returns its combined output.
func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return runPG(ctx, s.cred, s.dir, name, args...)
}

func runPG(ctx context.Context, cred *syscall.Credential, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = childEnv()
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start leaves the server running; it must not hold our pipe
	// (it doesn't: its output goes to the log file), but never hang on it.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return bytes.TrimSpace(out.Bytes()), err
}

// childEnv is the environment without PG* variables, which would
// otherwise change what initdb, pg_ctl and postgres do.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

// serverCredential returns the credential to run PostgreSQL programs with:
// nil unless running as root, the postgres user's otherwise.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(superuser)
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses to, but there is no OS user %q to run it as (%v): %s or run the tests as another user", superuser, err, installHint)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: OS user %q has non-numeric uid/gid %s/%s", superuser, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// findBinaries returns the paths of initdb and of the pg_ctl of the same
// installation.
func findBinaries() (initdb, pgCtl string, err error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if p, err := filepath.Abs(p); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	dirs = append(dirs, versionDirs()...)
	for _, d := range dirs {
		initdb, pgCtl = filepath.Join(d, "initdb"), filepath.Join(d, "pg_ctl")
		if isExecutable(initdb) && isExecutable(pgCtl) {
			return initdb, pgCtl, nil
		}
	}
	return "", "", errors.New("pgtest: initdb not found (looked in PATH and /usr/lib/postgresql/*/bin): " + installHint + ", or set " + EnvVar + " to the URL of a PostgreSQL superuser connection")
}

// versionDirs returns /usr/lib/postgresql/*/bin, newest version first.
func versionDirs() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sortNewestFirst(dirs)
	return dirs
}

// sortNewestFirst sorts .../<version>/bin directories by version, newest
// first.
func sortNewestFirst(dirs []string) {
	version := func(d string) []int {
		var v []int
		for _, f := range strings.Split(filepath.Base(filepath.Dir(d)), ".") {
			n, _ := strconv.Atoi(f)
			v = append(v, n)
		}
		return v
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		a, b := version(dirs[i]), version(dirs[j])
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// postmasterPID reads the server's pid from dataDir/postmaster.pid.
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// processAlive reports whether pid is a live (not zombie) process.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// watchdogScript waits until its stdin (a pipe whose write end only the
// test process holds) reaches EOF, that is until Stop closes it or the
// test process dies, then stops the server and removes the directory if
// they still exist. $1 = pg_ctl, $2 = data directory, $3 = directory.
const watchdogScript = `read -r _ || :
if [ -d "$3" ]; then
	if [ -f "$2/postmaster.pid" ]; then "$1" stop -D "$2" -m immediate -w -t 30 >/dev/null 2>&1 || :; fi
	rm -rf "$3"
fi`

func (s *Server) startWatchdog() error {
	r, w, err := os.Pipe() // close-on-exec: no other child inherits w
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "custos-pgtest-watchdog", s.pgCtl, s.dataDir, s.dir)
	cmd.Stdin = r
	cmd.Stdout, cmd.Stderr = nil, nil // /dev/null: must not hold go test's output pipe
	cmd.Dir = "/"
	cmd.Env = childEnv()
	// Own session: survives the Ctrl-C that kills the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("pgtest: starting watchdog: %w", err)
	}
	r.Close()
	s.watchdog, s.wdPipe = cmd, w
	return nil
}

// reapStale stops the servers and removes the directories of test
// processes that died without cleaning up (see the package comment).
func reapStale(pgCtl string, cred *syscall.Credential) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Lstat(d)
		if err != nil || !fi.IsDir() {
			continue
		}
		f, err := os.OpenFile(filepath.Join(d, lockName), os.O_RDWR, 0)
		if err != nil {
			// No lock file: being created right now, or very broken.
			if errors.Is(err, os.ErrNotExist) && time.Since(fi.ModTime()) > time.Hour {
				removeStale(d, pgCtl, cred)
			}
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // its test process is alive
			continue
		}
		// The owner creates the lock file and locks it right away, so an
		// unlocked one older than a minute belongs to a dead process.
		if lfi, err := f.Stat(); err == nil && time.Since(lfi.ModTime()) > time.Minute {
			removeStale(d, pgCtl, cred)
		}
		f.Close()
	}
}

func removeStale(dir, pgCtl string, cred *syscall.Credential) {
	dataDir := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, _ = runPG(ctx, cred, "/", pgCtl, "stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "30")
		cancel()
	}
	_ = os.RemoveAll(dir)
}

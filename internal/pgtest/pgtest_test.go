package pgtest

import (
	"bufio"
	"context"
	"fmt"
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

// crashChildEnv makes the test binary act as a test process that starts a
// cluster and then gets killed (see TestCrashedProcessLeavesNothing).
const crashChildEnv = "PGTEST_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		crashChild()
		return
	}
	os.Exit(Main(m))
}

func crashChild() {
	s, err := startLocal()
	if err != nil {
		fmt.Printf("ERROR %v\n", strings.ReplaceAll(err.Error(), "\n", " | "))
		os.Exit(1)
	}
	pid, err := postmasterPID(s.dataDir)
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("READY %d %s\n", pid, s.dir)
	time.Sleep(10 * time.Minute) // until killed
	os.Exit(1)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestTwoDatabasesAreIndependent(t *testing.T) {
	t.Parallel()
	srv := Shared(t)
	dsnA, dsnB := srv.NewDatabase(t), srv.NewDatabase(t)
	if dsnA == dsnB {
		t.Fatalf("NewDatabase returned the same URL twice: %s", dsnA)
	}
	ctx := context.Background()
	a, b := connect(t, dsnA), connect(t, dsnB)

	for _, c := range []struct {
		conn *pgx.Conn
		dsn  string
	}{{a, dsnA}, {b, dsnB}} {
		u, err := url.Parse(c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		var db string
		if err := c.conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimPrefix(u.Path, "/"); db != want || !strings.HasPrefix(db, "custos_test_") {
			t.Errorf("connected to database %q via %s, want %q (custos_test_*)", db, c.dsn, want)
		}
	}

	if _, err := a.Exec(ctx, "CREATE TABLE contacts (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "INSERT INTO contacts VALUES (1, 'Ada'), (2, 'Grace')"); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := b.QueryRow(ctx, "SELECT to_regclass('contacts') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("table created in the first database is visible in the second")
	}
	// The same name can be created independently in the second one.
	if _, err := b.Exec(ctx, "CREATE TABLE contacts (id int PRIMARY KEY, email text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, "INSERT INTO contacts VALUES (7, 'x@example.com')"); err != nil {
		t.Fatal(err)
	}
	var na, nb int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM contacts").Scan(&na); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, "SELECT count(*) FROM contacts").Scan(&nb); err != nil {
		t.Fatal(err)
	}
	if na != 2 || nb != 1 {
		t.Fatalf("row counts = %d, %d; want 2, 1", na, nb)
	}
}

func TestNewDatabaseIsDroppedAtCleanup(t *testing.T) {
	t.Parallel()
	srv := Shared(t)
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := srv.NewDatabase(t)
		conn := connect(t, dsn) // left open: the drop must force it closed
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	admin := connect(t, srv.DSN())
	var n int
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if name == "" || n != 0 {
		t.Fatalf("database %q still exists after its test ended (count %d)", name, n)
	}
}

// serverProcesses returns the live processes belonging to the cluster in
// dir: those whose command line mentions dir (postmaster, watchdog) and
// the postmaster's children.
func serverProcesses(dir string, postmaster int) []string {
	var procs []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !processAlive(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		ppid := -1
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				ppid, _ = strconv.Atoi(f[1])
			}
		}
		if pid == postmaster || ppid == postmaster || strings.Contains(string(cmdline), dir) {
			procs = append(procs, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return procs
}

func TestStopLeavesNothing(t *testing.T) {
	t.Parallel()
	s, err := startLocal()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	if !strings.HasPrefix(s.dir, filepath.Join(os.TempDir(), dirPrefix)) {
		t.Errorf("cluster directory %s is not under %s with prefix %s", s.dir, os.TempDir(), dirPrefix)
	}
	pid, err := postmasterPID(s.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !processAlive(pid) {
		t.Fatalf("postmaster %d is not running", pid)
	}
	if procs := serverProcesses(s.dir, pid); len(procs) < 3 {
		t.Errorf("expected postmaster, its children and the watchdog, found %q", procs)
	}
	connect(t, s.DSN()).Close(context.Background())

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if processAlive(pid) {
		t.Errorf("postmaster %d still running after Stop", pid)
	}
	if procs := serverProcesses(s.dir, pid); len(procs) > 0 {
		t.Errorf("processes left after Stop: %q", procs)
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still exists after Stop (stat: %v)", s.dir, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestCrashedProcessLeavesNothing(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(90 * time.Second):
		t.Fatal("child process did not start a cluster within 90s")
	}
	var pid int
	var dir string
	if _, err := fmt.Sscanf(line, "READY %d %s", &pid, &dir); err != nil {
		t.Fatalf("child: %q", line)
	}
	_, pgCtl, _ := findBinaries()
	cred, _ := serverCredential()
	defer removeStale(dir, pgCtl, cred) // in case the test fails

	// SIGKILL: no deferred function, no Stop, nothing runs in the child.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		procs := serverProcesses(dir, pid)
		if os.IsNotExist(statErr) && len(procs) == 0 && !processAlive(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the test process was killed: directory %s stat %v, processes %q", dir, statErr, procs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReapStale(t *testing.T) {
	t.Parallel()
	old := time.Now().Add(-2 * time.Hour)
	mk := func(lock bool) string {
		d, err := os.MkdirTemp("", dirPrefix+"*")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if lock {
			if err := os.WriteFile(filepath.Join(d, lockName), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(filepath.Join(d, lockName), old, old); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	stale := mk(true)  // old lock file nobody holds: owner dead
	fresh := mk(false) // no lock file yet: being created
	live := mk(true)   // held, like a running test process holds it
	f, err := os.OpenFile(filepath.Join(live, lockName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	reapStale("/nonexistent/pg_ctl", nil)

	for _, c := range []struct {
		dir  string
		gone bool
	}{{stale, true}, {fresh, false}, {live, false}} {
		_, err := os.Stat(c.dir)
		if gone := os.IsNotExist(err); gone != c.gone {
			t.Errorf("%s: removed = %v, want %v", c.dir, gone, c.gone)
		}
	}
}

func TestExternalServer(t *testing.T) {
	// Not parallel: t.Setenv.
	srv := Shared(t)
	t.Setenv(EnvVar, srv.DSN())
	ext, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if !ext.external || ext.DSN() != srv.DSN() {
		t.Fatalf("Start with %s set: external=%v DSN=%q, want the URL as is", EnvVar, ext.external, ext.DSN())
	}
	dsn := ext.NewDatabase(t)
	if err := ext.Stop(); err != nil {
		t.Fatal(err)
	}
	// Stop left the server alone.
	connect(t, dsn)

	t.Setenv(EnvVar, "host=localhost")
	if _, err := Start(); err == nil || !strings.Contains(err.Error(), EnvVar) {
		t.Errorf("Start with a non-URL %s: err = %v", EnvVar, err)
	}
}

func TestSortNewestFirst(t *testing.T) {
	t.Parallel()
	dirs := []string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/10/bin", "/usr/lib/postgresql/17/bin"}
	sortNewestFirst(dirs)
	want := []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/10/bin", "/usr/lib/postgresql/9.6/bin"}
	if fmt.Sprint(dirs) != fmt.Sprint(want) {
		t.Errorf("sortNewestFirst = %q, want %q", dirs, want)
	}
}

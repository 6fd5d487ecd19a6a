// Package miniotest runs throwaway MinIO servers (an S3-compatible object
// store) for tests of code that writes to S3.
//
// A test calls
//
//	srv := miniotest.Start(t)
//	bucket := srv.Bucket(t)
//	srv.Setenv(t) // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
//	url := srv.URL(bucket, "some/prefix/")
//
// to get a private server on a free loopback port, with its data in a
// temporary directory and random root credentials, stopped again when the
// test ends. Starting one takes about a second.
//
// # Where the server comes from
//
// The minio binary is CUSTOS_MINIO if set, else
// ${CUSTOS_MINIO_DIR:-~/.cache/custos/minio}/minio, where
// scripts/ensure-minio.sh (run by "make test-deps") builds it once. When it
// is missing, Start fails the test; it never skips.
//
// # Leftovers
//
// The server runs in its own process group, which Stop (registered with
// t.Cleanup) kills. On Linux the server is also killed when the test
// process dies without cleaning up (crash, test timeout, SIGKILL). Its data
// lives under t.TempDir, which the testing package removes.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// EnvVar names the environment variable holding the path of a minio binary
// to use instead of the one in the cache directory.
const EnvVar = "CUSTOS_MINIO"

// Region is the region every Server reports; MinIO accepts any.
const Region = "us-east-1"

const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is a running MinIO server.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string // the root user
	SecretKey string // the root password
	Region    string // always "us-east-1"

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been waited for
	waitErr error         // the process's exit status, valid once exited is closed
	logPath string

	stopOnce sync.Once
	stopErr  error
}

// Start starts a MinIO server for the test and registers its Stop with
// t.Cleanup. It fails the test if the server cannot be started.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	var lastErr error
	// A free port found by listening and closing can be taken by someone
	// else before MinIO binds it; try a few times.
	for range 3 {
		s, err := start(t, bin)
		if err == nil {
			t.Cleanup(func() {
				if err := s.Stop(); err != nil {
					t.Errorf("miniotest: %v", err)
				}
			})
			return s
		}
		lastErr = err
	}
	t.Fatalf("miniotest: starting MinIO: %v", lastErr)
	return nil
}

// findBinary returns the path of the minio binary.
func findBinary() (string, error) {
	if p := os.Getenv(EnvVar); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("MinIO not found: %s=%s is not an executable file", EnvVar, p)
	}
	dir := os.Getenv("CUSTOS_MINIO_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("MinIO not found: no home directory: %w", err)
		}
		dir = filepath.Join(home, ".cache", "custos", "minio")
	}
	p := filepath.Join(dir, "minio")
	if !isExecutable(p) {
		return "", fmt.Errorf("MinIO not found: run `make test-deps` (scripts/ensure-minio.sh builds it once); looked for %s", p)
	}
	return p, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func start(t testing.TB, bin string) (*Server, error) {
	dir := t.TempDir()
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		AccessKey: "custos" + randomHex(8),
		SecretKey: randomHex(20),
		Region:    Region,
		exited:    make(chan struct{}),
		logPath:   filepath.Join(dir, "minio.log"),
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy

	cmd := exec.Command(bin, "server",
		"--address", "127.0.0.1:"+strconv.Itoa(ports[0]),
		"--console-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
		"--certs-dir", filepath.Join(dir, "certs"), // not ~/.minio/certs
		"--quiet",
		filepath.Join(dir, "data"),
	)
	cmd.Env = append(childEnv(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, s.log())
	}
	return s, nil
}

// childEnv is the environment for the server: the test's, less any MINIO_
// and AWS_ settings that could change how it runs.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady polls the liveness endpoint until it answers 200.
func (s *Server) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("minio exited before it was ready: %v", s.waitErr)
		default:
		}
		resp, err := client.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not ready after %v (last: %v)", startTimeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// log returns the tail of the server's log, for error messages.
func (s *Server) log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "minio log:\n" + string(b)
}

// Stop stops the server: SIGTERM to its process group, SIGKILL if it has
// not exited after a while. Later calls return the first call's result.
// Tests may call it to simulate an outage; Start's cleanup calls it again
// harmlessly.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-s.exited:
			case <-time.After(stopTimeout):
				s.stopErr = fmt.Errorf("minio (pid %d) did not exit after SIGKILL", pgid)
				return
			}
		}
		// Kill whatever else may be left in the group; it is gone already
		// in the usual case (ESRCH).
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
	return s.stopErr
}

// Bucket creates a new, empty bucket with a unique name and returns the
// name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "custos-test-" + randomHex(8)
	client := s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("miniotest: creating bucket %s: %v", name, err)
	}
	return name
}

// URL returns the s3:// URL of bucket on this server, with the objects
// under prefix (none if empty), in the form backup.OpenDestination accepts.
// It holds no credentials: those come from the environment (see Env and
// Setenv).
func (s *Server) URL(bucket, prefix string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("region", s.Region)
	q.Set("use_path_style", "true")
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	return (&url.URL{Scheme: "s3", Host: bucket, RawQuery: q.Encode()}).String()
}

// Env returns the AWS_* environment variables that give a child process
// this server's credentials and region.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
	}
}

// Setenv sets the variables of Env in the test's own environment, for the
// duration of the test (so the test cannot be parallel).
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("miniotest: no randomness: " + err.Error()))
	}
	return hex.EncodeToString(b)
}

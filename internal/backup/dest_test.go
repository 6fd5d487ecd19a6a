package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/custos/custos/internal/miniotest"
)

// destBackend opens a fresh, empty destination (rooted at prefix "tenant/")
// and returns it with the URL of the same place without the prefix, for
// checking where the objects really went.
type destBackend struct {
	name string
	open func(t *testing.T) (d *Destination, rawURL string, secret string)
}

var destBackends = []destBackend{
	{"file", func(t *testing.T) (*Destination, string, string) {
		dir := filepath.Join(t.TempDir(), "new", "dir")
		d, err := OpenDestination(context.Background(), "file://"+dir+"?prefix=tenant")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("directory %s created with mode %v, want 0700", dir, fi.Mode().Perm())
		}
		return d, "file://" + dir, ""
	}},
	{"s3", func(t *testing.T) (*Destination, string, string) {
		srv := miniotest.Start(t)
		srv.Setenv(t)
		bucket := srv.Bucket(t)
		d, err := OpenDestination(context.Background(), srv.URL(bucket, "tenant/"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d, srv.URL(bucket, ""), srv.SecretKey
	}},
}

func TestDestOperations(t *testing.T) {
	big := make([]byte, 6<<20+123) // more than one S3 multipart part (5 MiB)
	rand.Read(big)
	objects := map[string][]byte{
		"a/1":      []byte("one"),
		"a/2":      []byte("two"),
		"a/b/3":    []byte("three"),
		"c/d/e/4":  []byte("four"),
		"top":      {},
		"big/blob": big,
	}
	for _, be := range destBackends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			d, rawURL, secret := be.open(t)

			for name, data := range objects {
				if err := d.Put(ctx, name, data); err != nil {
					t.Fatalf("Put(%q): %v", name, err)
				}
			}
			for name, data := range objects {
				got, err := d.Get(ctx, name)
				if err != nil {
					t.Fatalf("Get(%q): %v", name, err)
				}
				if !bytes.Equal(got, data) {
					t.Errorf("Get(%q) = %d bytes, want %d", name, len(got), len(data))
				}
				size, err := d.Size(ctx, name)
				if err != nil || size != int64(len(data)) {
					t.Errorf("Size(%q) = %d, %v; want %d", name, size, err, len(data))
				}
			}

			// Overwriting replaces.
			if err := d.Put(ctx, "a/1", []byte("uno")); err != nil {
				t.Fatal(err)
			}
			if got, err := d.Get(ctx, "a/1"); err != nil || string(got) != "uno" {
				t.Errorf("Get after overwrite = %q, %v", got, err)
			}

			lists := []struct {
				prefix string
				dirs   bool
				want   []string
			}{
				{"", false, []string{"a/1", "a/2", "a/b/3", "big/blob", "c/d/e/4", "top"}},
				{"a/", false, []string{"a/1", "a/2", "a/b/3"}},
				{"a/b", false, []string{"a/b/3"}},
				{"nothing/", false, nil},
				{"", true, []string{"a", "big", "c"}},
				{"a/", true, []string{"a/b"}},
				{"c/", true, []string{"c/d"}},
				{"c/d/e/", true, nil},
				{"nothing/", true, nil},
			}
			for _, l := range lists {
				var got []string
				var err error
				if l.dirs {
					got, err = d.ListDirs(ctx, l.prefix)
				} else {
					got, err = d.List(ctx, l.prefix)
				}
				if err != nil {
					t.Fatalf("list %q (dirs %v): %v", l.prefix, l.dirs, err)
				}
				if !slices.Equal(got, l.want) {
					t.Errorf("list %q (dirs %v) = %q, want %q", l.prefix, l.dirs, got, l.want)
				}
			}

			// Missing objects.
			if _, err := d.Get(ctx, "a/none"); !errors.Is(err, ErrObjectMissing) || gcerrors.Code(err) != gcerrors.NotFound {
				t.Errorf("Get(missing) error = %v, want ErrObjectMissing with code NotFound", err)
			}
			if _, err := d.Size(ctx, "a/none"); !errors.Is(err, ErrObjectMissing) {
				t.Errorf("Size(missing) error = %v, want ErrObjectMissing", err)
			}
			if err := d.Delete(ctx, "a/none"); err != nil {
				t.Errorf("Delete(missing) = %v, want nil", err)
			}

			// Delete.
			if err := d.Delete(ctx, "a/b/3"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := d.Get(ctx, "a/b/3"); !errors.Is(err, ErrObjectMissing) {
				t.Errorf("Get after Delete: error = %v, want ErrObjectMissing", err)
			}
			if got, err := d.ListDirs(ctx, "a/"); err != nil || len(got) != 0 {
				t.Errorf("ListDirs(a/) after deleting its only object = %q, %v; want none", got, err)
			}

			// Bad names.
			for _, name := range []string{"", "/a", "a/", "a//b", "a/../b", "./a"} {
				if err := d.Put(ctx, name, []byte("x")); err == nil {
					t.Errorf("Put(%q) succeeded, want an invalid name error", name)
				}
			}

			// Everything is under prefix + "custos-backups/", and nothing
			// else (no sidecar or temporary files) is there.
			raw, err := blob.OpenBucket(ctx, rawURL)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var keys []string
			it := raw.List(nil)
			for {
				obj, err := it.Next(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, obj.Key)
			}
			slices.Sort(keys)
			want := []string{"tenant/custos-backups/a/1", "tenant/custos-backups/a/2", "tenant/custos-backups/big/blob",
				"tenant/custos-backups/c/d/e/4", "tenant/custos-backups/top"}
			if !slices.Equal(keys, want) {
				t.Errorf("objects in the bucket = %q, want %q", keys, want)
			}

			if s := d.String(); secret != "" && strings.Contains(s, secret) {
				t.Errorf("String() = %q holds the secret key", s)
			}
		})
	}
}

// fileblob writes into temporary files next to the final one; List must not
// show them, nor sidecar files.
func TestDestFileHidesTemporaryFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := OpenDestination(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Put(ctx, "s/obj", []byte("data")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "custos-backups", "s", "obj"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("object file mode = %v, want 0600", fi.Mode().Perm())
	}
	for _, f := range []string{"obj.1874a3b2c5d6e7f8.tmp", "obj.attrs"} {
		if err := os.WriteFile(filepath.Join(dir, "custos-backups", "s", f), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"s/obj"}) {
		t.Errorf("List = %q, want [s/obj]", got)
	}
}

func TestDestURLValidation(t *testing.T) {
	// No region, profile or credentials from this machine's setup.
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	const secret = "S3CR3TVALUE"
	abs := t.TempDir()

	tests := []struct {
		url     string
		wantErr string // "" for success
	}{
		{"", "backup destination URL is empty"},
		{"   ", "backup destination URL is empty"},
		{"file://./backups", "relative paths are not accepted: use an absolute file:// URL"},
		{"file://../backups", "relative paths are not accepted: use an absolute file:// URL"},
		{"file:backups", "relative paths are not accepted: use an absolute file:// URL"},
		{"/var/backups/custos", "must be a URL, not a path: use an absolute file:// URL"},
		{"backups", "must be a URL, not a path: use an absolute file:// URL"},
		{"file://otherhost/x", `file:// URL names host "otherhost"`},
		{"file://" + abs + "?metadata=skip", `unsupported query parameter "metadata" for a file:// destination`},
		{"ftp://host/x", `unsupported backup destination scheme "ftp" (use file:// or s3://)`},
		{"gs://bucket", `unsupported backup destination scheme "gs" (use file:// or s3://)`},
		{"s3://AKIAEXAMPLE:" + secret + "@bucket?region=us-east-1", "must not contain credentials (user:password@)"},
		{"file://user:" + secret + "@/x", "must not contain credentials (user:password@)"},
		{"s3://bucket?region=us-east-1&aws_secret_access_key=" + secret, `must not contain credentials (query parameter "aws_secret_access_key")`},
		{"s3://bucket?region=us-east-1&Password=" + secret, `must not contain credentials (query parameter "Password")`},
		{"s3://bucket?region=us-east-1&X-Amz-Security-Token=" + secret, `must not contain credentials (query parameter "X-Amz-Security-Token")`},
		{"s3://bucket?region=us-east-1&endpoint=" + url.QueryEscape("http://u:"+secret+"@127.0.0.1:9000"), "endpoint must be an http:// or https:// URL without credentials"},
		{"s3://bucket?region=us-east-1&endpoint=127.0.0.1:9000", "endpoint must be an http:// or https:// URL"},
		{"s3://bucket:9000?region=us-east-1", "needs a bucket name as its host"},
		{"s3://?region=us-east-1", "needs a bucket name as its host"},
		{"s3://bucket/folder?region=us-east-1", "give the folder as ?prefix=folder/ instead"},
		{"s3://bucket?region=us-east-1&key=x", `unsupported query parameter "key" for an s3:// destination`},
		{"s3://bucket?region=us-east-1&use_path_style=maybe", `invalid value for "use_path_style"`},
		{"s3://bucket?region=us-east-1&ssetype=rot13", `invalid value for "ssetype"`},
		{"s3://bucket?region=us-east-1&region=eu-west-1", `query parameter "region" more than once`},
		{"s3://bucket?region=us-east-1&prefix=a/../b", `invalid prefix "a/../b"`},
		{"s3://bucket", "no AWS region: add ?region=... to the URL or set AWS_REGION"},
		{"s3://bucket?region=eu-west-1&prefix=p", ""},
		{"s3://bucket?region=eu-west-1&endpoint=http://127.0.0.1:9000&use_path_style=true&disable_https=true&ssetype=AES256&kmskeyid=k1", ""},
		{"file://" + abs, ""},
		{"file://localhost" + abs + "/sub?prefix=x/y/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			d, err := OpenDestination(context.Background(), tt.url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("OpenDestination: %v", err)
				}
				defer d.Close()
				if strings.Contains(d.String(), secret) {
					t.Errorf("String() = %q holds a secret", d.String())
				}
				return
			}
			if err == nil {
				d.Close()
				t.Fatalf("OpenDestination succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "AKIAEXAMPLE") {
				t.Errorf("error %q leaks a credential", err)
			}
		})
	}
}

func TestDestRedactURL(t *testing.T) {
	u, err := url.Parse("s3://AKIA:pw1@bucket?region=r&token=pw2&endpoint=" + url.QueryEscape("http://u:pw3@h:9000/?sig=pw4"))
	if err != nil {
		t.Fatal(err)
	}
	got := redactURL(u)
	for _, s := range []string{"AKIA", "pw1", "pw2", "pw3", "pw4"} {
		if strings.Contains(got, s) {
			t.Errorf("redactURL = %q, holds %q", got, s)
		}
	}
	if !strings.HasPrefix(got, "s3://bucket?") || !strings.Contains(got, "region=r") {
		t.Errorf("redactURL = %q", got)
	}
}

func TestDestRetry(t *testing.T) {
	srv := miniotest.Start(t)
	srv.Setenv(t)
	ctx := context.Background()
	d, err := OpenDestination(ctx, srv.URL(srv.Bucket(t), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Put(ctx, "before", []byte("x")); err != nil {
		t.Fatalf("Put while the server runs: %v", err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	t.Run("gives up", func(t *testing.T) {
		d.retry = retryPolicy{attempts: 3, minDelay: 20 * time.Millisecond, maxDelay: 50 * time.Millisecond}
		start := time.Now()
		err := d.Put(ctx, "after", []byte("x"))
		elapsed := time.Since(start)
		if err == nil {
			t.Fatal("Put with the server stopped succeeded")
		}
		t.Logf("error after %v: %v", elapsed, err)
		for _, want := range []string{"backup destination s3://", `put "after"`, "gave up after 3 attempts"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error = %q, want it to contain %q", err, want)
			}
		}
		if strings.Contains(err.Error(), srv.SecretKey) {
			t.Errorf("error %q holds the secret key", err)
		}
		if elapsed > 10*time.Second {
			t.Errorf("Put took %v to give up", elapsed)
		}
	})

	t.Run("honours ctx", func(t *testing.T) {
		d.retry = defaultRetry // 5 attempts, about 3 s of backoff in all
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := d.Get(ctx, "before")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get error = %v, want context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("Get took %v with a 300ms context", elapsed)
		}
	})
}

func TestDestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	d, err := OpenDestination(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.retry = retryPolicy{attempts: 4, minDelay: time.Millisecond, maxDelay: 2 * time.Millisecond}

	// Transient: retried until the attempts are used up.
	calls := 0
	err = d.do(ctx, func(context.Context) error { calls++; return &sizeMismatchError{got: 1, want: 2} })
	if calls != 4 || err == nil || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("transient: %d calls, error %v; want 4 calls", calls, err)
	}

	// Transient, then success.
	calls = 0
	err = d.do(ctx, func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("connection reset")
		}
		return nil
	})
	if calls != 3 || err != nil {
		t.Errorf("recovering: %d calls, error %v; want 3 calls, nil", calls, err)
	}

	// Permanent (a missing object): not retried.
	calls = 0
	err = d.do(ctx, func(ctx context.Context) error { calls++; _, err := d.bucket.ReadAll(ctx, "none"); return err })
	if calls != 1 || gcerrors.Code(err) != gcerrors.NotFound {
		t.Errorf("permanent: %d calls, error %v; want 1 call, NotFound", calls, err)
	}
}

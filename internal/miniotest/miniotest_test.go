package miniotest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMinioServer(t *testing.T) {
	start := time.Now()
	srv := Start(t)
	t.Logf("MinIO ready after %v", time.Since(start))

	bucket := srv.Bucket(t)
	if other := srv.Bucket(t); other == bucket {
		t.Fatalf("Bucket returned %q twice", bucket)
	}

	ctx := context.Background()
	client := s3.New(s3.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String("a/b"),
		Body:   strings.NewReader("hello"),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b")})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	if got := aws.ToInt64(out.ContentLength); got != 5 {
		t.Errorf("size = %d, want 5", got)
	}

	// Wrong credentials are refused: the server really checks them.
	bad := s3.New(s3.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, "wrong-secret-key", ""),
	})
	if _, err := bad.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b")}); err == nil {
		t.Errorf("HeadObject with a wrong secret key succeeded")
	}

	u, err := url.Parse(srv.URL(bucket, "p/"))
	if err != nil {
		t.Fatalf("URL: %v", err)
	}
	q := u.Query()
	if u.Scheme != "s3" || u.Host != bucket || q.Get("endpoint") != srv.Endpoint ||
		q.Get("region") != Region || q.Get("use_path_style") != "true" || q.Get("prefix") != "p/" {
		t.Errorf("URL = %s", u)
	}
	if strings.Contains(u.String(), srv.SecretKey) || strings.Contains(u.String(), srv.AccessKey) {
		t.Errorf("URL %s holds credentials", u)
	}
	env := strings.Join(srv.Env(), "\n")
	for _, want := range []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=us-east-1"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %s", want)
		}
	}

	// Stop stops the whole process group, and may be called again.
	pid := srv.cmd.Process.Pid
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still there after Stop (kill 0: %v)", pid, err)
	}
	if resp, err := http.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Errorf("server still answers after Stop")
	}
}

func TestMinioNotFound(t *testing.T) {
	t.Setenv(EnvVar, "")
	t.Setenv("CUSTOS_MINIO_DIR", t.TempDir())
	_, err := findBinary()
	if err == nil || !strings.Contains(err.Error(), "MinIO not found: run `make test-deps` (scripts/ensure-minio.sh builds it once)") {
		t.Errorf("findBinary() error = %v", err)
	}

	t.Setenv(EnvVar, filepath.Join(t.TempDir(), "nope"))
	if _, err := findBinary(); err == nil || !strings.Contains(err.Error(), "MinIO not found") {
		t.Errorf("findBinary() with a wrong %s: error = %v", EnvVar, err)
	}
}

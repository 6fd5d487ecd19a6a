package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// ErrObjectMissing is returned (wrapped) by Get and Size when the object
// does not exist. The error also carries gocloud's NotFound code.
var ErrObjectMissing = errors.New("object missing")

// rootPrefix is where every object Custos writes lives, under the
// destination's own prefix, if any.
const rootPrefix = "custos-backups/"

// Destination is one place backups are written to: a gocloud.dev/blob bucket.
//
// Object names are relative to the destination's root (its prefix plus
// "custos-backups/"), use "/" to separate "directories", and must not start
// or end with "/" or contain empty, "." or ".." segments.
//
// Every operation retries transient failures (network errors, server
// errors, a size mismatch after a write) a few times with exponential
// backoff; permanent ones (missing object or bucket, denied access, bad
// request) fail at once.
type Destination struct {
	bucket   *blob.Bucket
	redacted string
	isFile   bool // fileblob: hide its temporary files from listings
	retry    retryPolicy
}

// retryPolicy says how often and how patiently an operation is retried.
// Tests shorten it.
type retryPolicy struct {
	attempts int           // in all, including the first
	minDelay time.Duration // before the second attempt
	maxDelay time.Duration // cap for the doubling delays
}

var defaultRetry = retryPolicy{attempts: 5, minDelay: 200 * time.Millisecond, maxDelay: 3 * time.Second}

// OpenDestination opens the destination named by rawURL:
//
//   - file:///abs/dir: a local directory, created (mode 0700) when missing.
//     Relative paths (file://./x, file:x) and bare paths are refused.
//   - s3://bucket?region=r&endpoint=http://host:port&use_path_style=true&prefix=p/:
//     an S3 bucket or one of an S3-compatible server. Credentials come only
//     from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
//     AWS_SESSION_TOKEN, AWS_PROFILE, ...) or the AWS default chain; a URL
//     with user:password@ or with credential-like query parameters is
//     refused. The region must be in the URL or in AWS_REGION. Other
//     accepted parameters: s3ForcePathStyle, disable_https,
//     hostname_immutable, profile, dualstack, fips, accelerate, ssetype,
//     kmskeyid, anonymous, rate_limiter_capacity,
//     request_checksum_calculation, response_checksum_validation (see
//     gocloud.dev/aws and gocloud.dev/blob/s3blob).
//
// Both accept prefix=p/ to keep the objects under p/ ("p" means "p/" too).
// Opening checks the URL but does not contact an S3 server.
func OpenDestination(ctx context.Context, rawURL string) (*Destination, error) {
	u, err := parseDestinationURL(rawURL)
	if err != nil {
		return nil, err
	}
	redacted := redactURL(u)
	q := u.Query()
	prefix, err := cleanPrefix(q.Get("prefix"))
	if err != nil {
		return nil, fmt.Errorf("backup destination %s: %w", redacted, err)
	}
	q.Del("prefix")

	var b *blob.Bucket
	switch u.Scheme {
	case "file":
		b, err = openFileBucket(u, q)
	case "s3":
		b, err = openS3Bucket(ctx, u, q)
	}
	if err != nil {
		return nil, fmt.Errorf("backup destination %s: %w", redacted, err)
	}
	return &Destination{
		bucket:   blob.PrefixedBucket(b, prefix+rootPrefix),
		redacted: redacted,
		isFile:   u.Scheme == "file",
		retry:    defaultRetry,
	}, nil
}

// parseDestinationURL parses rawURL and refuses what OpenDestination never
// accepts: an empty or relative URL, an unknown scheme, credentials. Its
// errors never quote a URL that could hold credentials.
func parseDestinationURL(rawURL string) (*url.URL, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, errors.New("backup destination URL is empty (use file:///absolute/dir or s3://bucket)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) && !strings.Contains(rawURL, "@") {
			err = uerr.Err
		} else {
			err = errors.New("malformed")
		}
		return nil, fmt.Errorf("invalid backup destination URL: %v", err)
	}
	if u.Scheme == "" {
		return nil, errors.New("backup destination must be a URL, not a path: use an absolute file:// URL such as file:///var/backups/custos, or s3://bucket")
	}
	if u.Scheme != "file" && u.Scheme != "s3" {
		return nil, fmt.Errorf("unsupported backup destination scheme %q (use file:// or s3://)", u.Scheme)
	}
	if u.User != nil {
		return nil, errors.New("backup destination URL must not contain credentials (user:password@): " +
			"give them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) instead")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errors.New("invalid backup destination URL: malformed query")
	}
	for k, vs := range q {
		if secretLooking(k) {
			return nil, fmt.Errorf("backup destination URL must not contain credentials (query parameter %q): "+
				"give them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) instead", k)
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("backup destination URL has query parameter %q more than once", k)
		}
	}
	if ep := q.Get("endpoint"); ep != "" {
		e, err := url.Parse(ep)
		if err != nil || e.User != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return nil, errors.New("backup destination URL: endpoint must be an http:// or https:// URL " +
				"without credentials, such as http://127.0.0.1:9000")
		}
	}
	return u, nil
}

// secretWords are parts of query parameter names that suggest a credential.
var secretWords = []string{"secret", "password", "passwd", "token", "credential", "signature",
	"access_key", "accesskey", "access-key", "key_id", "keyid", "apikey", "api_key", "auth", "session", "x-amz-"}

func secretLooking(param string) bool {
	p := strings.ToLower(param)
	if p == "kmskeyid" { // the id of a KMS key, not a secret
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(p, w) {
			return true
		}
	}
	return false
}

// redactURL renders u without userinfo and with the values of
// credential-like query parameters replaced, also inside the endpoint.
func redactURL(u *url.URL) string {
	r := *u
	r.User = nil
	q := r.Query()
	for k := range q {
		switch {
		case secretLooking(k):
			q.Set(k, "REDACTED")
		case k == "endpoint":
			if e, err := url.Parse(q.Get(k)); err == nil {
				e.User = nil
				e.RawQuery = ""
				q.Set(k, e.String())
			} else {
				q.Set(k, "REDACTED")
			}
		}
	}
	// ":" and "/" need no escaping in a query; keep the endpoint readable.
	r.RawQuery = strings.NewReplacer("%3A", ":", "%2F", "/").Replace(q.Encode())
	r.Fragment = ""
	r.RawFragment = ""
	return r.String()
}

// cleanPrefix turns the prefix parameter into "" or "a/b/".
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("invalid prefix %q: empty, \".\" or \"..\" segment", p)
		}
	}
	return p + "/", nil
}

func openFileBucket(u *url.URL, q url.Values) (*blob.Bucket, error) {
	for k := range q {
		return nil, fmt.Errorf("unsupported query parameter %q for a file:// destination (only prefix is accepted)", k)
	}
	if u.Opaque != "" || u.Host == "." || u.Host == ".." {
		return nil, errors.New("relative paths are not accepted: use an absolute file:// URL such as file:///var/backups/custos")
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("file:// URL names host %q: use an absolute file:// URL such as file:///var/backups/custos", u.Host)
	}
	dir := filepath.FromSlash(u.Path)
	if !filepath.IsAbs(dir) {
		return nil, errors.New("relative paths are not accepted: use an absolute file:// URL such as file:///var/backups/custos")
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return fileblob.OpenBucket(dir, &fileblob.Options{
		DirFileMode: 0o700,
		// Temporary files next to the final ones, so that the rename that
		// publishes a write is atomic (os.TempDir may be another file
		// system). List hides them.
		NoTempDir: true,
		// No ".attrs" sidecar files.
		Metadata: fileblob.MetadataDontWrite,
	})
}

// s3ConfigParams are the query parameters gocloud.dev/aws's
// V2ConfigFromURLParams handles (v0.45).
var s3ConfigParams = map[string]bool{
	"endpoint": true, "region": true, "hostname_immutable": true, "profile": true,
	"dualstack": true, "fips": true, "rate_limiter_capacity": true, "anonymous": true,
	"request_checksum_calculation": true, "response_checksum_validation": true,
}

func openS3Bucket(ctx context.Context, u *url.URL, q url.Values) (*blob.Bucket, error) {
	name := u.Host
	if name == "" || u.Port() != "" || strings.ContainsAny(name, "[]:") {
		return nil, errors.New("s3:// URL needs a bucket name as its host, such as s3://my-bucket?region=eu-west-1")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("s3:// URL has a path: give the folder as ?prefix=folder/ instead")
	}

	cfgQuery := url.Values{}
	var s3Opts []func(*s3.Options)
	var bucketOpts s3blob.Options
	for k, vs := range q {
		v := vs[0]
		switch {
		case s3ConfigParams[k]:
			cfgQuery.Set(k, v)
		case k == "use_path_style" || k == "s3ForcePathStyle":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %q: %q is not a boolean", k, v)
			}
			s3Opts = append(s3Opts, func(o *s3.Options) { o.UsePathStyle = b })
		case k == "disable_https":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %q: %q is not a boolean", k, v)
			}
			s3Opts = append(s3Opts, func(o *s3.Options) { o.EndpointOptions.DisableHTTPS = b })
		case k == "accelerate":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %q: %q is not a boolean", k, v)
			}
			s3Opts = append(s3Opts, func(o *s3.Options) { o.UseAccelerate = b })
		case k == "ssetype":
			i := slices.IndexFunc(types.ServerSideEncryption("").Values(), func(t types.ServerSideEncryption) bool {
				return strings.EqualFold(string(t), v)
			})
			if i < 0 {
				return nil, fmt.Errorf("invalid value for \"ssetype\": %q (use AES256, aws:kms or aws:kms:dsse)", v)
			}
			bucketOpts.EncryptionType = types.ServerSideEncryption("").Values()[i]
		case k == "kmskeyid":
			bucketOpts.KMSEncryptionID = v
		default:
			return nil, fmt.Errorf("unsupported query parameter %q for an s3:// destination", k)
		}
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, cfgQuery)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: add ?region=... to the URL or set AWS_REGION")
	}
	// Destination retries whole operations itself; SDK retries inside
	// them would multiply the attempts and the waiting.
	// Objects uploaded in parts have no whole-object checksum to validate
	// on download; the SDK would log a warning for each.
	s3Opts = append(s3Opts, func(o *s3.Options) {
		o.RetryMaxAttempts = 1
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	bucketOpts.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	return s3blob.OpenBucket(ctx, s3.NewFromConfig(cfg, s3Opts...), name, &bucketOpts)
}

// String returns the destination's URL without credentials.
func (d *Destination) String() string { return d.redacted }

// Put writes data to the object name, replacing it atomically if it exists,
// and checks afterwards that the stored object has the right size.
func (d *Destination) Put(ctx context.Context, name string, data []byte) error {
	if err := checkName(name); err != nil {
		return d.errorf("put", name, err)
	}
	// No ContentMD5: S3 multipart uploads cannot use it. The AWS SDK adds
	// a CRC32 checksum of its own, which the server checks.
	opts := &blob.WriterOptions{
		ContentType: "application/octet-stream",
		BeforeWrite: func(as func(any) bool) error {
			// fileblob: the file is readable by its owner only.
			var f *os.File
			if as(&f) {
				return f.Chmod(0o600)
			}
			return nil
		},
	}
	err := d.do(ctx, func(ctx context.Context) error {
		if err := d.bucket.WriteAll(ctx, name, data, opts); err != nil {
			return err
		}
		attrs, err := d.bucket.Attributes(ctx, name)
		if err != nil {
			return err
		}
		if attrs.Size != int64(len(data)) {
			return &sizeMismatchError{got: attrs.Size, want: int64(len(data))}
		}
		return nil
	})
	return d.errorf("put", name, err)
}

// Get returns the content of the object name.
func (d *Destination) Get(ctx context.Context, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, d.errorf("get", name, err)
	}
	var data []byte
	err := d.do(ctx, func(ctx context.Context) error {
		var err error
		data, err = d.bucket.ReadAll(ctx, name)
		return err
	})
	if err != nil {
		return nil, d.errorf("get", name, err)
	}
	return data, nil
}

// ErrObjectTooLarge is returned by GetMax for an object above its limit.
var ErrObjectTooLarge = errors.New("object larger than expected")

// GetMax is Get for objects read before they are authenticated (manifests,
// ledgers, chunks): it refuses to read more than max bytes, so a hostile
// destination cannot exhaust memory.
func (d *Destination) GetMax(ctx context.Context, name string, max int64) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, d.errorf("get", name, err)
	}
	var data []byte
	err := d.do(ctx, func(ctx context.Context) error {
		r, err := d.bucket.NewReader(ctx, name, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		data, err = io.ReadAll(io.LimitReader(r, max+1))
		if err != nil {
			return err
		}
		if int64(len(data)) > max {
			return ErrObjectTooLarge
		}
		return nil
	})
	if err != nil {
		return nil, d.errorf("get", name, err)
	}
	return data, nil
}

// Size returns the size in bytes of the object name.
func (d *Destination) Size(ctx context.Context, name string) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, d.errorf("size of", name, err)
	}
	var size int64
	err := d.do(ctx, func(ctx context.Context) error {
		attrs, err := d.bucket.Attributes(ctx, name)
		if err != nil {
			return err
		}
		size = attrs.Size
		return nil
	})
	if err != nil {
		return 0, d.errorf("size of", name, err)
	}
	return size, nil
}

// fileblobTemp matches the temporary files fileblob writes next to the
// final file before renaming them into place.
var fileblobTemp = regexp.MustCompile(`\.[0-9a-f]+\.tmp$`)

// List returns the names of all objects whose names start with prefix
// (everything for ""), at any depth, sorted.
func (d *Destination) List(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	err := d.do(ctx, func(ctx context.Context) error {
		names = names[:0]
		it := d.bucket.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if obj.IsDir || (d.isFile && (fileblobTemp.MatchString(obj.Key) || strings.HasSuffix(obj.Key, ".attrs"))) {
				continue
			}
			names = append(names, obj.Key)
		}
	})
	if err != nil {
		return nil, d.errorf("list", prefix, err)
	}
	slices.Sort(names)
	return names, nil
}

// ListDirs returns the "subdirectories" immediately under prefix: the
// distinct names of the form prefix+"x" such that some object is named
// prefix+"x/...". They are full names (prefix included), without the
// trailing "/", sorted. A prefix normally ends in "/" (or is "" for the
// top level).
func (d *Destination) ListDirs(ctx context.Context, prefix string) ([]string, error) {
	var dirs []string
	err := d.do(ctx, func(ctx context.Context) error {
		dirs = dirs[:0]
		it := d.bucket.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if obj.IsDir {
				dirs = append(dirs, strings.TrimSuffix(obj.Key, "/"))
			}
		}
	})
	if err != nil {
		return nil, d.errorf("list directories under", prefix, err)
	}
	slices.Sort(dirs)
	return dirs, nil
}

// Delete deletes the object name. Deleting an absent object is not an
// error.
func (d *Destination) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return d.errorf("delete", name, err)
	}
	err := d.do(ctx, func(ctx context.Context) error {
		err := d.bucket.Delete(ctx, name)
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil
		}
		return err
	})
	return d.errorf("delete", name, err)
}

// Close releases the destination's resources.
func (d *Destination) Close() error {
	if err := d.bucket.Close(); err != nil {
		return fmt.Errorf("backup destination %s: close: %w", d.redacted, err)
	}
	return nil
}

// checkName refuses object names that different backends would treat
// differently.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return errors.New("invalid object name: empty, or starts or ends with \"/\"")
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errors.New("invalid object name: empty, \".\" or \"..\" segment")
		}
	}
	return nil
}

// errorf wraps a failed operation's error with the destination and the
// object name, adding ErrObjectMissing to NotFound errors. It returns nil
// for nil.
func (d *Destination) errorf(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("backup destination %s: %s %q: %w: %w", d.redacted, op, name, ErrObjectMissing, err)
	}
	return fmt.Errorf("backup destination %s: %s %q: %w", d.redacted, op, name, err)
}

type sizeMismatchError struct{ got, want int64 }

func (e *sizeMismatchError) Error() string {
	return fmt.Sprintf("stored object has %d bytes, wrote %d", e.got, e.want)
}

// do runs op until it succeeds, fails permanently, the attempts are used
// up or ctx is done. The error after several attempts says how many.
func (d *Destination) do(ctx context.Context, op func(context.Context) error) error {
	p := d.retry
	delay := p.minDelay
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !transient(err) {
			return err
		}
		if attempt >= p.attempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		// Sleep between delay/2 and delay ("equal jitter").
		sleep := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %d attempts; last error: %v)", ctx.Err(), attempt, err)
		case <-t.C:
		}
		delay = min(2*delay, p.maxDelay)
	}
}

// transient reports whether err may go away by trying again.
func transient(err error) bool {
	var sm *sizeMismatchError
	if errors.As(err, &sm) {
		return true
	}
	if errors.Is(err, ErrObjectTooLarge) {
		return false
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound, gcerrors.AlreadyExists, gcerrors.InvalidArgument,
		gcerrors.PermissionDenied, gcerrors.FailedPrecondition, gcerrors.Unimplemented,
		gcerrors.Canceled:
		return false
	}
	return true
}

package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/custos/custos/internal/store"
)

// Checkpoint is a signed statement that the trail's event Seq had chain hash
// Hash at time At. Checkpoints live outside the database (a file in the data
// directory, optionally copied to syslog or a webhook), so someone who can
// rewrite the database cannot rewrite what they vouch for, nor cut the tail
// they cover.
type Checkpoint struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"` // hex
	At   time.Time `json:"at"`
	// BaseSeq and BaseHash are where the trail began when this was signed
	// (the prune mark: 0 and the zero hash before any prune), so a prune
	// mark moved without a signed prune is caught.
	BaseSeq  int64  `json:"base_seq"`
	BaseHash string `json:"base_hash"`
	Key      string `json:"key"` // KeyID of the signing key
	Sig      string `json:"sig"` // base64 Ed25519 signature of message()
}

// message is what a checkpoint signs.
func (c Checkpoint) message() ([]byte, error) {
	h, err := hex.DecodeString(c.Hash)
	if err != nil || len(h) != sha256.Size {
		return nil, fmt.Errorf("checkpoint %d: malformed hash", c.Seq)
	}
	bh, err := hex.DecodeString(c.BaseHash)
	if err != nil || len(bh) != sha256.Size {
		return nil, fmt.Errorf("checkpoint %d: malformed base hash", c.Seq)
	}
	m := []byte("custos.audit.checkpoint.v2\x00")
	m = binary.BigEndian.AppendUint64(m, uint64(c.Seq))
	m = append(m, h...)
	m = binary.BigEndian.AppendUint64(m, uint64(c.At.UnixMicro()))
	m = binary.BigEndian.AppendUint64(m, uint64(c.BaseSeq))
	m = append(m, bh...)
	return m, nil
}

// vouchesForBase reports whether c says the trail began after (seq, hash).
func (c Checkpoint) vouchesForBase(seq int64, hash []byte) bool {
	return c.BaseSeq == seq && c.BaseHash == hex.EncodeToString(hash)
}

// KeyID names a public key: the hex of the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign returns a checkpoint of (seq, hash) over a trail beginning after
// (baseSeq, baseHash), at time at, signed by s (an Ed25519 key; any
// crypto.Signer with an Ed25519 public key, such as an HSM, will do).
func Sign(s crypto.Signer, seq int64, hash []byte, baseSeq int64, baseHash []byte, at time.Time) (Checkpoint, error) {
	pub, ok := s.Public().(ed25519.PublicKey)
	if !ok {
		return Checkpoint{}, errors.New("audit: the checkpoint signer is not an Ed25519 key")
	}
	c := Checkpoint{Seq: seq, Hash: hex.EncodeToString(hash), At: at.UTC().Truncate(time.Microsecond),
		BaseSeq: baseSeq, BaseHash: hex.EncodeToString(baseHash), Key: KeyID(pub)}
	m, err := c.message()
	if err != nil {
		return Checkpoint{}, err
	}
	sig, err := s.Sign(rand.Reader, m, crypto.Hash(0))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	c.Sig = base64.StdEncoding.EncodeToString(sig)
	return c, nil
}

// Check verifies c's signature against the trusted keys.
func (c Checkpoint) Check(trusted []ed25519.PublicKey) error {
	m, err := c.message()
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil {
		return fmt.Errorf("checkpoint %d: malformed signature", c.Seq)
	}
	for _, k := range trusted {
		if KeyID(k) == c.Key {
			if !ed25519.Verify(k, m, sig) {
				return fmt.Errorf("checkpoint %d: the signature does not match (forged or altered checkpoint)", c.Seq)
			}
			return nil
		}
	}
	return fmt.Errorf("checkpoint %d: signed by key %s, which is not trusted here", c.Seq, c.Key)
}

// LoadOrCreateKey reads the checkpoint signing key at path (PKCS#8 PEM,
// mode 0600), creating one when the file does not exist.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, bool, error) {
	k, err := LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process created it first
		k, err := LoadKey(path)
		return k, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("audit: create signing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return nil, false, err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	return priv, true, nil
}

// LoadKey reads a checkpoint signing key.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: signing key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: signing key %s: not an Ed25519 key", path)
	}
	return ek, nil
}

// LoadPublicKey reads a PEM public key (as written by WritePublicKey) or a
// private key file, returning its public half.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("audit: public key %s: not PEM", path)
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: public key %s: %w", path, err)
		}
		if ek, ok := k.(ed25519.PublicKey); ok {
			return ek, nil
		}
		return nil, fmt.Errorf("audit: public key %s: not an Ed25519 key", path)
	case "PRIVATE KEY":
		k, err := LoadKey(path)
		if err != nil {
			return nil, err
		}
		return k.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("audit: public key %s: unexpected PEM block %q", path, blk.Type)
}

// PublicKeyPEM encodes pub for auditors who verify without the private key.
func PublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// CheckpointLog is the append-only file of checkpoints, one JSON object per
// line. Several processes (the server and a CLI command) may append to it:
// each line is one write on a file opened with O_APPEND.
type CheckpointLog struct{ Path string }

// Append adds c to the log and syncs it to disk.
func (l CheckpointLog) Append(c Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.Path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: checkpoint log: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: checkpoint log: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: checkpoint log: %w", err)
	}
	return f.Close()
}

// Tail returns the checkpoints in the last maxBytes of the log.
func (l CheckpointLog) Tail(maxBytes int64) ([]Checkpoint, error) {
	f, err := os.Open(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(0, st.Size()-maxBytes)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("audit: checkpoint log: %w", err)
	}
	if off > 0 { // drop the partial first line
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	var out []Checkpoint
	for _, line := range bytes.Split(b, []byte("\n")) {
		var c Checkpoint
		if json.Unmarshal(line, &c) == nil && c.Sig != "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// Read returns every checkpoint in the log (none when it does not exist). A
// last line cut short by a crash is ignored; any other unreadable line is an
// error, since the log is evidence.
func (l CheckpointLog) Read() ([]Checkpoint, error) {
	b, err := os.ReadFile(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint log: %w", err)
	}
	var out []Checkpoint
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c Checkpoint
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			if line == bytes.Count(b, []byte("\n"))+1 && !bytes.HasSuffix(b, []byte("\n")) {
				break // torn final write
			}
			return nil, fmt.Errorf("audit: checkpoint log %s line %d: %v", l.Path, line, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// Publisher receives each checkpoint written (a copy kept by another system:
// syslog, a webhook). Publishing is best effort: the file is the record.
type Publisher interface {
	Publish(ctx context.Context, c Checkpoint) error
}

// Checkpointer signs the chain head and appends it to the log.
type Checkpointer struct {
	DB      *store.DB
	Signer  crypto.Signer
	Log     CheckpointLog
	Now     func() time.Time
	Publish []Publisher
	// OnPublishError is told about a publisher that failed (may be nil).
	OnPublishError func(error)
	// Trust adds public keys whose checkpoints count (other nodes' keys).
	Trust []ed25519.PublicKey

	mu       sync.Mutex
	last     int64  // seq of the last trusted checkpoint written or read
	lastHash []byte // its hash
	lastBase int64  // and the prune mark it vouched for
}

// TamperError is returned by Checkpoint when the events since the last
// checkpoint do not verify: nothing is signed over them.
type TamperError struct{ Report Report }

func (e *TamperError) Error() string {
	return fmt.Sprintf("%v: %s", ErrTampered, e.Report.Problem)
}

func (e *TamperError) Unwrap() error { return ErrTampered }

// Last returns the sequence number of the last checkpoint known to c.
func (c *Checkpointer) Last() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Load reads the checkpoints of the log and of the database (copies from
// every node) and remembers the highest one with a trusted signature.
func (c *Checkpointer) Load(ctx context.Context) ([]Checkpoint, error) {
	cps, err := LoadCheckpoints(ctx, c.DB, c.Log)
	if err != nil {
		return nil, err
	}
	c.remember(cps)
	return cps, nil
}

// Refresh reads only the latest checkpoints (the end of the log and the
// newest copies in the database) and remembers the highest trusted one: what
// opening a node and signing the next checkpoint need, at a cost that does
// not grow with the trail.
func (c *Checkpointer) Refresh(ctx context.Context) error {
	cps, err := c.recent(ctx)
	if err != nil {
		return err
	}
	c.remember(cps)
	return nil
}

// recent returns the checkpoints at the end of the log and the newest
// copies in the database.
func (c *Checkpointer) recent(ctx context.Context) ([]Checkpoint, error) {
	cps, err := c.Log.Tail(64 << 10)
	if err != nil {
		return nil, err
	}
	var bodies []string
	if err := c.DB.Read(ctx, func(tx *store.Tx) error {
		var err error
		bodies, err = tx.AuditCheckpoints(ctx, 200)
		return err
	}); err != nil {
		return nil, err
	}
	// An unreadable copy is passed over here; full verification reports it.
	copies, _ := parseCheckpoints(bodies)
	return append(cps, copies...), nil
}

// parseCheckpoints reads the database copies of checkpoints: every readable
// one, and an error naming the first that is not.
func parseCheckpoints(bodies []string) ([]Checkpoint, error) {
	out := make([]Checkpoint, 0, len(bodies))
	var bad error
	for _, b := range bodies {
		var cp Checkpoint
		if err := json.Unmarshal([]byte(b), &cp); err != nil {
			if bad == nil {
				bad = fmt.Errorf("audit: a checkpoint copy in the database is unreadable: %v", err)
			}
			continue
		}
		out = append(out, cp)
	}
	return out, bad
}

// remember keeps the highest checkpoint of cps whose signature is trusted
// (checking signatures from the highest down, so only a few are checked).
func (c *Checkpointer) remember(cps []Checkpoint) {
	sorted := slices.Clone(cps)
	slices.SortFunc(sorted, func(a, b Checkpoint) int { return cmp.Compare(b.Seq, a.Seq) })
	trusted := c.Trusted()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cp := range sorted {
		if cp.Seq <= c.last {
			return
		}
		if cp.Check(trusted) == nil {
			c.last, c.lastBase = cp.Seq, cp.BaseSeq
			c.lastHash, _ = hex.DecodeString(cp.Hash)
			return
		}
	}
}

// vouchedRecently reports whether one of the latest trusted checkpoints
// vouches for the prune mark (baseSeq, baseHash).
func (c *Checkpointer) vouchedRecently(ctx context.Context, baseSeq int64, baseHash []byte) (bool, error) {
	cps, err := c.recent(ctx)
	if err != nil {
		return false, err
	}
	return vouched(cps, c.Trusted(), baseSeq, baseHash), nil
}

// LoadCheckpoints returns the checkpoints in the log file and the copies in
// the database, each once.
func LoadCheckpoints(ctx context.Context, db *store.DB, log CheckpointLog) ([]Checkpoint, error) {
	cps, err := log.Read()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, cp := range cps {
		seen[cp.Sig] = true
	}
	var bodies []string
	if err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		bodies, err = tx.AuditCheckpoints(ctx, 0)
		return err
	}); err != nil {
		return nil, err
	}
	copies, err := parseCheckpoints(bodies)
	if err != nil {
		return nil, err
	}
	for _, cp := range copies {
		if !seen[cp.Sig] {
			seen[cp.Sig] = true
			cps = append(cps, cp)
		}
	}
	return cps, nil
}

// Checkpoint signs the current chain head when it moved past the last
// checkpoint, and reports whether it wrote one.
func (c *Checkpointer) Checkpoint(ctx context.Context) (Checkpoint, bool, error) {
	var h store.AuditHead
	if err := c.DB.Read(ctx, func(tx *store.Tx) error {
		var err error
		h, err = tx.AuditHead(ctx)
		return err
	}); err != nil {
		return Checkpoint{}, false, err
	}
	c.mu.Lock()
	last, lastHash, lastBase := c.last, c.lastHash, c.lastBase
	c.mu.Unlock()
	if h.Seq == 0 || h.Seq <= last {
		return Checkpoint{}, false, nil
	}
	if h.BaseSeq != lastBase {
		// The prune mark moved since our last checkpoint: only a prune
		// that signed the new mark (on any node we trust) may move it.
		ok, err := c.vouchedRecently(ctx, h.BaseSeq, h.BaseHash)
		if err != nil {
			return Checkpoint{}, false, err
		}
		if !ok {
			return Checkpoint{}, false, &TamperError{Report: Report{Problem: &Problem{Seq: 1, Kind: Deleted,
				Detail: fmt.Sprintf("the trail now begins after event %d, but no signed checkpoint vouches for that prune", h.BaseSeq)}}}
		}
		c.mu.Lock()
		last, lastHash = c.last, c.lastHash
		c.mu.Unlock()
		if last < h.BaseSeq {
			last, lastHash = h.BaseSeq, h.BaseHash
		}
	}
	// Never sign over tampering: the events since the last checkpoint must
	// chain from it.
	rep, err := Verify(ctx, c.DB, VerifyOptions{From: last + 1, Anchor: lastHash})
	if err != nil {
		return Checkpoint{}, false, err
	}
	if !rep.OK() {
		return Checkpoint{}, false, &TamperError{Report: rep}
	}
	if rep.Events == 0 {
		return Checkpoint{}, false, nil
	}
	hash, err := hex.DecodeString(rep.LastHash)
	if err != nil {
		return Checkpoint{}, false, err
	}
	cp, err := c.Write(ctx, rep.Last, hash, h.BaseSeq, h.BaseHash)
	return cp, err == nil, err
}

// vouched reports whether a trusted checkpoint vouches for the prune mark
// (baseSeq, baseHash); the start of the trail (0) needs none.
func vouched(cps []Checkpoint, trusted []ed25519.PublicKey, baseSeq int64, baseHash []byte) bool {
	if baseSeq == 0 {
		return true
	}
	for _, cp := range cps {
		if cp.vouchesForBase(baseSeq, baseHash) && cp.Check(trusted) == nil {
			return true
		}
	}
	return false
}

// Write signs (seq, hash) over a trail beginning after (baseSeq, baseHash),
// appends it to the log, keeps a copy in the database and publishes it.
func (c *Checkpointer) Write(ctx context.Context, seq int64, hash []byte, baseSeq int64, baseHash []byte) (Checkpoint, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp, err := Sign(c.Signer, seq, hash, baseSeq, baseHash, now())
	if err != nil {
		return Checkpoint{}, err
	}
	body, err := json.Marshal(cp)
	if err != nil {
		return Checkpoint{}, err
	}
	c.mu.Lock()
	if err := c.Log.Append(cp); err != nil {
		c.mu.Unlock()
		return Checkpoint{}, err
	}
	if seq > c.last {
		c.last, c.lastHash, c.lastBase = seq, hash, baseSeq
	}
	c.mu.Unlock()
	if err := c.DB.Write(ctx, func(tx *store.Tx) error { return tx.InsertAuditCheckpoint(ctx, seq, string(body)) }); err != nil {
		return cp, fmt.Errorf("audit: checkpoint copy: %w", err)
	}
	for _, p := range c.Publish {
		if err := p.Publish(ctx, cp); err != nil && c.OnPublishError != nil {
			c.OnPublishError(err)
		}
	}
	return cp, nil
}

// Trusted returns the public key of c's signer and the keys in Trust.
func (c *Checkpointer) Trusted() []ed25519.PublicKey {
	out := append([]ed25519.PublicKey(nil), c.Trust...)
	if pub, ok := c.Signer.Public().(ed25519.PublicKey); ok {
		out = append(out, pub)
	}
	return out
}

// LoadTrustedDir reads the public keys (PEM files) in dir: the checkpoint
// keys of other nodes sharing the database. A missing dir is no keys.
func LoadTrustedDir(dir string) ([]ed25519.PublicKey, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ed25519.PublicKey
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".pem" {
			continue
		}
		k, err := LoadPublicKey(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

package backup

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// DefaultChunkSize is the default largest number of compressed bytes in one
// chunk.
const DefaultChunkSize = 8 << 20

const (
	chunkSaltSize  = 32
	chunkMaxSize   = 1 << 30
	chunkKeyInfo   = "custos backup chunks v1\x00"
	chunkAADPrefix = "custos-backup/1\x00"
	// chunkMaxWindow bounds the zstd window a reader accepts (the writer's
	// SpeedDefault uses 8 MiB), so a reader's memory stays bounded too.
	chunkMaxWindow = 64 << 20
)

// ChunkInfo describes one stored chunk of a backup, as listed in the
// manifest.
type ChunkInfo struct {
	Name   string `json:"name"`   // "data-000001", "data-000002", ... (1-based, 6 digits minimum)
	Size   int64  `json:"size"`   // bytes of the sealed chunk (what is stored)
	Plain  int64  `json:"plain"`  // compressed bytes inside it
	SHA256 string `json:"sha256"` // hex SHA-256 of the sealed chunk
}

// Sealing is what seals and opens the chunks of one backup.
type Sealing struct {
	Key      Key
	BackupID string
	Salt     []byte // 32 random bytes per backup (NewSalt()), stored in the manifest
}

// NewSalt returns a fresh random salt for a backup's Sealing.
func NewSalt() ([]byte, error) {
	b := make([]byte, chunkSaltSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("backup salt: %w", err)
	}
	return b, nil
}

// chunkName is the object name of the chunk at index i (0-based).
func chunkName(i uint64) string {
	return fmt.Sprintf("data-%06d", i+1)
}

// chunkSealer seals and opens the chunks of one backup with AES-256-GCM under
// the backup's chunk key, HKDF-SHA256(backup key, salt, "custos backup chunks
// v1\x00" || backup id). The nonce is the chunk index (the key is used for
// this backup only); the AAD binds the backup id, the index and whether the
// chunk is the last one, so a chunk moved elsewhere, or a list missing its
// final chunk, fails to open.
type chunkSealer struct {
	aead     cipher.AEAD
	backupID string
}

func newChunkSealer(s Sealing) (*chunkSealer, error) {
	if s.Key.isZero() {
		return nil, errKeyUnset
	}
	if s.BackupID == "" || strings.ContainsRune(s.BackupID, 0) {
		return nil, fmt.Errorf("backup id %q is empty or holds a NUL byte", s.BackupID)
	}
	if len(s.Salt) != chunkSaltSize {
		return nil, fmt.Errorf("backup %s: salt must be %d bytes, got %d", s.BackupID, chunkSaltSize, len(s.Salt))
	}
	key, err := hkdf.Key(sha256.New, s.Key.b[:], s.Salt, chunkKeyInfo+s.BackupID, KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive chunk key: %w", err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &chunkSealer{aead: aead, backupID: s.BackupID}, nil
}

func (cs *chunkSealer) nonce(i uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], i)
	return n
}

func (cs *chunkSealer) aad(i uint64, last bool) []byte {
	mark := "more"
	if last {
		mark = "last"
	}
	return []byte(chunkAADPrefix + cs.backupID + "\x00" + strconv.FormatUint(i, 10) + "\x00" + mark)
}

func (cs *chunkSealer) seal(i uint64, last bool, plain []byte) []byte {
	return cs.aead.Seal(nil, cs.nonce(i), plain, cs.aad(i, last))
}

func (cs *chunkSealer) open(i uint64, last bool, sealed []byte) ([]byte, error) {
	return cs.aead.Open(nil, cs.nonce(i), sealed, cs.aad(i, last))
}

// newChunkEncoder returns the zstd encoder of backup streams. Zero frames
// makes an empty stream one (empty) frame too, so a reader can insist on
// exactly one frame.
func newChunkEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
	)
}

// Writer compresses, chunks and seals the plaintext stream of one backup,
// handing each sealed chunk to put. It is not safe for concurrent Write
// calls; Written may be called from any goroutine.
type Writer struct {
	ctx    context.Context // passed to put; cancelled on the first error and by Close
	cancel context.CancelFunc
	sealer *chunkSealer
	size   int
	enc    *zstd.Encoder

	pending []byte // compressed bytes of the chunk being filled, at most size
	next    uint64 // index of the next chunk to seal
	chunks  []ChunkInfo
	queue   chan writerChunk
	done    chan struct{} // closed when the uploader has returned

	errMu sync.Mutex
	err   error // the first error, returned by every later call

	written  atomic.Int64
	closed   bool
	closeErr error
	result   []ChunkInfo
}

type writerChunk struct {
	info   ChunkInfo
	sealed []byte
}

// writerSink receives the encoder's compressed output.
type writerSink struct{ w *Writer }

func (s writerSink) Write(p []byte) (int, error) { return s.w.absorb(p) }

// NewWriter returns a Writer for the plaintext stream of the backup that s
// seals. Chunks hold at most chunkSize compressed bytes (0 means
// DefaultChunkSize). put is called for each sealed chunk in order, from one
// background goroutine, while the next chunks are compressed; at most two
// sealed chunks wait for it, so memory stays bounded whatever the backup
// size: at most four sealed chunks (one in put, two queued, one waiting to
// be queued), the chunk being filled, and the zstd encoder's window. The
// first error of put stops the backup: later Write and Close calls return
// it. Close must be called, and returns once put has returned.
func NewWriter(ctx context.Context, s Sealing, chunkSize int, put func(ctx context.Context, c ChunkInfo, sealed []byte) error) (*Writer, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < 1 || chunkSize > chunkMaxSize {
		return nil, fmt.Errorf("backup chunk size %d is out of range (1 byte to 1 GiB)", chunkSize)
	}
	if put == nil {
		return nil, errors.New("backup writer needs a put function")
	}
	sealer, err := newChunkSealer(s)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		sealer:  sealer,
		size:    chunkSize,
		pending: make([]byte, 0, chunkSize),
		queue:   make(chan writerChunk, 2),
		done:    make(chan struct{}),
	}
	w.enc, err = newChunkEncoder(writerSink{w})
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	go w.upload(put)
	return w, nil
}

// upload runs put for each queued chunk until the queue is closed, put
// fails or the context ends.
func (w *Writer) upload(put func(ctx context.Context, c ChunkInfo, sealed []byte) error) {
	defer close(w.done)
	for {
		select {
		case c, ok := <-w.queue:
			if !ok {
				return
			}
			if err := put(w.ctx, c.info, c.sealed); err != nil {
				w.fail(fmt.Errorf("store chunk %s of backup %s: %w", c.info.Name, w.sealer.backupID, err))
				return
			}
		case <-w.ctx.Done():
			w.fail(context.Cause(w.ctx))
			return
		}
	}
}

// fail records err unless an error is already recorded, stops the uploader
// and returns the first error.
func (w *Writer) fail(err error) error {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	err = w.err
	w.errMu.Unlock()
	w.cancel()
	return err
}

// failure returns the first error, if any.
func (w *Writer) failure() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// Write compresses p into the backup stream.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("backup writer is closed")
	}
	if err := w.failure(); err != nil {
		return 0, err
	}
	n, err := w.enc.Write(p)
	w.written.Add(int64(n))
	if err != nil {
		return n, w.fail(err)
	}
	return n, nil
}

// absorb takes compressed bytes from the encoder. A full chunk is sealed only
// when more bytes arrive, for only then is it known not to be the last one.
func (w *Writer) absorb(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if len(w.pending) == w.size {
			if err := w.emit(false); err != nil {
				return n, err
			}
		}
		k := min(w.size-len(w.pending), len(p))
		w.pending = append(w.pending, p[:k]...)
		p = p[k:]
		n += k
	}
	return n, nil
}

// emit seals the pending bytes as the next chunk and queues it for put.
func (w *Writer) emit(last bool) error {
	if err := w.failure(); err != nil {
		return err
	}
	i := w.next
	sealed := w.sealer.seal(i, last, w.pending)
	sum := sha256.Sum256(sealed)
	info := ChunkInfo{
		Name:   chunkName(i),
		Size:   int64(len(sealed)),
		Plain:  int64(len(w.pending)),
		SHA256: hex.EncodeToString(sum[:]),
	}
	w.pending = w.pending[:0]
	w.next++
	select {
	case w.queue <- writerChunk{info: info, sealed: sealed}:
	case <-w.done:
		return w.fail(errors.New("backup uploader stopped"))
	case <-w.ctx.Done():
		return w.fail(context.Cause(w.ctx))
	}
	w.chunks = append(w.chunks, info)
	return nil
}

// Close flushes the stream, seals the last chunk (an empty stream still
// gives one), waits for put to store every chunk and returns the first
// error. Calling it again returns the same result.
func (w *Writer) Close() error {
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	err := w.enc.Close()
	if err == nil {
		err = w.emit(true)
	}
	close(w.queue)
	<-w.done
	if f := w.failure(); f != nil {
		err = f
	}
	w.cancel()
	if err != nil {
		w.closeErr = w.fail(err)
		return w.closeErr
	}
	w.result = w.chunks
	return nil
}

// Chunks lists the stored chunks in order, once Close has succeeded (nil
// otherwise).
func (w *Writer) Chunks() []ChunkInfo { return slices.Clone(w.result) }

// Written reports the plaintext bytes written so far, for progress.
func (w *Writer) Written() int64 { return w.written.Load() }

// NewReader returns the plaintext stream of the backup that s seals, stored
// as chunks (in order). fetch returns a chunk's stored bytes by name. Each
// chunk is checked against its size and hash, opened, and fed to the zstd
// decoder; the next chunk is fetched in the background (at most one ahead).
// The stream must be exactly one zstd frame: one that ends early or has more
// data after its end is an error. Close must be called.
func NewReader(ctx context.Context, s Sealing, chunks []ChunkInfo, fetch func(ctx context.Context, name string) ([]byte, error)) (io.ReadCloser, error) {
	sealer, err := newChunkSealer(s)
	if err != nil {
		return nil, err
	}
	if len(chunks) == 0 {
		return nil, fmt.Errorf("backup %s lists no chunks", s.BackupID)
	}
	if fetch == nil {
		return nil, errors.New("backup reader needs a fetch function")
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan openedChunk)
	feed := &chunkFeed{ctx: ctx, backupID: s.BackupID, in: ch, left: len(chunks)}
	frame := &zstdOneFrame{src: feed}
	dec, err := zstd.NewReader(frame,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(chunkMaxWindow),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	r := &chunkReader{backupID: s.BackupID, feed: feed, frame: frame, dec: dec, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		prefetchChunks(ctx, sealer, slices.Clone(chunks), fetch, ch)
	}()
	return r, nil
}

type openedChunk struct {
	plain []byte
	err   error
}

// prefetchChunks fetches, checks and opens the chunks in order, handing each
// to out (unbuffered: one chunk ahead of the reader at most). It stops at the
// first error, after handing it on.
func prefetchChunks(ctx context.Context, cs *chunkSealer, chunks []ChunkInfo, fetch func(ctx context.Context, name string) ([]byte, error), out chan<- openedChunk) {
	defer close(out)
	for i, c := range chunks {
		plain, err := openChunk(ctx, cs, uint64(i), i == len(chunks)-1, c, fetch)
		select {
		case out <- openedChunk{plain: plain, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func openChunk(ctx context.Context, cs *chunkSealer, i uint64, last bool, c ChunkInfo, fetch func(ctx context.Context, name string) ([]byte, error)) ([]byte, error) {
	sealed, err := fetch(ctx, c.Name)
	if err != nil {
		return nil, fmt.Errorf("fetch chunk %s of backup %s: %w", c.Name, cs.backupID, err)
	}
	if int64(len(sealed)) != c.Size {
		return nil, fmt.Errorf("chunk %s of backup %s is damaged (size mismatch: %d bytes, expected %d)", c.Name, cs.backupID, len(sealed), c.Size)
	}
	want, err := hex.DecodeString(c.SHA256)
	sum := sha256.Sum256(sealed)
	if err != nil || !bytes.Equal(sum[:], want) {
		return nil, fmt.Errorf("chunk %s of backup %s is damaged (hash mismatch)", c.Name, cs.backupID)
	}
	plain, err := cs.open(i, last, sealed)
	if err != nil {
		return nil, fmt.Errorf("chunk %s of backup %s does not open: wrong key, or the chunk was altered or moved", c.Name, cs.backupID)
	}
	if int64(len(plain)) != c.Plain {
		return nil, fmt.Errorf("chunk %s of backup %s holds %d compressed bytes, the manifest says %d", c.Name, cs.backupID, len(plain), c.Plain)
	}
	return plain, nil
}

// chunkFeed is the compressed stream: the opened chunks, one after another.
type chunkFeed struct {
	ctx      context.Context
	backupID string
	in       <-chan openedChunk
	left     int // chunks not yet received
	cur      []byte
	err      error // sticky: a chunk's error, or io.EOF after the last chunk
}

func (f *chunkFeed) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		c, ok := <-f.in
		switch {
		case !ok && f.left == 0:
			f.err = io.EOF
		case !ok: // the prefetcher stopped early: the context ended
			f.err = fmt.Errorf("read backup %s: %w", f.backupID, context.Cause(f.ctx))
		case c.err != nil:
			f.err = c.err
		default:
			f.cur = c.plain
			f.left--
		}
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// chunkFailure returns the error that ended the feed, other than io.EOF.
func (f *chunkFeed) chunkFailure() error {
	if f.err == io.EOF {
		return nil
	}
	return f.err
}

// chunkReader is the plaintext stream of a backup.
type chunkReader struct {
	backupID string
	feed     *chunkFeed
	frame    *zstdOneFrame
	dec      *zstd.Decoder
	cancel   context.CancelFunc
	done     chan struct{} // closed when the prefetcher has returned
	err      error
	closed   bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("backup reader is closed")
	}
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.dec.Read(p)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF) && r.frame.complete():
		r.err = io.EOF
	case r.feed.chunkFailure() != nil:
		r.err = r.feed.chunkFailure()
	case errors.Is(err, io.EOF):
		r.err = fmt.Errorf("backup %s: %w", r.backupID, errZstdStreamShort)
	default:
		r.err = fmt.Errorf("decompress backup %s: %w", r.backupID, err)
	}
	return n, r.err
}

// Close stops the prefetcher and waits for it.
func (r *chunkReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	<-r.done
	r.dec.Close()
	return nil
}

var (
	errZstdStreamShort = errors.New("the compressed stream ends early")
	errZstdStreamExtra = errors.New("data follows the end of the compressed stream")
)

// zstdOneFrame passes a zstd stream through from src while following its
// framing (RFC 8878 §3.1.1), to insist on exactly one frame: the zstd decoder
// itself reads concatenated frames as one stream and skips skippable ones.
// It checks only the frame and block boundaries; the decoder checks the rest.
type zstdOneFrame struct {
	src io.Reader

	state    int
	buf      [5]byte // fixed header bytes being collected
	got      int     // bytes collected in buf
	skip     int64   // bytes left to pass in zfSkip
	after    int     // state after zfSkip
	last     bool    // the current block is the frame's last
	checksum bool    // the frame ends with a 4-byte checksum
	err      error
}

const (
	zfHeader      = iota // collecting magic number and frame header descriptor
	zfBlockHeader        // collecting a 3-byte block header
	zfSkip               // passing skip bytes, then state after
	zfDone               // the frame has ended
)

// complete reports whether the frame ended and nothing followed it.
func (f *zstdOneFrame) complete() bool {
	return f.state == zfDone && (f.err == nil || f.err == io.EOF)
}

func (f *zstdOneFrame) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.src.Read(p)
	if ferr := f.observe(p[:n]); ferr != nil {
		f.err = ferr
		return 0, ferr
	}
	if err == io.EOF && f.state != zfDone {
		err = errZstdStreamShort
	}
	if err != nil {
		f.err = err
	}
	return n, err
}

// observe advances the framing state over b.
func (f *zstdOneFrame) observe(b []byte) error {
	for len(b) > 0 {
		switch f.state {
		case zfDone:
			return errZstdStreamExtra
		case zfSkip:
			k := min(f.skip, int64(len(b)))
			b = b[k:]
			f.skip -= k
			if f.skip == 0 {
				f.state = f.after
			}
		case zfHeader, zfBlockHeader:
			want := 5
			if f.state == zfBlockHeader {
				want = 3
			}
			k := copy(f.buf[f.got:want], b)
			b = b[k:]
			f.got += k
			if f.got < want {
				continue
			}
			f.got = 0
			var err error
			if f.state == zfHeader {
				err = f.zfHeaderDone()
			} else {
				err = f.blockHeaderDone()
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *zstdOneFrame) zfHeaderDone() error {
	if [4]byte(f.buf[:4]) != [4]byte{0x28, 0xb5, 0x2f, 0xfd} {
		return errors.New("the compressed stream does not start with a zstd frame")
	}
	fhd := f.buf[4]
	single := fhd&0x20 != 0
	f.checksum = fhd&0x04 != 0
	rest := int64([4]int{0, 1, 2, 4}[fhd&0x03]) // dictionary id
	switch fcs := fhd >> 6; {
	case fcs == 0 && single:
		rest++
	case fcs > 0:
		rest += 1 << fcs
	}
	if !single {
		rest++ // window descriptor
	}
	f.passThen(rest, zfBlockHeader)
	return nil
}

func (f *zstdOneFrame) blockHeaderDone() error {
	h := uint32(f.buf[0]) | uint32(f.buf[1])<<8 | uint32(f.buf[2])<<16
	f.last = h&1 != 0
	size := int64(h >> 3)
	switch (h >> 1) & 3 {
	case 1: // RLE: one byte, repeated
		size = 1
	case 3:
		return errors.New("the compressed stream holds a reserved zstd block type")
	}
	if !f.last {
		f.passThen(size, zfBlockHeader)
		return nil
	}
	if f.checksum {
		size += 4
	}
	f.passThen(size, zfDone)
	return nil
}

func (f *zstdOneFrame) passThen(n int64, next int) {
	if n == 0 {
		f.state = next
		return
	}
	f.state, f.skip, f.after = zfSkip, n, next
}

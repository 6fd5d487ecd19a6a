package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"
)

func chunksTestSealing(t testing.TB, id string) Sealing {
	t.Helper()
	salt, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	return Sealing{Key: cryptTestKey(t), BackupID: id, Salt: salt}
}

// chunksTestStore is an in-memory destination.
type chunksTestStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    []ChunkInfo
	fetches atomic.Int64
}

func newChunksTestStore() *chunksTestStore {
	return &chunksTestStore{objects: map[string][]byte{}}
}

func (s *chunksTestStore) put(_ context.Context, c ChunkInfo, sealed []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[c.Name] = bytes.Clone(sealed)
	s.puts = append(s.puts, c)
	return nil
}

func (s *chunksTestStore) fetch(_ context.Context, name string) ([]byte, error) {
	s.fetches.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[name]
	if !ok {
		return nil, fmt.Errorf("object %s not found", name)
	}
	return bytes.Clone(b), nil
}

func chunksTestRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// chunksTestText is compressible data.
func chunksTestText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "customer %d, Jane Doe, +44 20 7946 %04d, jane%d@example.com\n", i, i%10000, i)
	}
	return b.Bytes()[:n]
}

// chunksTestWrite writes data as one backup in pieces of varying size.
func chunksTestWrite(t *testing.T, s Sealing, data []byte, chunkSize int) (*chunksTestStore, []ChunkInfo) {
	t.Helper()
	store := newChunksTestStore()
	w, err := NewWriter(context.Background(), s, chunkSize, store.put)
	if err != nil {
		t.Fatal(err)
	}
	rest := data
	pieces := []int{1, 7, 100, 4096, 65537, 256 << 10}
	for i := 0; len(rest) > 0; i++ {
		k := min(pieces[i%len(pieces)], len(rest))
		n, err := w.Write(rest[:k])
		if err != nil || n != k {
			t.Fatalf("Write = %d, %v; want %d", n, err, k)
		}
		rest = rest[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := w.Written(); got != int64(len(data)) {
		t.Fatalf("Written() = %d, want %d", got, len(data))
	}
	return store, w.Chunks()
}

func chunksTestRead(s Sealing, chunks []ChunkInfo, fetch func(context.Context, string) ([]byte, error)) ([]byte, error) {
	r, err := NewReader(context.Background(), s, chunks, fetch)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// chunksTestCompressedSize is the size of data compressed as a backup.
func chunksTestCompressedSize(t *testing.T, data []byte) int {
	t.Helper()
	var buf bytes.Buffer
	enc, err := newChunkEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

func TestChunkName(t *testing.T) {
	tests := []struct {
		index uint64
		want  string
	}{
		{0, "data-000001"},
		{1, "data-000002"},
		{41, "data-000042"},
		{999998, "data-999999"},
		{999999, "data-1000000"},
	}
	for _, tt := range tests {
		if got := chunkName(tt.index); got != tt.want {
			t.Errorf("chunkName(%d) = %q, want %q", tt.index, got, tt.want)
		}
	}
}

func TestWriterReaderRoundTrip(t *testing.T) {
	const small = 4 << 10
	// exact is random data whose compressed form is exactly three chunks.
	var exact []byte
	exactSize := 0
	for n := 10000; exactSize == 0; n++ {
		d := chunksTestRandom(n)
		if c := chunksTestCompressedSize(t, d); c%3 == 0 {
			exact, exactSize = d, c/3
		}
	}
	tests := []struct {
		name       string
		data       []byte
		chunkSize  int
		wantChunks int // 0: do not check the count
	}{
		{"empty", nil, small, 1},
		{"one byte", []byte{42}, small, 1},
		{"chunk size - 1, random", chunksTestRandom(small - 1), small, 0},
		{"chunk size - 1, text", chunksTestText(small - 1), small, 1},
		{"exactly three chunks", exact, exactSize, 3},
		{"text, many chunks", chunksTestText(3 << 20), 16 << 10, 0},
		{"random 5 MB, 64 KiB chunks", chunksTestRandom(5 << 20), 64 << 10, 0},
		{"default chunk size", chunksTestText(1 << 20), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := chunksTestSealing(t, "b-"+strings.ReplaceAll(tt.name, " ", "-"))
			store, chunks := chunksTestWrite(t, s, tt.data, tt.chunkSize)

			if tt.wantChunks > 0 && len(chunks) != tt.wantChunks {
				t.Errorf("%d chunks, want %d", len(chunks), tt.wantChunks)
			}
			if !slices.Equal(chunks, store.puts) {
				t.Fatalf("Chunks() = %+v,\nput received %+v", chunks, store.puts)
			}
			size := tt.chunkSize
			if size == 0 {
				size = DefaultChunkSize
			}
			var compressed int64
			for i, c := range chunks {
				if want := fmt.Sprintf("data-%06d", i+1); c.Name != want {
					t.Errorf("chunk %d is named %q, want %q", i, c.Name, want)
				}
				sealed := store.objects[c.Name]
				sum := sha256.Sum256(sealed)
				if c.Size != int64(len(sealed)) || c.SHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("chunk %s: info %+v does not describe the stored %d bytes", c.Name, c, len(sealed))
				}
				if c.Size != c.Plain+16 {
					t.Errorf("chunk %s: size %d, plain %d: want plain + 16", c.Name, c.Size, c.Plain)
				}
				last := i == len(chunks)-1
				if c.Plain > int64(size) || (!last && c.Plain != int64(size)) || (last && c.Plain == 0) {
					t.Errorf("chunk %s of %d holds %d compressed bytes (chunk size %d)", c.Name, len(chunks), c.Plain, size)
				}
				compressed += c.Plain
			}
			if want := chunksTestCompressedSize(t, tt.data); compressed != int64(want) {
				t.Errorf("chunks hold %d compressed bytes, the stream is %d", compressed, want)
			}

			got, err := chunksTestRead(s, chunks, store.fetch)
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Fatalf("read back %d bytes, wrote %d (or they differ)", len(got), len(tt.data))
			}
		})
	}
}

func TestReaderRejects(t *testing.T) {
	s := chunksTestSealing(t, "b-tamper")
	data := chunksTestRandom(300 << 10)
	store, chunks := chunksTestWrite(t, s, data, 64<<10)
	if len(chunks) < 4 {
		t.Fatalf("want at least 4 chunks, got %d", len(chunks))
	}
	flip := func(name string) func(context.Context, string) ([]byte, error) {
		return func(ctx context.Context, n string) ([]byte, error) {
			b, err := store.fetch(ctx, n)
			if n == name && err == nil {
				b[len(b)/2] ^= 0x01
			}
			return b, err
		}
	}
	other := func(mut func(*Sealing)) Sealing {
		o := s
		o.Salt = bytes.Clone(s.Salt)
		mut(&o)
		return o
	}
	tests := []struct {
		name    string
		sealing Sealing
		chunks  func() []ChunkInfo
		fetch   func(context.Context, string) ([]byte, error)
		want    string // in the error
	}{
		{
			name:  "byte flipped",
			fetch: flip("data-000002"),
			want:  "chunk data-000002 of backup b-tamper is damaged (hash mismatch)",
		},
		{
			name: "byte flipped, hash fixed",
			chunks: func() []ChunkInfo {
				c := slices.Clone(chunks)
				b := bytes.Clone(store.objects[c[2].Name])
				b[len(b)/2] ^= 0x01
				sum := sha256.Sum256(b)
				c[2].SHA256 = hex.EncodeToString(sum[:])
				return c
			},
			fetch: flip("data-000003"),
			want:  "chunk data-000003 of backup b-tamper does not open: wrong key, or the chunk was altered or moved",
		},
		{
			name: "two chunks swapped",
			chunks: func() []ChunkInfo {
				c := slices.Clone(chunks)
				c[0], c[1] = c[1], c[0]
				return c
			},
			want: "chunk data-000002 of backup b-tamper does not open",
		},
		{
			name:   "last chunk dropped",
			chunks: func() []ChunkInfo { return slices.Clone(chunks[:len(chunks)-1]) },
			want:   fmt.Sprintf("chunk %s of backup b-tamper does not open", chunks[len(chunks)-2].Name),
		},
		{
			name:   "only the last chunk",
			chunks: func() []ChunkInfo { return slices.Clone(chunks[len(chunks)-1:]) },
			want:   "does not open",
		},
		{
			name:    "wrong key",
			sealing: other(func(o *Sealing) { o.Key = cryptTestKey(t) }),
			want:    "chunk data-000001 of backup b-tamper does not open",
		},
		{
			name:    "another backup id",
			sealing: other(func(o *Sealing) { o.BackupID = "b-other" }),
			want:    "chunk data-000001 of backup b-other does not open",
		},
		{
			name:    "wrong salt",
			sealing: other(func(o *Sealing) { o.Salt[0] ^= 1 }),
			want:    "does not open",
		},
		{
			name: "size recorded wrong",
			chunks: func() []ChunkInfo {
				c := slices.Clone(chunks)
				c[1].Size++
				return c
			},
			want: "chunk data-000002 of backup b-tamper is damaged (size mismatch",
		},
		{
			name: "plain size recorded wrong",
			chunks: func() []ChunkInfo {
				c := slices.Clone(chunks)
				c[0].Plain--
				return c
			},
			want: "chunk data-000001 of backup b-tamper holds",
		},
		{
			name: "fetch fails",
			fetch: func(ctx context.Context, n string) ([]byte, error) {
				if n == "data-000003" {
					return nil, errors.New("bucket unreachable")
				}
				return store.fetch(ctx, n)
			},
			want: "fetch chunk data-000003 of backup b-tamper: bucket unreachable",
		},
		{
			name:   "no chunks",
			chunks: func() []ChunkInfo { return nil },
			want:   "lists no chunks",
		},
		{
			name:    "short salt",
			sealing: other(func(o *Sealing) { o.Salt = o.Salt[:16] }),
			want:    "salt must be 32 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			sealing, list, fetch := s, chunks, store.fetch
			if tt.sealing.BackupID != "" {
				sealing = tt.sealing
			}
			if tt.chunks != nil {
				list = tt.chunks()
			}
			if tt.fetch != nil {
				fetch = tt.fetch
			}
			got, err := chunksTestRead(sealing, list, fetch)
			if err == nil {
				t.Fatalf("read %d bytes without error, want %q", len(got), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
	// Control: the untouched backup reads back.
	if got, err := chunksTestRead(s, chunks, store.fetch); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("untouched backup: %d bytes, %v", len(got), err)
	}
}

// chunksTestSealRaw seals an arbitrary compressed stream as backup chunks,
// the way a Writer would.
func chunksTestSealRaw(t *testing.T, s Sealing, stream []byte, chunkSize int) (*chunksTestStore, []ChunkInfo) {
	t.Helper()
	cs, err := newChunkSealer(s)
	if err != nil {
		t.Fatal(err)
	}
	store := newChunksTestStore()
	var infos []ChunkInfo
	for i := 0; i == 0 || len(stream) > 0; i++ {
		k := min(chunkSize, len(stream))
		sealed := cs.seal(uint64(i), k == len(stream), stream[:k])
		sum := sha256.Sum256(sealed)
		c := ChunkInfo{Name: chunkName(uint64(i)), Size: int64(len(sealed)), Plain: int64(k), SHA256: hex.EncodeToString(sum[:])}
		if err := store.put(context.Background(), c, sealed); err != nil {
			t.Fatal(err)
		}
		infos = append(infos, c)
		stream = stream[k:]
	}
	return store, infos
}

func chunksTestFrame(t *testing.T, data []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReaderOneFrame(t *testing.T) {
	text := chunksTestText(200 << 10)
	frame := chunksTestFrame(t, text, zstd.WithEncoderCRC(true))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	tests := []struct {
		name   string
		stream []byte
		want   []byte // nil: an error is wanted
	}{
		{"one frame (control)", frame, text},
		{"one frame, no checksum (control)", chunksTestFrame(t, text, zstd.WithEncoderCRC(false)), text},
		{"one frame, single segment (control)", chunksTestFrame(t, []byte("short"), zstd.WithSingleSegment(true)), []byte("short")},
		{"empty frame (control)", chunksTestFrame(t, nil, zstd.WithZeroFrames(true)), []byte{}},
		{"no frame at all", nil, nil},
		{"two frames", cat(frame, chunksTestFrame(t, []byte("more"))), nil},
		{"frame and a skippable frame", cat(frame, skippable), nil},
		{"skippable frame first", cat(skippable, frame), nil},
		{"frame and garbage", cat(frame, []byte("garbage")), nil},
		{"frame and one zero byte", cat(frame, []byte{0}), nil},
		{"checksum cut", frame[:len(frame)-2], nil},
		{"last block cut", frame[:len(frame)-20], nil},
		{"half a frame", frame[:len(frame)/2], nil},
		{"header only", frame[:6], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1000, 7, len(tt.stream) + 1} {
				s := chunksTestSealing(t, "b-frame")
				store, chunks := chunksTestSealRaw(t, s, tt.stream, size)
				got, err := chunksTestRead(s, chunks, store.fetch)
				if tt.want == nil {
					if err == nil {
						t.Fatalf("chunk size %d: read %d bytes without error", size, len(got))
					}
					continue
				}
				if err != nil || !bytes.Equal(got, tt.want) {
					t.Fatalf("chunk size %d: read %d bytes, %v; want %d bytes", size, len(got), err, len(tt.want))
				}
			}
		})
	}
}

func TestReaderPrefetchesOneAhead(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := chunksTestSealing(t, "b-ahead")
	store, chunks := chunksTestWrite(t, s, chunksTestRandom(4<<20), 256<<10)
	r, err := NewReader(context.Background(), s, chunks, store.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // room for a greedy prefetcher to run ahead
	if n := store.fetches.Load(); n > 2 {
		t.Errorf("%d of %d chunks fetched after reading one byte, want at most 2", n, len(chunks))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
}

// Close returns only once fetch has returned, so the caller may release the
// destination right after.
func TestReaderCloseWaitsForFetch(t *testing.T) {
	s := chunksTestSealing(t, "b-wait")
	// 256 KiB chunks: the first zstd block (128 KiB) is all in the first.
	store, chunks := chunksTestWrite(t, s, chunksTestRandom(1<<20), 256<<10)
	var inFetch atomic.Int64
	fetch := func(ctx context.Context, name string) ([]byte, error) {
		inFetch.Add(1)
		defer inFetch.Add(-1)
		if name == "data-000002" {
			<-ctx.Done()
			time.Sleep(100 * time.Millisecond) // slow to notice
			return nil, ctx.Err()
		}
		return store.fetch(ctx, name)
	}
	r, err := NewReader(context.Background(), s, chunks, fetch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := inFetch.Load(); n != 0 {
		t.Fatalf("%d fetch calls still running after Close", n)
	}
}

func TestReaderContextCancelled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := chunksTestSealing(t, "b-cancel")
	store, chunks := chunksTestWrite(t, s, chunksTestRandom(1<<20), 64<<10)
	ctx, cancel := context.WithCancel(context.Background())
	fetch := func(ctx context.Context, name string) ([]byte, error) {
		if name == "data-000004" {
			cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return store.fetch(ctx, name)
	}
	r, err := NewReader(ctx, s, chunks, fetch)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAll error = %v, want context.Canceled", err)
	}
}

func TestNewWriterRefuses(t *testing.T) {
	good := chunksTestSealing(t, "b-1")
	store := newChunksTestStore()
	tests := []struct {
		name      string
		sealing   Sealing
		chunkSize int
		put       func(context.Context, ChunkInfo, []byte) error
	}{
		{"unset key", Sealing{BackupID: "b-1", Salt: good.Salt}, 1024, store.put},
		{"no backup id", Sealing{Key: good.Key, Salt: good.Salt}, 1024, store.put},
		{"NUL in backup id", Sealing{Key: good.Key, BackupID: "b\x001", Salt: good.Salt}, 1024, store.put},
		{"no salt", Sealing{Key: good.Key, BackupID: "b-1"}, 1024, store.put},
		{"long salt", Sealing{Key: good.Key, BackupID: "b-1", Salt: make([]byte, 33)}, 1024, store.put},
		{"negative chunk size", good, -1, store.put},
		{"huge chunk size", good, 2 << 30, store.put},
		{"no put", good, 1024, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			if w, err := NewWriter(context.Background(), tt.sealing, tt.chunkSize, tt.put); err == nil {
				_ = w.Close()
				t.Fatal("NewWriter succeeded")
			}
		})
	}
}

func TestWriterPutError(t *testing.T) {
	errDisk := errors.New("disk full")
	tests := []struct {
		name   string
		failAt int  // the put call (0-based) that fails
		block  bool // put waits for its context before failing later calls
	}{
		{"first chunk", 0, false},
		{"second chunk", 1, false},
		{"fourth chunk", 3, false},
		{"last chunk", 6, false},
		{"first chunk, others blocked", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			s := chunksTestSealing(t, "b-fail")
			data := chunksTestRandom(7*(16<<10) - 100) // seven 16 KiB chunks
			var calls atomic.Int64
			put := func(ctx context.Context, c ChunkInfo, _ []byte) error {
				n := int(calls.Add(1)) - 1
				if n == tt.failAt {
					return errDisk
				}
				if tt.block && n > tt.failAt {
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			}
			w, err := NewWriter(context.Background(), s, 16<<10, put)
			if err != nil {
				t.Fatal(err)
			}
			var writeErr error
			for p := data; len(p) > 0 && writeErr == nil; {
				k := min(1000, len(p))
				_, writeErr = w.Write(p[:k])
				p = p[k:]
			}
			closed := make(chan error, 1)
			go func() { closed <- w.Close() }()
			var closeErr error
			select {
			case closeErr = <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not return")
			}
			if !errors.Is(closeErr, errDisk) {
				t.Fatalf("Close = %v, want the put error", closeErr)
			}
			if writeErr != nil && !errors.Is(writeErr, errDisk) {
				t.Fatalf("Write = %v, want the put error", writeErr)
			}
			if !strings.Contains(closeErr.Error(), chunkName(uint64(tt.failAt))) {
				t.Errorf("Close error %q does not name chunk %s", closeErr, chunkName(uint64(tt.failAt)))
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Error("Write after a failed Close succeeded")
			}
			if err := w.Close(); !errors.Is(err, errDisk) {
				t.Errorf("second Close = %v, want the put error again", err)
			}
			if w.Chunks() != nil {
				t.Errorf("Chunks() = %v after a failed backup, want nil", w.Chunks())
			}
			if got := calls.Load(); got > int64(tt.failAt)+3 {
				t.Errorf("put called %d times after failing at call %d", got, tt.failAt)
			}
		})
	}
}

func TestWriterStopsWriteAfterPutError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	errDisk := errors.New("disk full")
	s := chunksTestSealing(t, "b-stop")
	w, err := NewWriter(context.Background(), s, 4<<10, func(context.Context, ChunkInfo, []byte) error { return errDisk })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	data := chunksTestRandom(4 << 20)
	for i := 0; ; i += 8 << 10 {
		if i >= len(data) {
			t.Fatal("every Write succeeded though put always fails")
		}
		if _, err := w.Write(data[i : i+8<<10]); err != nil {
			if !errors.Is(err, errDisk) {
				t.Fatalf("Write = %v, want the put error", err)
			}
			break
		}
	}
}

func TestWriterBackpressure(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := chunksTestSealing(t, "b-slow")
	const chunkSize = 64 << 10
	data := chunksTestRandom(8 << 20)
	release := make(chan struct{})
	store := newChunksTestStore()
	put := func(ctx context.Context, c ChunkInfo, sealed []byte) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return store.put(ctx, c, sealed)
	}
	w, err := NewWriter(context.Background(), s, chunkSize, put)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for p := data; len(p) > 0; p = p[min(16<<10, len(p)):] {
			if _, err := w.Write(p[:min(16<<10, len(p))]); err != nil {
				done <- err
				return
			}
		}
		done <- w.Close()
	}()
	time.Sleep(200 * time.Millisecond)
	// put is stuck on chunk 0: two chunks queued, one waiting to be queued,
	// one filling, and the encoder's current block.
	if got := w.Written(); got > 6*chunkSize+(256<<10) {
		t.Errorf("%d bytes written while put was stuck, want the writer held back", got)
	}
	select {
	case err := <-done:
		t.Fatalf("backup finished while put was stuck: %v", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := chunksTestRead(s, w.Chunks(), store.fetch)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}

func TestWriterContextCancelled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := chunksTestSealing(t, "b-ctx")
	ctx, cancel := context.WithCancel(context.Background())
	store := newChunksTestStore()
	w, err := NewWriter(ctx, s, 4<<10, store.put)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(chunksTestRandom(64 << 10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = w.Write(chunksTestRandom(16 << 10))
	}
	cerr := w.Close()
	if !errors.Is(cerr, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", cerr)
	}
	if !errors.Is(werr, context.Canceled) {
		t.Fatalf("Write = %v, want context.Canceled", werr)
	}
}

func TestWriterMisuse(t *testing.T) {
	s := chunksTestSealing(t, "b-misuse")
	store := newChunksTestStore()
	w, err := NewWriter(context.Background(), s, 1<<10, store.put)
	if err != nil {
		t.Fatal(err)
	}
	if w.Chunks() != nil {
		t.Error("Chunks() before Close is not nil")
	}
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if len(w.Chunks()) != 1 {
		t.Errorf("Chunks() = %v, want one chunk", w.Chunks())
	}
	c := w.Chunks()
	c[0].Name = "changed"
	if w.Chunks()[0].Name != "data-000001" {
		t.Error("changing the slice from Chunks() changed the writer")
	}
}

// The nonce and AAD layouts are part of the stored format: check them
// against the specification.
func TestChunkSealerLayout(t *testing.T) {
	s := chunksTestSealing(t, "b-layout")
	cs, err := newChunkSealer(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cs.nonce(258), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2}; !bytes.Equal(got, want) {
		t.Errorf("nonce(258) = %x, want %x", got, want)
	}
	if got, want := string(cs.aad(12, true)), "custos-backup/1\x00b-layout\x0012\x00last"; got != want {
		t.Errorf("aad(12, last) = %q, want %q", got, want)
	}
	if got, want := string(cs.aad(0, false)), "custos-backup/1\x00b-layout\x000\x00more"; got != want {
		t.Errorf("aad(0, more) = %q, want %q", got, want)
	}
}

// FuzzReaderStream feeds arbitrary compressed streams, sealed as a backup's
// chunks, to the reader: it must not panic, and what it accepts must be one
// zstd frame that the zstd decoder reads the same way.
func FuzzReaderStream(f *testing.F) {
	s := Sealing{Key: Key{b: [KeySize]byte{1}}, BackupID: "b-fuzz", Salt: make([]byte, chunkSaltSize)}
	var frame bytes.Buffer
	enc, err := newChunkEncoder(&frame)
	if err != nil {
		f.Fatal(err)
	}
	_, _ = enc.Write(chunksTestText(5000))
	_ = enc.Close()
	f.Add(frame.Bytes(), uint16(100))
	f.Add(append(bytes.Clone(frame.Bytes()), frame.Bytes()...), uint16(7))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x68, 0x01, 0x00, 0x00, 0x99, 0xe9, 0xd8, 0x51}, uint16(1))
	f.Add([]byte{}, uint16(0))
	cs, err := newChunkSealer(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, stream []byte, size uint16) {
		chunkSize := int(size)%512 + 1
		store := newChunksTestStore()
		var infos []ChunkInfo
		rest := stream
		for i := 0; i == 0 || len(rest) > 0; i++ {
			k := min(chunkSize, len(rest))
			sealed := cs.seal(uint64(i), k == len(rest), rest[:k])
			sum := sha256.Sum256(sealed)
			c := ChunkInfo{Name: chunkName(uint64(i)), Size: int64(len(sealed)), Plain: int64(k), SHA256: hex.EncodeToString(sum[:])}
			_ = store.put(context.Background(), c, sealed)
			infos = append(infos, c)
			rest = rest[k:]
		}
		r, err := NewReader(context.Background(), s, infos, store.fetch)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		const limit = 8 << 20
		got, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil || len(got) > limit {
			return
		}
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(chunkMaxWindow))
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		want, err := dec.DecodeAll(stream, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("reader accepted %d bytes; zstd DecodeAll gives %d bytes, %v", len(got), len(want), err)
		}
		var h zstd.Header
		if err := h.Decode(stream); err != nil || h.Skippable {
			t.Fatalf("reader accepted a stream that does not start with a frame: %v", err)
		}
	})
}

package blob_test

import (
	"bytes"
	"context"
	"crypto/md5"  //nolint:gosec // checking the MD5 digests arca serves
	"crypto/sha1" //nolint:gosec // checking the SHA-1 digests arca serves
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"arca/internal/blob"
	"arca/internal/blob/filesystem"
)

// newStore returns a Store over a filesystem driver rooted at root.
func newStore(t testing.TB, root string) *blob.Store {
	t.Helper()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatalf("filesystem.New: %v", err)
	}
	return blob.NewStore(d)
}

// digests computes the expected Info of b with the crypto packages.
func digests(b []byte) blob.Info {
	s256 := sha256.Sum256(b)
	s512 := sha512.Sum512(b)
	s1 := sha1.Sum(b) //nolint:gosec
	m5 := md5.Sum(b)  //nolint:gosec
	return blob.Info{
		Size: int64(len(b)),
		Digests: blob.Digests{
			SHA256: hex.EncodeToString(s256[:]),
			SHA512: hex.EncodeToString(s512[:]),
			SHA1:   hex.EncodeToString(s1[:]),
			MD5:    hex.EncodeToString(m5[:]),
		},
	}
}

func walkAll(t *testing.T, s *blob.Store) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	if err := s.Walk(t.Context(), func(k string, size int64, _ time.Time) error {
		got[k] = size
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

// wantNothingStored checks that no blob is committed and tmp/ is empty.
func wantNothingStored(t *testing.T, s *blob.Store, root string) {
	t.Helper()
	if got := walkAll(t, s); len(got) != 0 {
		t.Errorf("Walk = %v, want no blobs", got)
	}
	es, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatalf("read tmp/: %v", err)
	}
	if len(es) != 0 {
		t.Errorf("tmp/ holds %d entries, want none", len(es))
	}
}

func readBlob(t *testing.T, s *blob.Store, sha string) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), sha)
	if err != nil {
		t.Fatalf("Open(%s): %v", sha, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", sha, err)
	}
	return b
}

// wrong changes the last hex digit of a digest.
func wrong(d string) string {
	last := d[len(d)-1]
	if last == '0' {
		return d[:len(d)-1] + "1"
	}
	return d[:len(d)-1] + "0"
}

func TestKnownDigests(t *testing.T) {
	for _, tc := range []struct {
		data string
		want blob.Info
	}{
		{"hello\n", blob.Info{Size: 6, Digests: blob.Digests{
			SHA256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
			SHA512: "e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629",
			SHA1:   "f572d396fae9206628714fb2ce00f72e94f2258f",
			MD5:    "b1946ac92492d2347c6235b4d2611184",
		}}},
		{"", blob.Info{Size: 0, Digests: blob.Digests{
			SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			SHA512: "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
			SHA1:   "da39a3ee5e6b4b0d3255bfef95601890afd80709",
			MD5:    "d41d8cd98f00b204e9800998ecf8427e",
		}}},
		{"The quick brown fox jumps over the lazy dog", digests([]byte("The quick brown fox jumps over the lazy dog"))},
		{strings.Repeat("abc", 100_000), digests([]byte(strings.Repeat("abc", 100_000)))},
	} {
		name := tc.data
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run(name, func(t *testing.T) {
			// The literal digests agree with the crypto packages...
			if got := digests([]byte(tc.data)); got != tc.want {
				t.Fatalf("crypto packages give %+v, table says %+v", got, tc.want)
			}
			// ...and with what the Store computes.
			s := newStore(t, t.TempDir())
			info, err := s.Put(t.Context(), strings.NewReader(tc.data), blob.NoExpectation)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if info != tc.want {
				t.Errorf("Put info = %+v, want %+v", info, tc.want)
			}
			for _, a := range []blob.Algorithm{blob.SHA256, blob.SHA512, blob.SHA1, blob.MD5} {
				if !blob.ValidHex(a, info.Get(a)) {
					t.Errorf("%s digest %q is not lower-case hex of the right length", a, info.Get(a))
				}
			}
			if got := readBlob(t, s, info.SHA256); string(got) != tc.data {
				t.Errorf("stored bytes differ from the input")
			}
			if size, err := s.Stat(t.Context(), info.SHA256); err != nil || size != info.Size {
				t.Errorf("Stat = %d, %v; want %d, nil", size, err, info.Size)
			}
		})
	}
}

func TestPutExpectations(t *testing.T) {
	data := []byte("hello\n")
	d := digests(data)
	upper := func(s string) string { return strings.ToUpper(s) }

	pass := []struct {
		name string
		want blob.Expect
	}{
		{"nothing", blob.NoExpectation},
		{"size", blob.Expect{Size: 6}},
		{"sha256", blob.Expect{Size: -1, Digests: blob.Digests{SHA256: d.SHA256}}},
		{"sha512", blob.Expect{Size: -1, Digests: blob.Digests{SHA512: d.SHA512}}},
		{"sha1", blob.Expect{Size: -1, Digests: blob.Digests{SHA1: d.SHA1}}},
		{"md5", blob.Expect{Size: -1, Digests: blob.Digests{MD5: d.MD5}}},
		{"SHA256 upper", blob.Expect{Size: -1, Digests: blob.Digests{SHA256: upper(d.SHA256)}}},
		{"SHA512 upper", blob.Expect{Size: -1, Digests: blob.Digests{SHA512: upper(d.SHA512)}}},
		{"SHA1 upper", blob.Expect{Size: -1, Digests: blob.Digests{SHA1: upper(d.SHA1)}}},
		{"MD5 upper", blob.Expect{Size: -1, Digests: blob.Digests{MD5: upper(d.MD5)}}},
		{"all", blob.Expect{Size: 6, Digests: d.Digests}},
		{"all upper", blob.Expect{Size: 6, Digests: blob.Digests{
			SHA256: upper(d.SHA256), SHA512: upper(d.SHA512), SHA1: upper(d.SHA1), MD5: upper(d.MD5),
		}}},
	}
	for _, tc := range pass {
		t.Run("pass/"+tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := newStore(t, root)
			info, err := s.Put(t.Context(), bytes.NewReader(data), tc.want)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if info != d {
				t.Errorf("info = %+v, want %+v", info, d)
			}
			if got := walkAll(t, s); len(got) != 1 || got[d.SHA256] != 6 {
				t.Errorf("Walk = %v, want {%s: 6}", got, d.SHA256)
			}
			if got := readBlob(t, s, d.SHA256); !bytes.Equal(got, data) {
				t.Errorf("stored %q, want %q", got, data)
			}
		})
	}

	fail := []struct {
		name     string
		want     blob.Expect
		what     string
		expected string
		actual   string
	}{
		{"sha256", blob.Expect{Size: -1, Digests: blob.Digests{SHA256: wrong(d.SHA256)}}, "sha256", wrong(d.SHA256), d.SHA256},
		{"sha512", blob.Expect{Size: -1, Digests: blob.Digests{SHA512: wrong(d.SHA512)}}, "sha512", wrong(d.SHA512), d.SHA512},
		{"sha1", blob.Expect{Size: -1, Digests: blob.Digests{SHA1: wrong(d.SHA1)}}, "sha1", wrong(d.SHA1), d.SHA1},
		{"md5", blob.Expect{Size: -1, Digests: blob.Digests{MD5: wrong(d.MD5)}}, "md5", wrong(d.MD5), d.MD5},
		{"SHA256 upper", blob.Expect{Size: -1, Digests: blob.Digests{SHA256: upper(wrong(d.SHA256))}}, "sha256", upper(wrong(d.SHA256)), d.SHA256},
		{"MD5 upper", blob.Expect{Size: -1, Digests: blob.Digests{MD5: upper(wrong(d.MD5))}}, "md5", upper(wrong(d.MD5)), d.MD5},
		{"size larger", blob.Expect{Size: 7}, "size", "7", "6"},
		{"size smaller", blob.Expect{Size: 5}, "size", "5", "6"},
		// The zero Expect announces an empty body, not "anything".
		{"zero Expect", blob.Expect{}, "size", "0", "6"},
		{"sha1 of other bytes", blob.Expect{Size: -1, Digests: blob.Digests{SHA1: digests([]byte("hello")).SHA1}}, "sha1", digests([]byte("hello")).SHA1, d.SHA1},
		{"truncated sha256", blob.Expect{Size: -1, Digests: blob.Digests{SHA256: d.SHA256[:63]}}, "sha256", d.SHA256[:63], d.SHA256},
		{"one wrong among right ones", blob.Expect{Size: 6, Digests: blob.Digests{
			SHA256: d.SHA256, SHA512: d.SHA512, SHA1: wrong(d.SHA1), MD5: d.MD5,
		}}, "sha1", wrong(d.SHA1), d.SHA1},
	}
	for _, tc := range fail {
		t.Run("fail/"+tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := newStore(t, root)
			info, err := s.Put(t.Context(), bytes.NewReader(data), tc.want)
			if err == nil {
				t.Fatalf("Put succeeded with %+v", info)
			}
			if !errors.Is(err, blob.ErrDigestMismatch) {
				t.Errorf("error %v does not wrap ErrDigestMismatch", err)
			}
			var me *blob.MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is no *MismatchError", err)
			}
			if me.What != tc.what || me.Expected != tc.expected || me.Actual != tc.actual {
				t.Errorf("MismatchError = %+v, want {%s %s %s}", *me, tc.what, tc.expected, tc.actual)
			}
			if !strings.Contains(err.Error(), tc.what) {
				t.Errorf("error text %q does not name %s", err, tc.what)
			}
			wantNothingStored(t, s, root)
			if _, err := s.Stat(t.Context(), d.SHA256); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Stat after failed Put = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestPutTwiceStoresOnce(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	data := []byte("deduplicated")
	first, err := s.Put(t.Context(), bytes.NewReader(data), blob.NoExpectation)
	if err != nil {
		t.Fatalf("first Put: %v", err)
	}
	second, err := s.Put(t.Context(), bytes.NewReader(data), blob.Expect{Size: int64(len(data)), Digests: first.Digests})
	if err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if first != second {
		t.Errorf("Infos differ: %+v vs %+v", first, second)
	}
	if got := walkAll(t, s); len(got) != 1 {
		t.Errorf("Walk = %v, want one blob", got)
	}
	if es, _ := os.ReadDir(filepath.Join(root, "tmp")); len(es) != 0 {
		t.Errorf("tmp/ holds %d entries, want none", len(es))
	}
}

func TestPutConcurrentSameBytes(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	data := bytes.Repeat([]byte("concurrent "), 50_000)
	want := digests(data)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			info, err := s.Put(t.Context(), bytes.NewReader(data), blob.NoExpectation)
			if err == nil && info != want {
				err = errors.New("wrong info")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if got := walkAll(t, s); len(got) != 1 {
		t.Errorf("Walk = %v, want one blob", got)
	}
	if got := readBlob(t, s, want.SHA256); !bytes.Equal(got, data) {
		t.Error("stored bytes differ")
	}
}

// failingReader yields its bytes and then an error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

var errClientGone = errors.New("client went away")

func TestPutReaderFailsMidway(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	data := bytes.Repeat([]byte("x"), 100_000)
	_, err := s.Put(t.Context(), &failingReader{data: data, err: errClientGone}, blob.NoExpectation)
	if !errors.Is(err, errClientGone) {
		t.Fatalf("Put error = %v, want it to wrap the reader's error", err)
	}
	if errors.Is(err, blob.ErrDigestMismatch) {
		t.Errorf("a read error is reported as a digest mismatch: %v", err)
	}
	wantNothingStored(t, s, root)
	// Not even the prefix that did arrive is visible.
	if _, err := s.Stat(t.Context(), digests(data).SHA256); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat of the prefix = %v, want ErrNotFound", err)
	}
}

func TestOpenStatDeleteKeys(t *testing.T) {
	s := newStore(t, t.TempDir())
	ctx := t.Context()
	info, err := s.Put(ctx, strings.NewReader("content"), blob.NoExpectation)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, k := range []string{"", "../x", strings.ToUpper(info.SHA256), info.SHA1, info.SHA512, digests([]byte("absent")).SHA256} {
		if _, err := s.Stat(ctx, k); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", k, err)
		}
		if rc, err := s.Open(ctx, k); !errors.Is(err, blob.ErrNotFound) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrNotFound", k, err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", k, err)
		}
	}
	if got := readBlob(t, s, info.SHA256); string(got) != "content" {
		t.Errorf("blob = %q", got)
	}
	if err := s.Delete(ctx, info.SHA256); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, info.SHA256); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat after Delete = %v, want ErrNotFound", err)
	}
	if s.DriverName() != "filesystem" {
		t.Errorf("DriverName = %q", s.DriverName())
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func wantUploadSize(t *testing.T, s *blob.Store, id string, want int64) {
	t.Helper()
	size, err := s.UploadSize(t.Context(), id)
	if err != nil {
		t.Fatalf("UploadSize(%s): %v", id, err)
	}
	if size != want {
		t.Errorf("UploadSize(%s) = %d, want %d", id, size, want)
	}
}

func appendAt(t *testing.T, s *blob.Store, id string, offset int64, chunk []byte, wantSize int64) {
	t.Helper()
	size, err := s.Append(t.Context(), id, offset, bytes.NewReader(chunk))
	if err != nil {
		t.Fatalf("Append(%s, %d, %d bytes): %v", id, offset, len(chunk), err)
	}
	if size != wantSize {
		t.Fatalf("Append(%s, %d, %d bytes) = %d, want %d", id, offset, len(chunk), size, wantSize)
	}
}

func TestResumableUpload(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	whole := bytes.Repeat([]byte("0123456789abcdefghij"), 10_000) // 200,000 bytes
	parts := [][]byte{whole[:1000], whole[1000:50_000], whole[50_000:50_001], whole[50_001:120_000], whole[120_000:]}

	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("upload id %q is not 32 lower-case hex digits", id)
	}
	other, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	if other == id {
		t.Fatalf("two sessions got the same id %s", id)
	}
	wantUploadSize(t, s, id, 0)

	appendAt(t, s, id, 0, parts[0], 1000)
	appendAt(t, s, id, 1000, parts[1], 50_000)

	// A chunk at the wrong offset is refused and changes nothing.
	for _, off := range []int64{0, 1000, 49_999, 50_001, 1 << 40} {
		size, err := s.Append(ctx, id, off, bytes.NewReader([]byte("bogus")))
		if !errors.Is(err, blob.ErrOffset) {
			t.Errorf("Append at offset %d = %v, want ErrOffset", off, err)
		}
		if size != 50_000 {
			t.Errorf("Append at offset %d reports size %d, want 50000", off, size)
		}
		wantUploadSize(t, s, id, 50_000)
	}

	// A negative offset appends at the end.
	appendAt(t, s, id, -1, parts[2], 50_001)

	// Nothing is visible as a blob yet.
	if got := walkAll(t, s); len(got) != 0 {
		t.Errorf("Walk during upload = %v, want nothing", got)
	}

	// The server restarts: a new driver and Store over the same folder.
	s = newStore(t, root)
	if err := s.RemoveTemp(ctx); err != nil {
		t.Fatalf("RemoveTemp: %v", err)
	}
	wantUploadSize(t, s, id, 50_001)
	appendAt(t, s, id, 50_001, parts[3], 120_000)
	appendAt(t, s, id, -1, parts[4], int64(len(whole)))

	want := digests(whole)
	info, err := s.CommitUpload(ctx, id, blob.Expect(want))
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if info != want {
		t.Errorf("CommitUpload info = %+v, want %+v", info, want)
	}
	if got := readBlob(t, s, want.SHA256); !bytes.Equal(got, whole) {
		t.Error("committed bytes differ from the uploaded ones")
	}
	if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("UploadSize after commit = %v, want ErrNotFound", err)
	}
	if _, err := s.Append(ctx, id, -1, strings.NewReader("late")); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Append after commit = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(root, "uploads", id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session folder still there: %v", err)
	}
	// The other session is untouched.
	wantUploadSize(t, s, other, 0)

	// The same bytes through Put are the same blob.
	again, err := s.Put(ctx, bytes.NewReader(whole), blob.NoExpectation)
	if err != nil || again != want {
		t.Errorf("Put of the same bytes = %+v, %v", again, err)
	}
	if got := walkAll(t, s); len(got) != 1 {
		t.Errorf("Walk = %v, want one blob", got)
	}
}

func TestUploadStateRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, stateFile string, other string)
	}{
		{"garbage", func(t *testing.T, p, _ string) {
			if err := os.WriteFile(p, []byte("this is not a hash state \x00\xff\x01"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty", func(t *testing.T, p, _ string) {
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing", func(t *testing.T, p, _ string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, p, _ string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b[:len(b)/2], 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"trailing bytes", func(t *testing.T, p, _ string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, append(b, "junk"...), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"state of another session", func(t *testing.T, p, other string) {
			// A valid state, but for a different number of bytes.
			b, err := os.ReadFile(other)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"stale", func(t *testing.T, p, _ string) {
			// A crash between appending the bytes and saving the state
			// leaves a valid state for fewer bytes: append behind the
			// Store's back.
			f, err := os.OpenFile(filepath.Join(filepath.Dir(p), "data"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("MORE"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := newStore(t, root)
			ctx := t.Context()
			first := []byte("first half of the bytes, ")
			second := []byte("and the second half.")

			id, err := s.NewUpload(ctx)
			if err != nil {
				t.Fatalf("NewUpload: %v", err)
			}
			appendAt(t, s, id, 0, first, int64(len(first)))
			other, err := s.NewUpload(ctx)
			if err != nil {
				t.Fatalf("NewUpload: %v", err)
			}
			appendAt(t, s, other, 0, []byte("xyz"), 3)

			stateFile := filepath.Join(root, "uploads", id, "state")
			if fi, err := os.Stat(stateFile); err != nil || fi.Size() == 0 {
				t.Fatalf("no saved state after Append: %v", err)
			}
			tc.damage(t, stateFile, filepath.Join(root, "uploads", other, "state"))

			stored := first
			if tc.name == "stale" {
				stored = append(slices.Clone(first), "MORE"...)
			}
			// A new Store, as after a restart, continues correctly.
			s = newStore(t, root)
			wantUploadSize(t, s, id, int64(len(stored)))
			appendAt(t, s, id, int64(len(stored)), second, int64(len(stored)+len(second)))
			whole := append(slices.Clone(stored), second...)
			info, err := s.CommitUpload(ctx, id, blob.NoExpectation)
			if err != nil {
				t.Fatalf("CommitUpload: %v", err)
			}
			if want := digests(whole); info != want {
				t.Errorf("CommitUpload info = %+v, want %+v", info, want)
			}
			if got := readBlob(t, s, info.SHA256); !bytes.Equal(got, whole) {
				t.Errorf("blob = %q, want %q", got, whole)
			}
		})
	}
}

// countingDriver counts the session bytes the Store reads back, which it
// only needs to do when the saved hash state is unusable.
type countingDriver struct {
	blob.Driver
	mu    sync.Mutex
	reads int64
}

func (c *countingDriver) OpenUpload(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, err := c.Driver.OpenUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, c: c}, nil
}

func (c *countingDriver) rehashed() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

type countingReader struct {
	io.ReadCloser
	c *countingDriver
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.mu.Lock()
	r.c.reads += int64(n)
	r.c.mu.Unlock()
	return n, err
}

func newCountingStore(t *testing.T, root string) (*blob.Store, *countingDriver) {
	t.Helper()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatalf("filesystem.New: %v", err)
	}
	c := &countingDriver{Driver: d}
	return blob.NewStore(c), c
}

func TestUploadStateAvoidsRehash(t *testing.T) {
	root := t.TempDir()
	ctx := t.Context()
	s, c := newCountingStore(t, root)
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	whole := bytes.Repeat([]byte("chunk"), 10_000)
	appendAt(t, s, id, 0, whole[:20_000], 20_000)
	appendAt(t, s, id, 20_000, whole[20_000:30_000], 30_000)
	if n := c.rehashed(); n != 0 {
		t.Errorf("appends read %d session bytes back, want 0", n)
	}

	// The state survives a restart.
	s, c = newCountingStore(t, root)
	appendAt(t, s, id, -1, whole[30_000:], int64(len(whole)))
	info, err := s.CommitUpload(ctx, id, blob.NoExpectation)
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if info != digests(whole) {
		t.Errorf("info = %+v, want %+v", info, digests(whole))
	}
	if n := c.rehashed(); n != 0 {
		t.Errorf("append and commit after restart read %d session bytes back, want 0", n)
	}

	// Without a usable state the Store does rehash, once.
	id, err = s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	appendAt(t, s, id, 0, []byte("abc"), 3)
	if err := os.WriteFile(filepath.Join(root, "uploads", id, "state"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	appendAt(t, s, id, 3, []byte("def"), 6)
	if n := c.rehashed(); n != 3 {
		t.Errorf("append over a garbage state read %d session bytes back, want 3", n)
	}
	info, err = s.CommitUpload(ctx, id, blob.NoExpectation)
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if info != digests([]byte("abcdef")) {
		t.Errorf("info = %+v, want %+v", info, digests([]byte("abcdef")))
	}
	if n := c.rehashed(); n != 3 {
		t.Errorf("commit after the rebuilt state read %d session bytes back in all, want 3", n)
	}
}

func TestAppendReaderFailsMidway(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	appendAt(t, s, id, 0, []byte("start:"), 6)
	chunk := bytes.Repeat([]byte("y"), 70_000)
	_, err = s.Append(ctx, id, 6, &failingReader{data: chunk, err: errClientGone})
	if !errors.Is(err, errClientGone) {
		t.Fatalf("Append error = %v, want it to wrap the reader's error", err)
	}
	// Whatever part arrived is the truth; the client resumes from there.
	size, err := s.UploadSize(ctx, id)
	if err != nil {
		t.Fatalf("UploadSize: %v", err)
	}
	if size < 6 || size > 6+int64(len(chunk)) {
		t.Fatalf("size after failed Append = %d", size)
	}
	stored := append([]byte("start:"), chunk[:size-6]...)
	appendAt(t, s, id, size, []byte(":end"), size+4)
	whole := append(stored, ":end"...)
	info, err := s.CommitUpload(ctx, id, blob.Expect{Size: int64(len(whole)), Digests: digests(whole).Digests})
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if info != digests(whole) {
		t.Errorf("info = %+v, want %+v", info, digests(whole))
	}
}

func TestCommitUploadMismatchKeepsSession(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	data := []byte("uploaded in one go")
	want := digests(data)
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	appendAt(t, s, id, 0, data, int64(len(data)))

	for _, bad := range []blob.Expect{
		{Size: -1, Digests: blob.Digests{SHA256: wrong(want.SHA256)}},
		{Size: -1, Digests: blob.Digests{SHA512: wrong(want.SHA512)}},
		{Size: -1, Digests: blob.Digests{SHA1: wrong(want.SHA1)}},
		{Size: -1, Digests: blob.Digests{MD5: wrong(want.MD5)}},
		{Size: want.Size + 1},
	} {
		_, err := s.CommitUpload(ctx, id, bad)
		if !errors.Is(err, blob.ErrDigestMismatch) {
			t.Errorf("CommitUpload(%+v) = %v, want ErrDigestMismatch", bad, err)
		}
		var me *blob.MismatchError
		if !errors.As(err, &me) {
			t.Errorf("CommitUpload(%+v) error %v is no *MismatchError", bad, err)
		}
		wantUploadSize(t, s, id, int64(len(data)))
		if got := walkAll(t, s); len(got) != 0 {
			t.Errorf("Walk after mismatch = %v, want nothing", got)
		}
	}

	// The session is still usable: the client can add what was missing.
	appendAt(t, s, id, int64(len(data)), []byte("!"), int64(len(data))+1)
	whole := append(slices.Clone(data), '!')
	info, err := s.CommitUpload(ctx, id, blob.Expect{Size: -1, Digests: blob.Digests{SHA256: strings.ToUpper(digests(whole).SHA256)}})
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if info != digests(whole) {
		t.Errorf("info = %+v, want %+v", info, digests(whole))
	}
}

func TestUnknownUpload(t *testing.T) {
	s := newStore(t, t.TempDir())
	ctx := t.Context()
	for _, id := range []string{"0123456789abcdef0123456789abcdef", "", "../x", "NOT-HEX"} {
		if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("UploadSize(%q) = %v, want ErrNotFound", id, err)
		}
		if _, err := s.Append(ctx, id, 0, strings.NewReader("x")); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Append(%q) = %v, want ErrNotFound", id, err)
		}
		if _, err := s.CommitUpload(ctx, id, blob.NoExpectation); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("CommitUpload(%q) = %v, want ErrNotFound", id, err)
		}
		if err := s.CancelUpload(ctx, id); err != nil {
			t.Errorf("CancelUpload(%q) = %v, want nil", id, err)
		}
	}
}

func TestCancelUpload(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	keep, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	appendAt(t, s, id, 0, []byte("cancelled"), 9)
	appendAt(t, s, keep, 0, []byte("kept"), 4)
	if err := s.CancelUpload(ctx, id); err != nil {
		t.Fatalf("CancelUpload: %v", err)
	}
	if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("UploadSize after cancel = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(root, "uploads", id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session folder still there: %v", err)
	}
	if err := s.CancelUpload(ctx, id); err != nil {
		t.Errorf("second CancelUpload = %v, want nil", err)
	}
	wantUploadSize(t, s, keep, 4)
	if got := walkAll(t, s); len(got) != 0 {
		t.Errorf("Walk = %v, want nothing", got)
	}
}

func TestExpireUploads(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	newSession := func(data string) string {
		t.Helper()
		id, err := s.NewUpload(ctx)
		if err != nil {
			t.Fatalf("NewUpload: %v", err)
		}
		appendAt(t, s, id, 0, []byte(data), int64(len(data)))
		return id
	}
	old := newSession("old")
	older := newSession("")
	fresh := newSession("fresh")
	past := time.Now().Add(-2 * time.Hour)
	for _, id := range []string{old, older} {
		if err := os.Chtimes(filepath.Join(root, "uploads", id, "data"), past, past); err != nil {
			t.Fatal(err)
		}
	}
	// A session cut off while being created: a folder without data.
	cutOff := "00000000000000000000000000000abc"
	if err := os.Mkdir(filepath.Join(root, "uploads", cutOff), 0o750); err != nil {
		t.Fatal(err)
	}

	// Nothing is older than a day.
	expired, err := s.ExpireUploads(ctx, 24*time.Hour)
	if err != nil {
		t.Fatalf("ExpireUploads: %v", err)
	}
	if !slices.Equal(expired, []string{cutOff}) {
		t.Errorf("ExpireUploads(24h) = %v, want only the cut-off session %s", expired, cutOff)
	}

	expired, err = s.ExpireUploads(ctx, time.Hour)
	if err != nil {
		t.Fatalf("ExpireUploads: %v", err)
	}
	slices.Sort(expired)
	want := []string{old, older}
	slices.Sort(want)
	if !slices.Equal(expired, want) {
		t.Errorf("ExpireUploads(1h) = %v, want %v", expired, want)
	}
	for _, id := range want {
		if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("UploadSize(%s) after expiry = %v, want ErrNotFound", id, err)
		}
	}
	wantUploadSize(t, s, fresh, 5)

	// An append refreshes a session.
	if err := os.Chtimes(filepath.Join(root, "uploads", fresh, "data"), past, past); err != nil {
		t.Fatal(err)
	}
	appendAt(t, s, fresh, 5, []byte("!"), 6)
	expired, err = s.ExpireUploads(ctx, time.Hour)
	if err != nil {
		t.Fatalf("ExpireUploads: %v", err)
	}
	if len(expired) != 0 {
		t.Errorf("ExpireUploads after append = %v, want nothing", expired)
	}
	wantUploadSize(t, s, fresh, 6)
}

// zeroReader yields zero bytes forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func BenchmarkPut(b *testing.B) {
	const size = 64 << 20
	s := newStore(b, b.TempDir())
	b.SetBytes(size)
	for b.Loop() {
		info, err := s.Put(b.Context(), io.LimitReader(zeroReader{}, size), blob.NoExpectation)
		if err != nil {
			b.Fatalf("Put: %v", err)
		}
		if info.Size != size {
			b.Fatalf("size = %d", info.Size)
		}
	}
}

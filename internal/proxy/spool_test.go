package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
)

func TestSpoolFollowers(t *testing.T) {
	sp, err := newSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789"), 50_000)
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		r := sp.reader(context.Background())
		wg.Go(func() {
			defer r.Close()
			b, err := io.ReadAll(r)
			if err != nil {
				t.Error(err)
			}
			got[i] = b
		})
	}
	for off := 0; off < len(want); off += 4096 {
		if _, err := sp.Write(want[off:min(off+4096, len(want))]); err != nil {
			t.Fatal(err)
		}
	}
	sp.finish(nil)
	sp.release()
	wg.Wait()
	for i, b := range got {
		if !bytes.Equal(b, want) {
			t.Errorf("reader %d got %d bytes, want %d identical", i, len(b), len(want))
		}
	}
}

func TestSpoolFailureWithholdsLastByte(t *testing.T) {
	sp, err := newSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := sp.reader(context.Background())
	defer r.Close()
	sp.Write([]byte("abcdef")) //nolint:errcheck // a local file
	buf := make([]byte, 10)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "abcde" {
		t.Fatalf("read %q, %v before the verdict; want all but the last byte", buf[:n], err)
	}
	bad := errors.New("digest mismatch")
	sp.finish(bad)
	sp.release()
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, bad) {
		t.Errorf("after failure: %d bytes, %v; want the failure and not the last byte", n, err)
	}
}

func TestSpoolReaderContext(t *testing.T) {
	sp, err := newSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.release()
	ctx, cancel := context.WithCancel(context.Background())
	r := sp.reader(ctx)
	defer r.Close()
	cancel()
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("read with an ended context = %v", err)
	}
}

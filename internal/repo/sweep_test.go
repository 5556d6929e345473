package repo

import (
	"context"
	"testing"
	"time"

	"arca/internal/blob"
)

// TestPutAssetHoldsSweepLock checks that PutAsset keeps the blob store's
// sweep lock from the commit of the blob to the end of its transaction: a
// sweep of that very blob started in between, which would find no record
// yet, must wait, and then find the blob used.
func TestPutAssetHoldsSweepLock(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	body := "swept in the middle?"

	type result struct {
		freed bool
		err   error
	}
	swept := make(chan result, 1)
	testHookCommitted = func(info blob.Info) {
		testHookCommitted = nil
		if info.SHA256 != sum(body) {
			t.Errorf("hook saw blob %s, want %s", info.SHA256, sum(body))
		}
		go func() {
			// Everything committed so far counts as old.
			freed, _, err := e.blobs.Sweep(ctx, info.SHA256, time.Now().Add(time.Hour),
				func(ctx context.Context) (bool, error) { return e.db.ForgetBlobIfUnused(ctx, info.SHA256) })
			swept <- result{freed, err}
		}()
		select {
		case res := <-swept:
			t.Errorf("a sweep ran between commit and transaction: freed %v, %v", res.freed, res.err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Cleanup(func() { testHookCommitted = nil })

	e.put(t, r, "file.txt", body, true)
	select {
	case res := <-swept:
		if res.err != nil || res.freed {
			t.Errorf("sweep after the transaction = freed %v, %v; want kept, nil", res.freed, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep never ran")
	}
	if s := e.read(t, r, "file.txt"); s != body {
		t.Errorf("serves %q, want %q", s, body)
	}
}

package format

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"arca/internal/proxy"
	"arca/internal/repo"
)

func TestCapture(t *testing.T) {
	r := &Request{Request: httptest.NewRequest("HEAD", "/x", nil), Repo: &repo.Repository{Name: "m"}, Path: "x"}
	r.Header.Set("If-None-Match", `"abc"`)
	r.Header.Set("Range", "bytes=0-1")
	c, err := Capture(func(w http.ResponseWriter, sub *Request) error {
		if sub.Method != http.MethodGet || sub.Header.Get("If-None-Match") != "" || sub.Header.Get("Range") != "" {
			t.Errorf("the handler got %s with %v", sub.Method, sub.Header)
		}
		w.Header().Set("ETag", `"x"`)
		w.Write([]byte("body")) //nolint:errcheck // into memory
		return nil
	}, r)
	if err != nil || c.Status != http.StatusOK || string(c.Body) != "body" || c.Header.Get("ETag") != `"x"` {
		t.Errorf("Capture = %+v, %v", c, err)
	}
	if r.Header.Get("Range") == "" {
		t.Error("Capture changed the caller's request")
	}

	// An answer broken off is the member's failure, not the request's.
	_, err = Capture(func(http.ResponseWriter, *Request) error { panic(http.ErrAbortHandler) }, r)
	if !errors.Is(err, proxy.ErrUpstream) || !IsUnavailable(err) {
		t.Errorf("an aborted answer gave %v, want an upstream failure", err)
	}
	// Any other panic is not Capture's to hide.
	defer func() {
		if v := recover(); v != "bug" {
			t.Errorf("recovered %v, want the handler's own panic", v)
		}
	}()
	Capture(func(http.ResponseWriter, *Request) error { panic("bug") }, r) //nolint:errcheck // it panics
}

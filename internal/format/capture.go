package format

import (
	"bytes"
	"fmt"
	"net/http"

	"arca/internal/proxy"
)

// Captured is a response recorded in memory.
type Captured struct {
	Status int
	Header http.Header
	Body   []byte
}

// capture is a ResponseWriter that records.
type capture struct {
	c Captured
}

func (w *capture) Header() http.Header { return w.c.Header }

func (w *capture) WriteHeader(status int) {
	if w.c.Status == 0 {
		w.c.Status = status
	}
}

func (w *capture) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.c.Body = append(w.c.Body, p...)
	return len(p), nil
}

// Capture runs a route handler for r, as a GET without conditional or
// range headers, and returns what it answered. It is for a group that
// merges its members' documents: the body is held in memory, so it suits
// metadata, never artifacts. The handler's error is returned as is; a
// handler that aborts its answer (a proxy's download broken off midway)
// fails with proxy.ErrUpstream, since in memory nothing was sent yet.
func Capture(h func(http.ResponseWriter, *Request) error, r *Request) (_ Captured, err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			err = fmt.Errorf("%s of repository %s: answer broken off: %w", r.Path, r.Repo.Name, proxy.ErrUpstream)
		}
	}()
	sub := *r
	sub.Request = r.Request.Clone(r.Context())
	sub.Method = http.MethodGet
	for _, name := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		sub.Header.Del(name)
	}
	w := &capture{c: Captured{Header: http.Header{}}}
	if err := h(w, &sub); err != nil {
		return Captured{}, err
	}
	if w.c.Status == 0 {
		w.c.Status = http.StatusOK
	}
	w.c.Body = bytes.Clone(w.c.Body)
	return w.c, nil
}

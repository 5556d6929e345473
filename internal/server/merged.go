package server

import (
	"bytes"
	"container/list"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// Merged views of groups (a packument, a simple page, a
// maven-metadata.xml, a tag list) are kept in memory and answered again
// while they hold: until a member, or the group, changes in this process
// (repo.Service.Generation), what a proxy member answered falls due for
// revalidation (proxy.Freshness), or mergedViewMaxAge has passed, which
// bounds how long a change made by another process goes unseen.

const (
	// mergedViewMaxAge is the longest a merged view is kept.
	mergedViewMaxAge = time.Minute
	// mergedViewsMaxBytes bounds the bodies kept; the least recently
	// used go first.
	mergedViewsMaxBytes = 64 << 20
	// mergedViewMaxBytes is the largest body kept: a bigger one is merged
	// on every request rather than crowd out all the others.
	mergedViewMaxBytes = 8 << 20
)

// mergedViews is the store of kept merged answers. It is safe for
// concurrent use.
type mergedViews struct {
	mu      sync.Mutex
	byKey   map[string]*list.Element // of *mergedView
	lru     list.List                // most recently used first
	bytes   int64
	maxSize int64
	// merging holds, by key and stamp, a channel closed when the merge
	// under way for them ends: the requests that arrive meanwhile wait
	// for it rather than merge the same members again.
	merging map[string]chan struct{}
}

// mergedView is one kept answer.
type mergedView struct {
	key     string
	stamp   string // the generations of the group and its members
	expires time.Time
	header  http.Header
	body    []byte
}

func newMergedViews(maxSize int64) *mergedViews {
	return &mergedViews{byKey: map[string]*list.Element{}, maxSize: maxSize, merging: map[string]chan struct{}{}}
}

// get returns the answer kept under key if it still holds for stamp.
func (v *mergedViews) get(key, stamp string, now time.Time) *mergedView {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.byKey[key]
	if !ok {
		return nil
	}
	mv := e.Value.(*mergedView)
	if mv.stamp != stamp || !now.Before(mv.expires) {
		v.remove(e)
		return nil
	}
	v.lru.MoveToFront(e)
	return mv
}

// lead returns a function to call when the caller's merge for key and
// stamp ends, or, when another request's merge for them is under way, nil
// and a channel closed when that one ends.
func (v *mergedViews) lead(key, stamp string) (done func(), wait <-chan struct{}) {
	k := key + "\x00" + stamp
	v.mu.Lock()
	defer v.mu.Unlock()
	if ch, ok := v.merging[k]; ok {
		return nil, ch
	}
	ch := make(chan struct{})
	v.merging[k] = ch
	return func() {
		v.mu.Lock()
		delete(v.merging, k)
		v.mu.Unlock()
		close(ch)
	}, nil
}

// put keeps mv, making room by dropping the least recently used.
func (v *mergedViews) put(mv *mergedView) {
	size := int64(len(mv.body))
	if size > mergedViewMaxBytes || size > v.maxSize {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.byKey[mv.key]; ok {
		v.remove(e)
	}
	for v.bytes+size > v.maxSize {
		v.remove(v.lru.Back())
	}
	v.byKey[mv.key] = v.lru.PushFront(mv)
	v.bytes += size
}

func (v *mergedViews) remove(e *list.Element) {
	mv := v.lru.Remove(e).(*mergedView)
	delete(v.byKey, mv.key)
	v.bytes -= int64(len(mv.body))
}

// serveMerged answers a merged read of a group, from a kept answer when
// one holds. fr carries the members the caller may read; their proxy reads
// report to fresh.
func (s *Server) serveMerged(w http.ResponseWriter, rt format.Route, fr *format.Request, m *mountedFormat, fresh *proxy.Freshness) error {
	keeper, ok := m.Format.(format.MergeKeeper)
	if !ok {
		return rt.Handle(w, fr)
	}
	variant, ok := keeper.MergeVariant(fr.Request, fr.Path)
	if !ok {
		return rt.Handle(w, fr)
	}
	key := mergedKey(fr, variant)
	stamp := s.generations(fr)
	now := time.Now()
	// A client that asks for revalidation (pip does, for every page) gets
	// a new merge, in which proxy members may revalidate; it is kept for
	// the others.
	revalidate := format.WantsRevalidation(fr.Header)
	if mv := s.merged.get(key, stamp, now); mv != nil && !revalidate {
		mv.serve(w, fr.Request)
		return nil
	}
	// release lets the requests waiting for this merge go, once the view
	// is kept or known not to be, and before this request's own client is
	// served: a slow reader must not hold them up. The deferred call
	// covers the failures.
	release := func() {}
	done, wait := s.merged.lead(key, stamp)
	if wait != nil {
		select {
		case <-wait:
		case <-fr.Context().Done():
			return fr.Context().Err()
		}
		if mv := s.merged.get(key, stamp, time.Now()); mv != nil {
			mv.serve(w, fr.Request)
			return nil
		}
		// That merge gave nothing to keep: merge for this request.
	} else {
		var once sync.Once
		release = func() { once.Do(done) }
		defer release()
	}
	c, err := format.Capture(rt.Handle, fr)
	if err != nil {
		return err
	}
	mv := &mergedView{key: key, stamp: stamp, expires: now.Add(mergedViewMaxAge), header: c.Header, body: c.Body}
	mv.header.Del("Content-Length")
	if c.Status != http.StatusOK {
		for k, vs := range mv.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(c.Status)
		w.Write(c.Body) //nolint:errcheck // the client went away
		return nil
	}
	if until, ok := fresh.Until(); ok && s.definitionsCurrent(fr) {
		if !until.IsZero() && until.Before(mv.expires) {
			mv.expires = until
		}
		if mv.expires.After(now) {
			s.merged.put(mv)
		}
	}
	release()
	mv.serve(w, fr.Request)
	return nil
}

// definitionsCurrent reports whether the definitions of the group and its
// members that a merge used are still the current ones: one changed while
// the merge ran (a member taken offline) must not be kept under the stamp
// taken after that change.
func (s *Server) definitionsCurrent(fr *format.Request) bool {
	now, err := s.repos.Get(fr.Context(), fr.Repo.Name)
	if err != nil || now != fr.Repo {
		return false
	}
	for _, m := range fr.Members {
		if !s.definitionsCurrent(m) {
			return false
		}
	}
	return true
}

// serve answers r with the kept answer, honouring its conditional and
// range headers against the answer's ETag and Last-Modified.
func (mv *mergedView) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, vs := range mv.header {
		h[k] = vs
	}
	modified, _ := http.ParseTime(mv.header.Get("Last-Modified"))
	if mv.header.Get("Content-Encoding") != "" {
		// The encoded and plain forms may share an ETag: a range of one
		// must never be joined to the other, so an encoded answer comes
		// whole.
		r = r.Clone(r.Context())
		r.Header.Del("Range")
		r.Header.Del("If-Range")
	}
	http.ServeContent(w, r, "", modified, bytes.NewReader(mv.body))
}

// mergedKey names what a merged answer depends on.
func mergedKey(fr *format.Request, variant string) string {
	var b strings.Builder
	for _, part := range []string{fr.Repo.Name, fr.Path, fr.URL.RawQuery, fr.UserName(), fr.BaseURL,
		fr.Header.Get("Accept"), fr.Header.Get("Accept-Encoding"), variant} {
		b.WriteString(part)
		b.WriteByte(0)
	}
	var members func(ms []*format.Request)
	members = func(ms []*format.Request) {
		b.WriteByte('[')
		for _, m := range ms {
			b.WriteString(m.Repo.Name)
			b.WriteByte(',')
			if m.Repo.Type == repo.Group {
				members(m.Members)
			}
		}
		b.WriteByte(']')
	}
	members(fr.Members)
	return b.String()
}

// generations stamps the group and its members, nested groups included,
// with their content generations.
func (s *Server) generations(fr *format.Request) string {
	var b strings.Builder
	var walk func(r *format.Request)
	walk = func(r *format.Request) {
		b.WriteString(r.Repo.Name)
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(s.repos.Generation(r.Repo.ID), 10))
		b.WriteByte(' ')
		for _, m := range r.Members {
			walk(m)
		}
	}
	walk(fr)
	return b.String()
}

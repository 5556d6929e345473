package proxy

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// A spool is a download being written to a temporary file that any number
// of readers follow while it grows: each reader gets the bytes written so
// far, but the last, and then waits for more, until the writer finishes
// (the last byte, then io.EOF) or fails (the writer's error). This is what lets every client of a cache miss
// stream the one upstream download as it arrives.
type spool struct {
	file *os.File

	mu      sync.Mutex
	grew    chan struct{} // closed and replaced whenever bytes are added or the spool ends
	written int64
	done    bool
	err     error // why the download failed; nil when it completed
	readers int
	closed  bool // the writer is done with the file
}

// newSpool creates a spool file in dir.
func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "spool-*")
	if err != nil {
		return nil, err
	}
	// The name is not needed: readers use the open file, and the file
	// goes when the last user closes it.
	os.Remove(f.Name()) //nolint:errcheck // a leftover is emptied at start with the folder
	return &spool{file: f, grew: make(chan struct{})}, nil
}

// Write appends p and wakes the readers.
func (s *spool) Write(p []byte) (int, error) {
	n, err := s.file.Write(p)
	s.mu.Lock()
	s.written += int64(n)
	s.wake()
	s.mu.Unlock()
	return n, err
}

// wake tells waiting readers that something changed; s.mu is held.
func (s *spool) wake() {
	close(s.grew)
	s.grew = make(chan struct{})
}

// finish ends the spool: err nil means the download is complete and
// verified, anything else is what readers will see after the bytes they
// have.
func (s *spool) finish(err error) {
	s.mu.Lock()
	s.done, s.err = true, err
	s.wake()
	s.mu.Unlock()
}

// release is called by the writer when it no longer needs the file; the
// file closes when no reader needs it either.
func (s *spool) release() {
	s.mu.Lock()
	s.closed = true
	last := s.readers == 0
	s.mu.Unlock()
	if last {
		s.file.Close() //nolint:errcheck // read-only use from here
	}
}

// reader returns a reader of the spool from its start, or nil when the
// spool is over and its file gone. ctx ends its waits.
func (s *spool) reader(ctx context.Context) *spoolReader {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.readers == 0 {
		return nil
	}
	s.readers++
	return &spoolReader{s: s, ctx: ctx}
}

// spoolReader follows a spool.
type spoolReader struct {
	s      *spool
	ctx    context.Context
	off    int64
	closed bool
}

// errSpoolClosed is returned by a reader used after Close.
var errSpoolClosed = errors.New("spool reader closed")

// Read returns the next bytes, waiting for the writer when it has read all
// that was written.
func (r *spoolReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errSpoolClosed
	}
	for {
		r.s.mu.Lock()
		written, done, err, grew := r.s.written, r.s.done, r.s.err, r.s.grew
		r.s.mu.Unlock()
		if !done || err != nil {
			// The last byte waits for the verdict: a download that turns
			// out short or corrupt is never complete for any reader.
			written--
		}
		if r.off < written {
			n, rerr := r.s.file.ReadAt(p[:min(int64(len(p)), written-r.off)], r.off)
			r.off += int64(n)
			if rerr == io.EOF {
				rerr = nil
			}
			return n, rerr
		}
		if done {
			if err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		select {
		case <-grew:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// Close lets the spool's file go once the writer and every reader are done.
func (r *spoolReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.s.mu.Lock()
	r.s.readers--
	last := r.s.readers == 0 && r.s.closed
	r.s.mu.Unlock()
	if last {
		return r.s.file.Close()
	}
	return nil
}

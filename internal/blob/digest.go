package blob

import (
	"crypto/md5"  //nolint:gosec // MD5 is a checksum clients ask for, not a security control.
	"crypto/sha1" //nolint:gosec // SHA-1 likewise: Maven and npm clients verify it.
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// ErrDigestMismatch is wrapped by errors reporting bytes that do not match
// the digest or size the client announced.
var ErrDigestMismatch = errors.New("digest mismatch")

// Algorithm names a digest algorithm as arca writes it in lower case.
type Algorithm string

// The digest algorithms computed for every blob.
const (
	SHA256 Algorithm = "sha256"
	SHA512 Algorithm = "sha512"
	SHA1   Algorithm = "sha1"
	MD5    Algorithm = "md5"
)

// Digests holds the lower-case hex digests of one blob.
type Digests struct {
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512"`
	SHA1   string `json:"sha1"`
	MD5    string `json:"md5"`
}

// Get returns the digest for algorithm a, or "" for an unknown algorithm.
func (d Digests) Get(a Algorithm) string {
	switch a {
	case SHA256:
		return d.SHA256
	case SHA512:
		return d.SHA512
	case SHA1:
		return d.SHA1
	case MD5:
		return d.MD5
	}
	return ""
}

// Info describes a committed blob.
type Info struct {
	Digests
	Size int64 `json:"size"`
}

// Expect is what a client announced about bytes it sends. Empty digests and
// a negative Size are not checked. Digests are compared case-insensitively.
type Expect struct {
	Digests
	Size int64
}

// NoExpectation checks nothing.
var NoExpectation = Expect{Size: -1}

// MismatchError reports bytes whose digest or size differs from what the
// client announced. It wraps ErrDigestMismatch.
type MismatchError struct {
	What     string // an Algorithm or "size"
	Expected string
	Actual   string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s mismatch: expected %s, got %s", e.What, e.Expected, e.Actual)
}

// Unwrap makes errors.Is(err, ErrDigestMismatch) hold.
func (e *MismatchError) Unwrap() error { return ErrDigestMismatch }

// check compares the expectation with what was actually received.
func (e Expect) check(got Info) error {
	if e.Size >= 0 && e.Size != got.Size {
		return &MismatchError{What: "size", Expected: fmt.Sprint(e.Size), Actual: fmt.Sprint(got.Size)}
	}
	for _, a := range []Algorithm{SHA256, SHA512, SHA1, MD5} {
		want := e.Get(a)
		if want != "" && !strings.EqualFold(want, got.Get(a)) {
			return &MismatchError{What: string(a), Expected: want, Actual: got.Get(a)}
		}
	}
	return nil
}

// DigestBytes computes the four digests and the size of b, for documents a
// format generates and serves without storing.
func DigestBytes(b []byte) Info {
	h := newHasher()
	h.Write(b) //nolint:errcheck // never fails
	return h.info()
}

// hasher computes all four digests of a stream in one pass. Its state can be
// saved and restored, so a resumable upload keeps hashing where it stopped.
type hasher struct {
	size   int64
	hashes [4]hash.Hash // in the order SHA256, SHA512, SHA1, MD5
}

func newHasher() *hasher {
	return &hasher{hashes: [4]hash.Hash{sha256.New(), sha512.New(), sha1.New(), md5.New()}}
}

// Write feeds p to every hash; it never fails.
func (h *hasher) Write(p []byte) (int, error) {
	for _, x := range h.hashes {
		x.Write(p)
	}
	h.size += int64(len(p))
	return len(p), nil
}

func (h *hasher) info() Info {
	sum := func(i int) string { return hex.EncodeToString(h.hashes[i].Sum(nil)) }
	return Info{Size: h.size, Digests: Digests{SHA256: sum(0), SHA512: sum(1), SHA1: sum(2), MD5: sum(3)}}
}

// marshal encodes the size and the four hash states, each prefixed by its
// length.
func (h *hasher) marshal() ([]byte, error) {
	out := binary.AppendUvarint(nil, uint64(h.size))
	for _, x := range h.hashes {
		state, err := x.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("marshal hash state: %w", err)
		}
		out = binary.AppendUvarint(out, uint64(len(state)))
		out = append(out, state...)
	}
	return out, nil
}

// unmarshalHasher restores a hasher saved by marshal.
func unmarshalHasher(b []byte) (*hasher, error) {
	h := newHasher()
	size, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errors.New("corrupt hash state")
	}
	h.size, b = int64(size), b[n:]
	for _, x := range h.hashes {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, errors.New("corrupt hash state")
		}
		b = b[n:]
		if err := x.(encoding.BinaryUnmarshaler).UnmarshalBinary(b[:l]); err != nil {
			return nil, fmt.Errorf("restore hash state: %w", err)
		}
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, errors.New("corrupt hash state: trailing bytes")
	}
	return h, nil
}

// ValidHex reports whether s is a lower-case hex digest of algorithm a.
func ValidHex(a Algorithm, s string) bool {
	var n int
	switch a {
	case SHA256:
		n = sha256.Size
	case SHA512:
		n = sha512.Size
	case SHA1:
		n = sha1.Size
	case MD5:
		n = md5.Size
	default:
		return false
	}
	if len(s) != 2*n {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

package urlpath

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error Check and Segments return.
var ErrInvalid = errors.New("invalid path")

// maxLen is the maximum length in bytes of an escaped path.
const maxLen = 4096

// maxDecodes is the number of times a segment is percent-decoded while
// looking for hidden dot segments, control characters and backslashes.
const maxDecodes = 4

// Check validates escaped, the request path as sent on the wire
// (r.URL.EscapedPath() or the path part of r.RequestURI), starting with "/".
//
// encodedSlash reports whether some segment contains a percent-encoded
// slash, at any encoding level. The caller should refuse such paths unless a
// format claims the encoded slash for a name; the parts around the slash
// have already been validated with the segment rules.
// Every error wraps ErrInvalid.
func Check(escaped string) (encodedSlash bool, err error) {
	if len(escaped) > maxLen {
		return false, fmt.Errorf("%w: path is %d bytes long, the limit is %d", ErrInvalid, len(escaped), maxLen)
	}
	if !strings.HasPrefix(escaped, "/") {
		return false, fmt.Errorf("%w: path %q does not start with \"/\"", ErrInvalid, escaped)
	}
	segs := strings.Split(escaped[1:], "/")
	for i, seg := range segs {
		if seg == "" {
			if i == len(segs)-1 {
				break // trailing slash, or the root "/"
			}
			return false, fmt.Errorf("%w: empty segment", ErrInvalid)
		}
		slash, err := checkSegment(seg)
		if err != nil {
			return false, err
		}
		encodedSlash = encodedSlash || slash
	}
	return encodedSlash, nil
}

// Segments returns the decoded segments of escaped after checking it with
// Check. There is one segment per '/' in escaped: a trailing slash yields a
// final empty segment, so "/" gives [""] and "/a/b/" gives ["a", "b", ""].
// Segments are decoded once; a segment holding an encoded slash keeps it as
// a '/' ("/@scope%2fname" gives ["@scope/name"]).
func Segments(escaped string) ([]string, error) {
	if _, err := Check(escaped); err != nil {
		return nil, err
	}
	segs := strings.Split(escaped[1:], "/")
	for i, seg := range segs {
		segs[i], _, _ = unescape(seg, true) // cannot fail after Check
	}
	return segs, nil
}

// checkSegment validates one non-empty raw segment at every decoding stage
// and reports whether a decoding stage contains a slash.
func checkSegment(raw string) (slash bool, err error) {
	if p := checkStage(raw); p != "" {
		return false, fmt.Errorf("%w: segment %q %s", ErrInvalid, raw, p)
	}
	s, n, err := unescape(raw, true)
	if err != nil {
		return false, fmt.Errorf("%w: segment %q has invalid percent-encoding", ErrInvalid, raw)
	}
	if !utf8.ValidString(s) {
		return false, fmt.Errorf("%w: segment %q is not valid UTF-8 once decoded", ErrInvalid, raw)
	}
	for round := 1; n > 0; round++ {
		if round > maxDecodes {
			return false, fmt.Errorf("%w: segment %q is encoded too many times", ErrInvalid, raw)
		}
		if p := checkStage(s); p != "" {
			return false, fmt.Errorf("%w: segment %q %s", ErrInvalid, raw, p)
		}
		slash = slash || strings.Contains(s, "/")
		s, n, _ = unescape(s, false)
	}
	return slash, nil
}

// checkStage checks one decoding stage of a segment and describes the
// problem found, or returns "".
func checkStage(s string) string {
	for _, part := range strings.Split(s, "/") {
		name, _, _ := strings.Cut(part, ";") // as a servlet container reads it
		switch {
		case part == "":
			return "has an empty name next to an encoded slash"
		case name == "." || name == "..":
			return fmt.Sprintf("is or decodes to a %q segment", name)
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return "contains a control character"
		case c == '\\':
			return "contains a backslash"
		}
	}
	return ""
}

// unescape decodes the percent escapes of s and reports how many it decoded.
// When strict, a '%' not followed by two hex digits is an error; otherwise
// it is kept as is.
func unescape(s string, strict bool) (string, int, error) {
	if !strings.Contains(s, "%") {
		return s, 0, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
				i += 2
				n++
				continue
			}
			if strict {
				return "", 0, errors.New("invalid percent-encoding")
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), n, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

package npm

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"arca/internal/repo"
)

// The publish document carries the tarball base64-encoded in
// _attachments.<file>.data, which can be hundreds of megabytes. The parser
// below decodes every other field with encoding/json, but reads
// _attachments with a small scanner of its own, so that the data string
// streams through a base64 decoder into the blob store and is never held in
// memory.

// maxSmallString bounds the strings of _attachments other than data.
const maxSmallString = 64 << 10

// errBadBody wraps every malformed publish document.
var errBadBody = fmt.Errorf("%w: malformed publish document", repo.ErrInvalid)

// parseBody reads a publish (or metadata update) document. Every top-level
// field but _attachments is returned raw; each attachment's data is handed,
// decoded, to onData while the body streams, with the fields read so far
// (npm sends versions before _attachments). It returns the number of
// attachments.
func parseBody(body io.Reader, onData func(file string, fields map[string]json.RawMessage, data io.Reader) error) (map[string]json.RawMessage, int, error) {
	dec := json.NewDecoder(body)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, 0, bodyErr(err, "not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, bodyErr(err, "bad key")
		}
		key, _ := tok.(string)
		if key != "_attachments" {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, 0, bodyErr(err, "field "+key)
			}
			fields[key] = raw
			continue
		}
		br := bufio.NewReader(io.MultiReader(dec.Buffered(), body))
		if err := expect(br, ':'); err != nil {
			return nil, 0, err
		}
		n, err := scanAttachments(br, fields, onData)
		if err != nil {
			return nil, 0, err
		}
		c, err := nextByte(br)
		if err != nil {
			return nil, 0, bodyErr(err, "unterminated document")
		}
		switch c {
		case '}':
			return fields, n, nil
		case ',':
			// The fields after _attachments: read them as an object of
			// their own.
			var more map[string]json.RawMessage
			if err := json.NewDecoder(io.MultiReader(strings.NewReader("{"), br)).Decode(&more); err != nil {
				return nil, 0, bodyErr(err, "fields after _attachments")
			}
			for k, v := range more {
				if k != "_attachments" {
					fields[k] = v
				}
			}
			return fields, n, nil
		}
		return nil, 0, bodyErr(nil, "unexpected character after _attachments")
	}
	if _, err := dec.Token(); err != nil {
		return nil, 0, bodyErr(err, "unterminated document")
	}
	return fields, 0, nil
}

// bodyErr describes a malformed document, keeping a size-limit error
// recognizable (413).
func bodyErr(err error, what string) error {
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errBadBody, what, err)
	}
	return fmt.Errorf("%w: %s", errBadBody, what)
}

// scanAttachments reads {"file": {"content_type": ..., "data": ..., "length": ...}, ...}.
func scanAttachments(br *bufio.Reader, fields map[string]json.RawMessage, onData func(file string, fields map[string]json.RawMessage, data io.Reader) error) (int, error) {
	if err := expect(br, '{'); err != nil {
		return 0, err
	}
	n := 0
	for {
		c, err := nextByte(br)
		if err != nil {
			return n, bodyErr(err, "_attachments")
		}
		if c == '}' && n == 0 {
			return 0, nil
		}
		if c != '"' {
			return n, bodyErr(nil, "_attachments: expected a file name")
		}
		file, err := readString(br)
		if err != nil {
			return n, err
		}
		if err := expect(br, ':'); err != nil {
			return n, err
		}
		if err := scanAttachment(br, file, fields, onData); err != nil {
			return n, err
		}
		n++
		c, err = nextByte(br)
		if err != nil {
			return n, bodyErr(err, "_attachments")
		}
		switch c {
		case '}':
			return n, nil
		case ',':
			continue
		}
		return n, bodyErr(nil, "_attachments: expected , or }")
	}
}

// scanAttachment reads one attachment object, streaming its data.
func scanAttachment(br *bufio.Reader, file string, fields map[string]json.RawMessage, onData func(file string, fields map[string]json.RawMessage, data io.Reader) error) error {
	if err := expect(br, '{'); err != nil {
		return err
	}
	for {
		c, err := nextByte(br)
		if err != nil {
			return bodyErr(err, "attachment")
		}
		if c == '}' {
			return nil
		}
		if c == ',' {
			continue
		}
		if c != '"' {
			return bodyErr(nil, "attachment: expected a key")
		}
		key, err := readString(br)
		if err != nil {
			return err
		}
		if err := expect(br, ':'); err != nil {
			return err
		}
		if key == "data" {
			if err := expect(br, '"'); err != nil {
				return err
			}
			s := &stringReader{br: br}
			if err := onData(file, fields, base64.NewDecoder(base64.StdEncoding, s)); err != nil {
				return err
			}
			if _, err := io.Copy(io.Discard, s); err != nil {
				return bodyErr(err, "attachment data")
			}
			continue
		}
		if err := skipScalar(br); err != nil {
			return err
		}
	}
}

// nextByte returns the next byte that is not white space.
func nextByte(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, nil
	}
}

// expect consumes white space and then the byte want.
func expect(br *bufio.Reader, want byte) error {
	c, err := nextByte(br)
	if err != nil {
		return bodyErr(err, fmt.Sprintf("expected %q", want))
	}
	if c != want {
		return bodyErr(nil, fmt.Sprintf("expected %q, got %q", want, c))
	}
	return nil
}

// readString reads the rest of a JSON string whose opening quote was read.
func readString(br *bufio.Reader) (string, error) {
	raw := []byte{'"'}
	for escaped := false; ; {
		c, err := br.ReadByte()
		if err != nil {
			return "", bodyErr(err, "unterminated string")
		}
		raw = append(raw, c)
		if len(raw) > maxSmallString {
			return "", bodyErr(nil, "string too long")
		}
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", bodyErr(err, "bad string")
			}
			return s, nil
		}
	}
}

// skipScalar skips a string, number, true, false or null.
func skipScalar(br *bufio.Reader) error {
	c, err := nextByte(br)
	if err != nil {
		return bodyErr(err, "attachment value")
	}
	if c == '"' {
		_, err := readString(br)
		return err
	}
	for n := 0; n < 64; n++ {
		c, err := br.ReadByte()
		if err != nil {
			return bodyErr(err, "attachment value")
		}
		if c == ',' || c == '}' || c == ' ' || c == '\n' || c == '\r' || c == '\t' {
			return br.UnreadByte()
		}
	}
	return bodyErr(nil, "attachment value too long")
}

// stringReader yields the content of a JSON string holding base64 up to its
// closing quote, resolving the one escape a base64 string may carry, "\/".
type stringReader struct {
	br   *bufio.Reader
	done bool
}

func (s *stringReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !s.done {
		c, err := s.br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		switch c {
		case '"':
			s.done = true
			continue
		case '\\':
			if c, err = s.br.ReadByte(); err != nil || c != '/' {
				return n, bodyErr(err, "unexpected escape in attachment data")
			}
		}
		p[n] = c
		n++
	}
	if n == 0 && s.done {
		return 0, io.EOF
	}
	return n, nil
}

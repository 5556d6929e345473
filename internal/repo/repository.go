// Package repo is the repository service every format stands on: it keeps
// repository definitions and stores a repository's assets (a path pointing
// to a blob) through the blob and metadata stores, enforcing the settings
// that are the same for every format (online, write policy).
package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"arca/internal/meta"
)

// Errors of the repository service; the HTTP edge maps them to statuses.
var (
	// ErrNotFound: no such repository or asset. It is the metadata store's
	// error, so lookups need no translation.
	ErrNotFound = meta.ErrNotFound
	// ErrExists: a repository name is taken, or an immutable artifact exists.
	ErrExists = meta.ErrExists
	// ErrWriteDenied: the repository's write policy refuses the write.
	ErrWriteDenied = errors.New("repository is read-only")
	// ErrOffline: the repository is switched off.
	ErrOffline = errors.New("repository is offline")
	// ErrInUse: the repository is still needed, e.g. as a group's member.
	ErrInUse = errors.New("in use")
	// ErrInvalid: a definition or request is malformed.
	ErrInvalid = errors.New("invalid")
)

// Type says where a repository's content comes from.
type Type string

// Repository types.
const (
	Hosted Type = "hosted"
	Proxy  Type = "proxy"
	Group  Type = "group"
)

// WritePolicy says whether an immutable artifact may be written again.
type WritePolicy string

// Write policies.
const (
	AllowOnce WritePolicy = "allow-once" // overwriting an artifact answers 409
	Allow     WritePolicy = "allow"      // overwriting is allowed
	Deny      WritePolicy = "deny"       // the repository is read-only
)

// Repository is a repository's definition, as the REST API shows it.
type Repository struct {
	ID            int64       `json:"-"`
	Name          string      `json:"name"`
	Format        string      `json:"format"`
	Type          Type        `json:"type"`
	Online        bool        `json:"online"`
	AnonymousRead bool        `json:"anonymousRead"`
	WritePolicy   WritePolicy `json:"writePolicy"`
	// Sections are the format- and type-specific settings, keyed by the
	// format id ("maven") or the type ("proxy", "group"), kept as JSON for
	// the package that owns them to read.
	Sections map[string]json.RawMessage `json:"-"`
}

// namePattern is the OCI path-component grammar.
var namePattern = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// reservedNames would be ambiguous under /v2/.
var reservedNames = map[string]bool{"token": true, "_catalog": true}

// ValidName reports whether name may name a repository.
func ValidName(name string) error {
	switch {
	case len(name) > 64:
		return fmt.Errorf("%w: repository name longer than 64 characters", ErrInvalid)
	case reservedNames[name]:
		return fmt.Errorf("%w: repository name %q is reserved", ErrInvalid, name)
	case !namePattern.MatchString(name):
		return fmt.Errorf("%w: repository name %q must match [a-z0-9]+([._-][a-z0-9]+)*", ErrInvalid, name)
	}
	return nil
}

// FieldError is a definition error that names the field at fault, so that
// a caller reading the definition from a file can point at its line.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }

// Unwrap returns the error, which wraps ErrInvalid.
func (e *FieldError) Unwrap() error { return e.Err }

// invalidField builds a FieldError wrapping ErrInvalid.
func invalidField(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)}
}

// Check validates a definition: its name, type and write policy, that its
// format is one of formats (format id -> validator of its section), and its
// sections. Errors wrap ErrInvalid and a *FieldError.
func (r *Repository) Check(formats map[string]SectionValidator) error {
	if err := ValidName(r.Name); err != nil {
		return &FieldError{Field: "name", Err: err}
	}
	switch r.Type {
	case Hosted:
	case Proxy:
		if err := checkProxy(r.Sections[string(Proxy)]); err != nil {
			return &FieldError{Field: "proxy", Err: err}
		}
	case Group:
		if err := checkGroup(r); err != nil {
			return &FieldError{Field: "group", Err: err}
		}
	default:
		return invalidField("type", "type %q is not hosted, proxy or group", r.Type)
	}
	switch r.WritePolicy {
	case AllowOnce, Allow, Deny:
	default:
		return invalidField("writePolicy", "writePolicy %q is not allow-once, allow or deny", r.WritePolicy)
	}
	validate, known := formats[r.Format]
	if !known {
		ids := make([]string, 0, len(formats))
		for id := range formats {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return invalidField("format", "unknown format %q (known: %s)", r.Format, strings.Join(ids, ", "))
	}
	for k := range r.Sections {
		if k != r.Format && k != string(r.Type) {
			return invalidField(k, "unknown field %q for a %s %s repository", k, r.Type, r.Format)
		}
	}
	if validate != nil {
		if err := validate(r, r.Sections[r.Format]); err != nil {
			return &FieldError{Field: r.Format, Err: err}
		}
	}
	return nil
}

// knownFields are the JSON keys of the common settings.
var knownFields = map[string]bool{
	"name": true, "format": true, "type": true, "online": true,
	"anonymousRead": true, "writePolicy": true,
}

// UnmarshalJSON reads a definition, filling the defaults (online, write
// policy allow-once) and keeping any other object-valued key as a section.
func (r *Repository) UnmarshalJSON(b []byte) error {
	type plain Repository
	p := plain{Online: true, WritePolicy: AllowOnce}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for k, v := range all {
		if knownFields[k] {
			continue
		}
		if len(v) == 0 || v[0] != '{' {
			return fmt.Errorf("%w: unknown field %q", ErrInvalid, k)
		}
		if p.Sections == nil {
			p.Sections = map[string]json.RawMessage{}
		}
		p.Sections[k] = v
	}
	*r = Repository(p)
	return nil
}

// MarshalJSON writes the common settings followed by the sections.
func (r Repository) MarshalJSON() ([]byte, error) {
	type plain Repository
	b, err := json.Marshal(plain(r))
	if err != nil || len(r.Sections) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(r.Sections))
	for k := range r.Sections {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	buf := bytes.NewBuffer(b[:len(b)-1])
	for _, k := range keys {
		name, _ := json.Marshal(k)
		fmt.Fprintf(buf, ",%s:%s", name, r.Sections[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// DecodeSection decodes a format's settings section (id is its name, for
// messages) into v strictly: unknown keys and trailing data are errors
// wrapping ErrInvalid. A nil section leaves v as it is.
func DecodeSection(id string, raw json.RawMessage, v any) error {
	if raw == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s settings: %w", ErrInvalid, id, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: %s settings: trailing data", ErrInvalid, id)
	}
	return nil
}

package repo

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Duration is a time.Duration written in Go's syntax ("30m", "10s") in
// JSON.
type Duration time.Duration

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"30m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// ProxySettings is the "proxy" section of a proxy repository: its upstream
// and how politely to use it.
type ProxySettings struct {
	// URL is the upstream in the form its own clients use.
	URL string `json:"url"`
	// Username and Password, or BearerToken, authenticate to the upstream.
	Username    string `json:"username"`
	Password    string `json:"password"`
	BearerToken string `json:"bearerToken"`
	// MetadataMaxAge is how long metadata is served before revalidation.
	MetadataMaxAge Duration `json:"metadataMaxAge"`
	// NegativeCacheTTL is how long an upstream 404 is remembered.
	NegativeCacheTTL Duration `json:"negativeCacheTTL"`
	ConnectTimeout   Duration `json:"connectTimeout"`
	// ReadTimeout bounds the wait for response headers and between two
	// reads of a body.
	ReadTimeout Duration `json:"readTimeout"`
	// MaxConnections bounds the requests in flight to the upstream.
	MaxConnections int `json:"maxConnections"`
	// Retries is how many times a failed request (network error or 5xx) is
	// tried again, with backoff.
	Retries int `json:"retries"`
	// CacheMaxSize (bytes) and CacheMaxAge (since the last download)
	// bound the cache; zero means unbounded.
	CacheMaxSize int64    `json:"cacheMaxSize"`
	CacheMaxAge  Duration `json:"cacheMaxAge"`
	// Namespace is put in front of image names upstream (oci).
	Namespace string `json:"namespace"`
	// PasswordSet and BearerTokenSet are what the REST API shows instead
	// of the secrets; they are ignored on input.
	PasswordSet    bool `json:"passwordSet,omitempty"`
	BearerTokenSet bool `json:"bearerTokenSet,omitempty"`
}

// DefaultProxySettings are the settings of a proxy section that gives only
// its url.
func DefaultProxySettings() ProxySettings {
	return ProxySettings{
		MetadataMaxAge:   Duration(30 * time.Minute),
		NegativeCacheTTL: Duration(5 * time.Minute),
		ConnectTimeout:   Duration(10 * time.Second),
		ReadTimeout:      Duration(60 * time.Second),
		MaxConnections:   16,
		Retries:          2,
	}
}

// decodeProxy reads a proxy section over the defaults, strictly.
func decodeProxy(raw json.RawMessage) (ProxySettings, error) {
	s := DefaultProxySettings()
	if raw == nil {
		return s, fmt.Errorf("%w: a proxy repository needs a \"proxy\" section with its upstream url", ErrInvalid)
	}
	if err := DecodeSection("proxy", raw, &s); err != nil {
		return s, err
	}
	return s, nil
}

// checkProxy validates a proxy section.
func checkProxy(raw json.RawMessage) error {
	s, err := decodeProxy(raw)
	if err != nil {
		return err
	}
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		return fmt.Errorf("%w: proxy settings: url is required", ErrInvalid)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%w: proxy settings: url %q is not an absolute http or https URL", ErrInvalid, s.URL)
	case u.User != nil:
		return fmt.Errorf("%w: proxy settings: give credentials as username and password, not in the url", ErrInvalid)
	case s.MaxConnections < 1:
		return fmt.Errorf("%w: proxy settings: maxConnections must be at least 1", ErrInvalid)
	case s.Retries < 0 || s.Retries > 10:
		return fmt.Errorf("%w: proxy settings: retries must be between 0 and 10", ErrInvalid)
	case s.CacheMaxSize < 0:
		return fmt.Errorf("%w: proxy settings: cacheMaxSize must not be negative", ErrInvalid)
	case s.Password != "" && s.BearerToken != "":
		return fmt.Errorf("%w: proxy settings: give a password or a bearerToken, not both", ErrInvalid)
	case s.Password != "" && s.Username == "":
		return fmt.Errorf("%w: proxy settings: a password needs a username", ErrInvalid)
	}
	return nil
}

// Proxy secrets (password, bearerToken) are sealed with AES-GCM before a
// definition is stored, and shown by the REST API only as set or not set.

// sealPrefix marks a sealed secret in a stored definition.
const sealPrefix = "sealed:v1:"

// secretKeys are the keys of a proxy section that hold secrets, with the
// key the API shows instead.
var secretKeys = map[string]string{"password": "passwordSet", "bearerToken": "bearerTokenSet"}

func sealed(s string) bool { return strings.HasPrefix(s, sealPrefix) }

// ErrNoSecretKey is returned when a secret must be sealed or opened and no
// key was given to the service.
var ErrNoSecretKey = errors.New("no secret key to seal proxy credentials with")

// SetSecretKey gives the service the 32-byte key that seals proxy
// credentials at rest.
func (s *Service) SetSecretKey(key []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	if len(key) != 32 {
		return fmt.Errorf("secret key: %d bytes, want 32", len(key))
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	s.secrets = gcm
	return nil
}

// sealSecrets seals the plain secrets of r's proxy section, keeps those
// that old (the stored definition, or nil) had when r leaves them out,
// drops those set to "", and drops the keys the API shows instead.
func (s *Service) sealSecrets(r, old *Repository) error {
	raw := r.Sections[string(Proxy)]
	if r.Type != Proxy || raw == nil {
		return nil
	}
	var sec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sec); err != nil {
		return fmt.Errorf("%w: proxy settings: %w", ErrInvalid, err)
	}
	var oldSec map[string]json.RawMessage
	if old != nil && old.Sections[string(Proxy)] != nil {
		json.Unmarshal(old.Sections[string(Proxy)], &oldSec) //nolint:errcheck // stored by this service
	}
	for key, shown := range secretKeys {
		delete(sec, shown)
		v, given := sec[key]
		if !given {
			if prev, ok := oldSec[key]; ok {
				sec[key] = prev
				if key == "password" && !hasString(sec, "username") {
					return fmt.Errorf(`%w: proxy settings: the password kept from before needs a username: send "username" with every update, or clear the password with "password":""`, ErrInvalid)
				}
			}
			continue
		}
		var plain string
		if err := json.Unmarshal(v, &plain); err != nil {
			return fmt.Errorf("%w: proxy settings: %s must be a string", ErrInvalid, key)
		}
		if plain == "" {
			delete(sec, key)
			continue
		}
		if sealed(plain) {
			// Only what this service sealed may come back sealed.
			if _, err := s.open(plain); err != nil {
				return fmt.Errorf("%w: proxy settings: %s: %w", ErrInvalid, key, err)
			}
			continue
		}
		if s.secrets == nil {
			return ErrNoSecretKey
		}
		nonce := make([]byte, s.secrets.NonceSize())
		rand.Read(nonce) //nolint:errcheck // crypto/rand.Read never fails
		box := s.secrets.Seal(nonce, nonce, []byte(plain), []byte(key))
		sec[key], _ = json.Marshal(sealPrefix + base64.StdEncoding.EncodeToString(box))
	}
	b, err := json.Marshal(sec)
	if err != nil {
		return err
	}
	r.Sections[string(Proxy)] = b
	return nil
}

// hasString reports whether sec holds a non-empty string at key.
func hasString(sec map[string]json.RawMessage, key string) bool {
	var v string
	return json.Unmarshal(sec[key], &v) == nil && v != ""
}

// open unseals a secret.
func (s *Service) open(v string) (string, error) {
	if s.secrets == nil {
		return "", ErrNoSecretKey
	}
	box, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, sealPrefix))
	n := s.secrets.NonceSize()
	if err != nil || len(box) < n {
		return "", errors.New("damaged sealed secret")
	}
	for key := range secretKeys {
		if plain, err := s.secrets.Open(nil, box[:n], box[n:], []byte(key)); err == nil {
			return string(plain), nil
		}
	}
	return "", errors.New("sealed secret does not open with this server's secret key")
}

// ProxySettings returns the proxy settings of a proxy repository, defaults
// filled and secrets unsealed.
func (s *Service) ProxySettings(r *Repository) (ProxySettings, error) {
	p, err := decodeProxy(r.Sections[string(Proxy)])
	if err != nil {
		return p, err
	}
	for _, secret := range []*string{&p.Password, &p.BearerToken} {
		if sealed(*secret) {
			if *secret, err = s.open(*secret); err != nil {
				return p, fmt.Errorf("repository %s: %w", r.Name, err)
			}
		}
	}
	return p, nil
}

// Unsealed returns a copy of r whose proxy section holds its secrets in
// the clear, to compare with a definition as written by people.
func (s *Service) Unsealed(r *Repository) (*Repository, error) {
	raw := r.Sections[string(Proxy)]
	if raw == nil {
		return r, nil
	}
	var sec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sec); err != nil {
		return nil, err
	}
	for key := range secretKeys {
		var v string
		if json.Unmarshal(sec[key], &v) != nil || !sealed(v) {
			continue
		}
		plain, err := s.open(v)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.Name, err)
		}
		sec[key], _ = json.Marshal(plain)
	}
	c := *r
	c.Sections = map[string]json.RawMessage{}
	for k, v := range r.Sections {
		c.Sections[k] = v
	}
	b, err := json.Marshal(sec)
	if err != nil {
		return nil, err
	}
	c.Sections[string(Proxy)] = b
	return &c, nil
}

// Redacted returns a copy of r fit to show: the proxy section's secrets
// are replaced by whether they are set.
func (r *Repository) Redacted() *Repository {
	raw := r.Sections[string(Proxy)]
	if raw == nil {
		return r
	}
	var sec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sec); err != nil {
		return r
	}
	for key, shown := range secretKeys {
		_, set := sec[key]
		delete(sec, key)
		sec[shown], _ = json.Marshal(set)
	}
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(sec) //nolint:errcheck // a map of raw JSON
	c := *r
	c.Sections = map[string]json.RawMessage{}
	for k, v := range r.Sections {
		c.Sections[k] = v
	}
	c.Sections[string(Proxy)] = bytes.TrimSpace(buf.Bytes())
	return &c
}

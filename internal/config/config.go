// Package config loads arca's settings. They come from, in rising priority:
// the built-in defaults (Default), a YAML file, ARCA_* environment variables
// and command-line flags.
//
// Every YAML key has one environment variable, named by one rule: the key's
// path, with dots and camel-case word breaks turned into underscores, upper
// case, after ARCA_. So baseURL is ARCA_BASE_URL and uploadSessionTTL is
// ARCA_UPLOAD_SESSION_TTL. Unknown YAML keys are an error, reported with
// their line; unknown ARCA_ variables are ignored, since the command-line
// client uses some of its own.
//
// Secrets follow the _FILE convention: for a secret setting X (tagged
// secret:"true", such as adminPassword), the variable ARCA_X_FILE names a
// file whose content, trailing newlines trimmed, is the value; so
// ARCA_ADMIN_PASSWORD_FILE=/run/secrets/arca-admin. Setting both ARCA_X and
// ARCA_X_FILE is an error.
//
// The file may also declare repositories and users (Repositories, Users),
// which internal/declare creates or updates at start. They exist only in the
// file, never in the environment. A declared user's password is given only
// as a bcrypt hash (passwordHash) or as a file by the same _FILE convention
// (passwordFile); a plain password key is refused, since the file is meant to
// be kept in version control.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Config holds every server setting.
type Config struct {
	// Data is the folder holding the database, blobs and admin password.
	Data string `yaml:"data"`
	// Listen is the host:port the HTTP server binds.
	Listen string `yaml:"listen"`
	// BaseURL, when set, is the external URL every absolute link starts with.
	BaseURL string `yaml:"baseURL"`
	// TrustedProxies lists the CIDRs whose X-Forwarded-Proto and
	// X-Forwarded-Host headers are believed.
	TrustedProxies []string `yaml:"trustedProxies"`
	// LogFormat is "text" or "json".
	LogFormat string `yaml:"logFormat"`
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string `yaml:"logLevel"`
	// UploadSessionTTL is how long an idle resumable upload is kept.
	UploadSessionTTL Duration `yaml:"uploadSessionTTL"`
	// AdminPassword is the password given to the admin user created on first
	// start; when empty a random one is written to <data>/admin.password.
	AdminPassword string `yaml:"adminPassword" secret:"true"`
	// RegistryTokenKey, when set, signs the OCI registry's bearer tokens
	// (at least 32 characters); when empty a random key is kept in
	// <data>/registry-token.key. Several nodes must share one key.
	RegistryTokenKey string `yaml:"registryTokenKey" secret:"true"`
	// SecretKey, when set, seals the credentials of proxy repositories at
	// rest (at least 32 characters); when empty a random key is kept in
	// <data>/secret.key. Several nodes must share one key.
	SecretKey string `yaml:"secretKey" secret:"true"`
	// OCIMirror makes /v2/ a registry mirror for paths whose first segment
	// names no repository (see the README).
	OCIMirror OCIMirror `yaml:"ociMirror"`
	// GC configures garbage collection of unused blobs.
	GC GC `yaml:"gc"`

	// Repositories are declared repositories, created or updated at start.
	Repositories []Repository `yaml:"repositories,omitempty" env:"-"`
	// Users are declared users, created or updated at start after the
	// repositories.
	Users []User `yaml:"users,omitempty" env:"-"`
}

// OCIMirror routes /v2/ paths that name no repository to oci proxy
// repositories: by containerd's ns parameter (the upstream registry's
// host) through Namespaces, else to DefaultRepository.
type OCIMirror struct {
	DefaultRepository string            `yaml:"defaultRepository"`
	Namespaces        map[string]string `yaml:"namespaces"`
}

// GC configures garbage collection.
type GC struct {
	// GracePeriod spares blobs younger than this, so that uploads in flight
	// are never hurt.
	GracePeriod Duration `yaml:"gracePeriod"`
	// Schedule, when positive, runs garbage collection at this interval.
	Schedule Duration `yaml:"schedule"`
}

// Duration is a time.Duration written in Go syntax ("90s", "24h").
type Duration time.Duration

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Data:             "./arca-data",
		Listen:           "127.0.0.1:8080",
		LogFormat:        "text",
		LogLevel:         "info",
		UploadSessionTTL: Duration(24 * time.Hour),
		GC:               GC{GracePeriod: Duration(time.Hour)},
	}
}

// LoadFile overlays the YAML file at path on c. Unknown keys are an error;
// every error names its line. Declarations get their file and line, and a
// relative passwordFile is made relative to the file's folder.
//
// On a decoding error c still holds every value that could be decoded, so
// that a check can go on and report more problems.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: it simply changes nothing.
	err = dec.Decode(c)
	for i := range c.Repositories {
		c.Repositories[i].Pos.File = path
	}
	for i := range c.Users {
		u := &c.Users[i]
		u.Pos.File = path
		for j := range u.Permissions {
			u.Permissions[j].Pos.File = path
		}
		if u.PasswordFile != "" && !filepath.IsAbs(u.PasswordFile) {
			u.PasswordFile = filepath.Join(filepath.Dir(path), u.PasswordFile)
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// LoadEnv overlays the ARCA_* variables of environ (as os.Environ gives them)
// on c. Variables that name no setting are ignored. A secret setting may
// instead be read from the file its ARCA_..._FILE variable names.
func (c *Config) LoadEnv(environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "ARCA_") {
			env[k] = v
		}
	}
	return walkFields(reflect.ValueOf(c).Elem(), "", func(key string, sf reflect.StructField, f reflect.Value) error {
		name := EnvName(key)
		v, ok := env[name]
		if file, fromFile := env[name+"_FILE"]; fromFile && sf.Tag.Get("secret") == "true" {
			if ok {
				return fmt.Errorf("%s and %s_FILE are both set; set one", name, name)
			}
			s, err := ReadSecretFile(file)
			if err != nil {
				return fmt.Errorf("%s_FILE: %w", name, err)
			}
			v, ok = s, true
		}
		if !ok {
			return nil
		}
		if err := setField(f, v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// Redacted returns a copy of c fit to print: secrets and password hashes
// read "(set)" when they are set.
func (c Config) Redacted() Config {
	out := c
	walkFields(reflect.ValueOf(&out).Elem(), "", func(_ string, sf reflect.StructField, f reflect.Value) error { //nolint:errcheck // fn never fails
		if sf.Tag.Get("secret") == "true" && f.Kind() == reflect.String && f.String() != "" {
			f.SetString("(set)")
		}
		return nil
	})
	if c.Repositories != nil {
		out.Repositories = make([]Repository, len(c.Repositories))
		for i, r := range c.Repositories {
			out.Repositories[i] = r.redacted()
		}
	}
	if c.Users != nil {
		out.Users = make([]User, len(c.Users))
		for i, u := range c.Users {
			if u.PasswordHash != "" {
				u.PasswordHash = "(set)"
			}
			out.Users[i] = u
		}
	}
	return out
}

// EnvName returns the environment variable for a YAML key path such as
// "baseURL" or "database.maxConnections".
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString("ARCA")
	for _, part := range strings.Split(key, ".") {
		r := []rune(part)
		for i, c := range r {
			// A word starts at an upper-case letter that follows a lower-case
			// one, or that precedes one after a run of capitals (URLPath).
			startsWord := i == 0 || unicode.IsUpper(c) && (unicode.IsLower(r[i-1]) ||
				i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))
			if startsWord {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToUpper(c))
		}
	}
	return b.String()
}

// walkFields calls fn for every leaf setting with its YAML key path,
// skipping the fields tagged env:"-" (the declarations).
func walkFields(v reflect.Value, prefix string, fn func(key string, sf reflect.StructField, f reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" || t.Field(i).Tag.Get("env") == "-" {
			continue
		}
		key := prefix + name
		f := v.Field(i)
		if f.Kind() == reflect.Struct && !f.Addr().Type().Implements(textUnmarshaler) {
			if err := walkFields(f, key+".", fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(key, t.Field(i), f); err != nil {
			return err
		}
	}
	return nil
}

var textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()

// setField parses s into a setting: strings as they are, lists split on
// commas, numbers, booleans and text-unmarshalled types by their syntax.
func setField(f reflect.Value, s string) error {
	if u, ok := f.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Slice:
		var items []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		// Decode scalars with YAML's own rules, so env and file agree.
		return yaml.Unmarshal([]byte(s), f.Addr().Interface())
	}
	return nil
}

// Validate checks the settings and returns every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("data: must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("baseURL: %q is not an http or https URL", c.BaseURL))
		}
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("trustedProxies: %w", err))
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("logFormat: %q is neither text nor json", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("logLevel: unknown level %q", c.LogLevel))
	}
	if c.GC.GracePeriod < 0 || c.GC.Schedule < 0 {
		errs = append(errs, errors.New("gc: gracePeriod and schedule must not be negative"))
	}
	if c.UploadSessionTTL <= 0 {
		errs = append(errs, errors.New("uploadSessionTTL: must be positive"))
	}
	return errors.Join(errs...)
}

// Prefixes parses TrustedProxies; call it after Validate.
func (c *Config) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range c.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pfx.Masked())
		}
	}
	return out
}

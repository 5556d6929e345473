package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"arca/internal/keyfile"
)

// RegistryTokenTTL is how long a registry token lasts. Clients fetch a new
// one when it expires, as the Docker token protocol intends.
const RegistryTokenTTL = 5 * time.Minute

// registryKeyFile holds the registry token signing key inside the data
// folder, so that tokens survive a restart.
const registryKeyFile = "registry-token.key"

// registryIssuer names arca as the issuer of its registry tokens.
const registryIssuer = "arca"

// Access is one entry of a registry token's access list, as the Docker token
// protocol writes it: {"type":"repository","name":"containers/team/app",
// "actions":["pull","push"]}.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// ParseScope reads a scope parameter of the token endpoint, such as
// "repository:containers/team/app:pull,push". Unknown resource types are
// kept; they just never grant anything.
func ParseScope(scope string) (Access, error) {
	typ, rest, ok := strings.Cut(scope, ":")
	if !ok {
		return Access{}, fmt.Errorf("%w: scope %q is not type:name:actions", ErrInvalid, scope)
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return Access{}, fmt.Errorf("%w: scope %q is not type:name:actions", ErrInvalid, scope)
	}
	return Access{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")}, nil
}

// actionPermissions maps registry actions to arca permissions.
var actionPermissions = map[string]Permission{"pull": Read, "push": Write, "delete": Delete}

type registryClaims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access"`
}

// LoadRegistryKey sets the key that signs registry tokens: configured when
// given, otherwise the key kept in the data folder, made on first use.
func (s *Service) LoadRegistryKey(dataDir, configured string) error {
	key, err := keyfile.Load(dataDir, registryKeyFile, configured)
	if err != nil {
		return fmt.Errorf("%w: registry token key: %w", ErrInvalid, err)
	}
	s.registryKey = key
	return nil
}

// RepositoryLookup says on which repository a permission on the named one
// is checked, as a Target: the repository itself, or for a write to a
// group its write member (with Via naming the group). ok is false when
// the repository does not exist or the permission cannot be had there.
type RepositoryLookup func(ctx context.Context, name string, perm Permission) (t Target, ok bool)

// IssueRegistryToken grants p (nil: anonymous) the requested accesses it
// holds, and no more, in a signed token that expires after
// RegistryTokenTTL. An access name's first segment is the arca repository.
func (s *Service) IssueRegistryToken(ctx context.Context, p *Principal, service string,
	requested []Access, lookup RepositoryLookup) (string, time.Time, error) {
	if len(s.registryKey) == 0 {
		return "", time.Time{}, errors.New("registry token key not loaded")
	}
	var granted []Access
	for _, a := range requested {
		if a.Type != "repository" {
			continue
		}
		repoName, _, _ := strings.Cut(a.Name, "/")
		var actions []string
		for _, action := range expandActions(a.Actions) {
			perm := actionPermissions[action]
			target, ok := lookup(ctx, repoName, perm)
			if !ok || slices.Contains(actions, action) {
				continue
			}
			if Authorize(p, target, perm) == nil {
				actions = append(actions, action)
			}
		}
		if len(actions) > 0 {
			granted = append(granted, Access{Type: a.Type, Name: a.Name, Actions: actions})
		}
	}
	now := time.Now()
	expires := now.Add(RegistryTokenTTL)
	var id [12]byte
	rand.Read(id[:]) //nolint:errcheck // crypto/rand.Read never fails
	claims := registryClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: registryIssuer, Audience: jwt.ClaimStrings{service},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(expires), ID: base64.RawURLEncoding.EncodeToString(id[:]),
		},
		Access: granted,
	}
	if p != nil {
		claims.Subject = p.Name
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.registryKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign registry token: %w", err)
	}
	return signed, expires, nil
}

// expandActions turns "*" into every action.
func expandActions(actions []string) []string {
	if slices.Contains(actions, "*") {
		return []string{"pull", "push", "delete"}
	}
	var out []string
	for _, a := range actions {
		if _, ok := actionPermissions[a]; ok {
			out = append(out, a)
		}
	}
	return out
}

// checkRegistryToken verifies a registry token. An anonymous token gives a
// nil principal: its accesses are what anonymous callers may do anyway.
func (s *Service) checkRegistryToken(ctx context.Context, raw string) (*Principal, error) {
	wrong := fmt.Errorf("%w: invalid or expired registry token", ErrUnauthenticated)
	if len(s.registryKey) == 0 {
		return nil, wrong
	}
	var claims registryClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return s.registryKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(registryIssuer),
		jwt.WithExpirationRequired())
	if err != nil {
		return nil, wrong
	}
	if claims.Subject == "" {
		return nil, nil
	}
	u, err := s.db.Queries().User(ctx, claims.Subject)
	if err != nil {
		// A user deleted since the token was issued.
		return nil, wrong
	}
	p, err := s.principal(ctx, u, false)
	if err != nil {
		return nil, err
	}
	p.scope = map[string]map[Permission]bool{}
	for _, a := range claims.Access {
		repoName, _, _ := strings.Cut(a.Name, "/")
		if p.scope[repoName] == nil {
			p.scope[repoName] = map[Permission]bool{}
		}
		for _, action := range a.Actions {
			if perm, ok := actionPermissions[action]; ok {
				p.scope[repoName][perm] = true
			}
		}
	}
	return p, nil
}

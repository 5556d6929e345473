package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"arca/internal/meta"
)

// TokenPrefix starts every token secret, so that secret scanners and arca
// itself can recognize one.
const TokenPrefix = "arca_"

// tokenTouchEvery bounds how often a token's last use is written.
const tokenTouchEvery = time.Minute

// Token is a token as the API shows it. Secret is set only when the token
// is created.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Token      string     `json:"token,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
}

func tokenView(t meta.Token) Token {
	v := Token{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt}
	if !t.ExpiresAt.IsZero() {
		v.ExpiresAt = &t.ExpiresAt
	}
	if !t.LastUsedAt.IsZero() {
		v.LastUsedAt = &t.LastUsedAt
	}
	return v
}

// hashSecret is how a token secret is stored. Secrets are 256 random bits,
// so a fast hash is enough: there is nothing to guess.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken makes a token for p. expiresIn 0 means it never expires. The
// secret is in the result and nowhere else.
func (s *Service) CreateToken(ctx context.Context, p *Principal, name string, expiresIn time.Duration) (Token, error) {
	if p == nil {
		return Token{}, ErrUnauthenticated
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return Token{}, fmt.Errorf("%w: a token needs a name of at most 100 characters", ErrInvalid)
	}
	if expiresIn < 0 {
		return Token{}, fmt.Errorf("%w: expiresIn must not be negative", ErrInvalid)
	}
	var secret, id [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return Token{}, fmt.Errorf("generate token: %w", err)
	}
	if _, err := rand.Read(id[:8]); err != nil {
		return Token{}, fmt.Errorf("generate token id: %w", err)
	}
	plain := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	t := meta.Token{ID: hex.EncodeToString(id[:8]), UserID: p.ID, Name: name, SecretHash: hashSecret(plain)}
	if expiresIn > 0 {
		t.ExpiresAt = time.Now().Add(expiresIn).UTC()
	}
	// A token made with an expiring token expires no later than it: a
	// leaked short-lived token must not mint a lasting one.
	if !p.TokenExpires.IsZero() && (t.ExpiresAt.IsZero() || t.ExpiresAt.After(p.TokenExpires)) {
		t.ExpiresAt = p.TokenExpires
	}
	if err := s.db.Queries().CreateToken(ctx, &t); err != nil {
		return Token{}, err
	}
	v := tokenView(t)
	v.Token = plain
	return v, nil
}

// Tokens lists up to limit of the caller's tokens, newest first, after
// the token whose Cursor is after ("" for the first page).
func (s *Service) Tokens(ctx context.Context, p *Principal, after string, limit int) ([]Token, error) {
	if p == nil {
		return nil, ErrUnauthenticated
	}
	var cursor meta.TokenCursor
	if after != "" {
		at, id, ok := strings.Cut(after, "_")
		n, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil || id == "" {
			return nil, fmt.Errorf("%w: after %q is not a token list cursor", ErrInvalid, after)
		}
		cursor = meta.TokenCursor{CreatedAt: time.Unix(0, n), ID: id}
	}
	rows, err := s.db.Queries().Tokens(ctx, p.ID, cursor, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Token, 0, len(rows))
	for _, t := range rows {
		out = append(out, tokenView(t))
	}
	return out, nil
}

// Cursor is the value of ?after= that lists the tokens after t.
func (t Token) Cursor() string {
	return strconv.FormatInt(t.CreatedAt.UnixNano(), 10) + "_" + t.ID
}

// RevokeToken deletes one of p's tokens; it stops working at once.
func (s *Service) RevokeToken(ctx context.Context, p *Principal, id string) error {
	if p == nil {
		return ErrUnauthenticated
	}
	return s.db.Queries().DeleteToken(ctx, p.ID, id)
}

// CheckToken authenticates a token secret. With owner set, the token must
// belong to that user (basic auth with the owner's name).
func (s *Service) CheckToken(ctx context.Context, secret, owner string) (*Principal, error) {
	wrong := fmt.Errorf("%w: unknown, revoked or expired token", ErrUnauthenticated)
	if !strings.HasPrefix(secret, TokenPrefix) {
		return nil, wrong
	}
	hash := hashSecret(secret)
	t, err := s.db.Queries().TokenBySecretHash(ctx, hash)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, wrong
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(t.SecretHash)) != 1 {
		return nil, wrong
	}
	now := time.Now()
	if !t.ExpiresAt.IsZero() && now.After(t.ExpiresAt) {
		return nil, wrong
	}
	u, err := s.db.Queries().UserByID(ctx, t.UserID)
	if err != nil {
		return nil, err
	}
	if owner != "" && owner != u.Name {
		return nil, wrong
	}
	fresh := s.touchToken(ctx, t.ID, now)
	p, err := s.principal(ctx, u, fresh)
	if err != nil {
		return nil, err
	}
	p.Token, p.TokenExpires = t.ID, t.ExpiresAt
	return p, nil
}

// touchToken records a token's use at most once per tokenTouchEvery and
// reports whether it did.
func (s *Service) touchToken(ctx context.Context, id string, now time.Time) bool {
	s.mu.Lock()
	last, seen := s.touched[id]
	if seen && now.Sub(last) < tokenTouchEvery {
		s.mu.Unlock()
		return false
	}
	if len(s.touched) >= maxVerified {
		clear(s.touched)
	}
	s.touched[id] = now
	s.mu.Unlock()
	// A lost last-use time is harmless; the request goes on.
	_ = s.db.Queries().TouchToken(ctx, id, now)
	return true
}

package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"arca/internal/auth"
)

// TestTokenFromExpiringTokenExpiresWithIt checks that a token cannot
// outlive the token it was made with.
func TestTokenFromExpiringTokenExpiresWithIt(t *testing.T) {
	s, _, dir := newService(t)
	ctx := context.Background()
	if _, err := s.Bootstrap(ctx, dir, "admin-password"); err != nil {
		t.Fatal(err)
	}
	admin, err := s.CheckPassword(ctx, "admin", "admin-password")
	if err != nil {
		t.Fatal(err)
	}
	parent, err := s.CreateToken(ctx, admin, "short", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	viaToken, err := s.CheckToken(ctx, parent.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, ttl := range map[string]time.Duration{"never": 0, "longer": 48 * time.Hour} {
		child, err := s.CreateToken(ctx, viaToken, name, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if child.ExpiresAt == nil || child.ExpiresAt.After(*parent.ExpiresAt) {
			t.Errorf("%s: child expires %v, after its parent's %v", name, child.ExpiresAt, parent.ExpiresAt)
		}
	}
	shorter, err := s.CreateToken(ctx, viaToken, "shorter", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if shorter.ExpiresAt == nil || !shorter.ExpiresAt.Before(*parent.ExpiresAt) {
		t.Errorf("a shorter child got %v, want its own shorter expiry", shorter.ExpiresAt)
	}
	lasting, err := s.CreateToken(ctx, admin, "lasting", 0)
	if err != nil || lasting.ExpiresAt != nil {
		t.Fatalf("a token made with a password: %+v, %v; want no expiry", lasting, err)
	}
}

func TestReservedUserNames(t *testing.T) {
	for _, name := range []string{"anonymous", "__token__", "configuration"} {
		if err := auth.ValidUserName(name); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := auth.ValidUserName("ci-bot"); err != nil {
		t.Errorf("ci-bot: %v", err)
	}
}

// TestTokenPages lists tokens a page at a time, newest first, each once.
func TestTokenPages(t *testing.T) {
	s, _, dir := newService(t)
	ctx := context.Background()
	if _, err := s.Bootstrap(ctx, dir, "admin-password"); err != nil {
		t.Fatal(err)
	}
	admin, err := s.CheckPassword(ctx, "admin", "admin-password")
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, name := range []string{"t1", "t2", "t3", "t4", "t5"} {
		tok, err := s.CreateToken(ctx, admin, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		made = append([]string{tok.Name}, made...) // newest first
	}
	var got []string
	after := ""
	for range 10 {
		page, err := s.Tokens(ctx, admin, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range page {
			got = append(got, tok.Name)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Cursor()
	}
	if strings.Join(got, " ") != strings.Join(made, " ") {
		t.Errorf("pages of 2 listed %v, want %v", got, made)
	}
	if _, err := s.Tokens(ctx, admin, "not-a-cursor", 2); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("a malformed cursor: %v, want ErrInvalid", err)
	}
}

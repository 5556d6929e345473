package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/repo"
)

// TokenEndpoint answers GET /v2/token, the Docker token protocol's token
// server (https://distribution.github.io/distribution/spec/auth/token/), and
// its OAuth2 form, POST /v2/token with grant_type=password. The caller (by
// basic auth, or the form's username and password) gets a signed token for
// the requested scopes it holds; anonymous callers get one for what anyone
// may do, such as pulling from repositories with anonymousRead.
func TokenEndpoint(authn *auth.Service, repos *repo.Service) func(http.ResponseWriter, *format.RootRequest) error {
	lookup := func(ctx context.Context, name string, perm auth.Permission) (auth.Target, bool) {
		r, err := repos.Get(ctx, name)
		if err != nil {
			return auth.Target{}, false
		}
		if r.Type != repo.Group || perm == auth.Read {
			return auth.Target{Repository: r.Name, AnonymousRead: r.AnonymousRead}, true
		}
		// A write to a group is a write to its write member: the token
		// grants it when the user may write there.
		g, err := repo.GroupSettingsOf(r)
		if err != nil || g.WriteMember == "" {
			return auth.Target{}, false
		}
		wm, err := repos.Get(ctx, g.WriteMember)
		if err != nil {
			return auth.Target{}, false
		}
		return auth.Target{Repository: wm.Name, AnonymousRead: wm.AnonymousRead, Via: r.Name}, true
	}
	return func(w http.ResponseWriter, r *format.RootRequest) error {
		user := r.User
		var scopes []string
		service := ""
		switch r.Method {
		case http.MethodPost:
			if err := r.ParseForm(); err != nil {
				return fmt.Errorf("%w: token request form: %w", repo.ErrInvalid, err)
			}
			if gt := r.PostForm.Get("grant_type"); gt != "password" {
				return &format.Error{Status: http.StatusBadRequest, Code: "UNSUPPORTED",
					Message: fmt.Sprintf("grant_type %q is not supported; use password", gt)}
			}
			p, err := authn.CheckPassword(r.Context(), r.PostForm.Get("username"), r.PostForm.Get("password"))
			if err != nil {
				return err
			}
			user = p
			scopes = strings.Fields(r.PostForm.Get("scope"))
			service = r.PostForm.Get("service")
		default:
			q := r.URL.Query()
			for _, s := range q["scope"] {
				scopes = append(scopes, strings.Fields(s)...)
			}
			service = q.Get("service")
		}
		if service == "" {
			if u, err := url.Parse(r.BaseURL); err == nil {
				service = u.Host
			}
		}
		var requested []auth.Access
		for _, s := range scopes {
			a, err := auth.ParseScope(s)
			if err != nil {
				return err
			}
			requested = append(requested, a)
		}
		token, expires, err := authn.IssueRegistryToken(r.Context(), user, service, requested, lookup)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set(apiVersionHeader, apiVersion)
		return json.NewEncoder(w).Encode(map[string]any{
			"token":        token,
			"access_token": token,
			"expires_in":   int(time.Until(expires).Seconds()),
			"issued_at":    time.Now().UTC().Format(time.RFC3339),
		})
	}
}

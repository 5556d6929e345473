package npm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/repo"
)

// errorIsNotFound reports a missing package or asset.
func errorIsNotFound(err error) bool { return errors.Is(err, repo.ErrNotFound) }

// ping answers npm ping.
func (f *Format) ping(w http.ResponseWriter, r *format.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{})
}

// whoami answers npm whoami with the caller's name.
func (f *Format) whoami(w http.ResponseWriter, r *format.Request) error {
	if r.User == nil {
		return fmt.Errorf("%w: log in with npm login", auth.ErrUnauthenticated)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"username": r.User.Name})
}

// webLogin answers the web login endpoint with 404, so that npm falls back
// to the classic login with a user name and password.
func (f *Format) webLogin(w http.ResponseWriter, r *format.Request) error {
	return npmErr(http.StatusNotFound, "web login is not supported: use npm login --auth-type=legacy")
}

// login answers npm login and npm adduser
// (PUT /-/user/org.couchdb.user:{name}): the password of an existing arca
// user buys a new API token. Users are created through arca's API, never
// here.
func (f *Format) login(w http.ResponseWriter, r *format.Request) error {
	user, ok := strings.CutPrefix(r.PathValue("user"), "org.couchdb.user:")
	if !ok {
		return npmErr(http.StatusNotFound, "no such endpoint")
	}
	var body struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("read login: %w", err)
	}
	if err := json.Unmarshal(b, &body); err != nil || body.Password == "" {
		return npmErr(http.StatusBadRequest, "the body must give name and password")
	}
	if body.Name != "" && body.Name != user {
		return npmErr(http.StatusBadRequest, "the body names %s, the path %s", body.Name, user)
	}
	p, err := f.authn.CheckPassword(r.Context(), user, body.Password)
	if err != nil {
		return fmt.Errorf("%w (arca creates no users through npm adduser)", err)
	}
	tok, err := f.authn.CreateToken(r.Context(), p, "npm login "+time.Now().UTC().Format(time.RFC3339), 0)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{
		"ok": true, "id": "org.couchdb.user:" + user, "token": tok.Token})
}

// audit answers npm audit's endpoints honestly: arca knows no advisories
// for hosted packages. A proxy refuses, rather than claim that packages
// its upstream may know advisories for have none.
func (f *Format) audit(w http.ResponseWriter, r *format.Request) error {
	io.Copy(io.Discard, io.LimitReader(r.Body, 16<<20)) //nolint:errcheck // the request is not read
	if r.Repo.Type == repo.Proxy {
		return npmErr(http.StatusNotFound, "npm audit is not available through the proxy repository %s: audit against its upstream", r.Repo.Name)
	}
	if strings.HasSuffix(r.URL.Path, "/quick") {
		return writeJSON(w, http.StatusOK, map[string]any{"actions": []any{}, "advisories": map[string]any{},
			"muted": []any{}, "metadata": map[string]any{"vulnerabilities": map[string]int{}}})
	}
	return writeJSON(w, http.StatusOK, map[string]any{})
}

// search answers npm search (/-/v1/search?text=&size=&from=) over the
// repository's packages: name, description and keywords.
func (f *Format) search(w http.ResponseWriter, r *format.Request) error {
	if r.Repo.Type == repo.Proxy {
		return f.proxiedSearch(w, r)
	}
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("size"))
	if size <= 0 || size > 250 {
		size = 20
	}
	from, _ := strconv.Atoi(q.Get("from"))
	from = max(from, 0)
	pkgs, err := f.repos.SearchNpm(r.Context(), r.Repo, strings.Fields(q.Get("text")), from, size)
	if err != nil {
		return err
	}
	objects := []any{}
	for i := range pkgs {
		d, err := loadDocument(&pkgs[i])
		if err != nil {
			return err
		}
		m := d.latest()
		if m == nil {
			continue
		}
		var keywords []string
		json.Unmarshal(m["keywords"], &keywords) //nolint:errcheck // optional
		objects = append(objects, map[string]any{
			"package": map[string]any{
				"name": d.Name, "version": m.str("version"), "description": m.str("description"),
				"keywords": keywords, "date": d.Time["modified"], "maintainers": []any{},
				"links": map[string]string{"npm": r.RepositoryURL() + d.Name},
			},
			"score":       map[string]any{"final": 1, "detail": map[string]float64{"quality": 1, "popularity": 1, "maintenance": 1}},
			"searchScore": 1,
		})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"objects": objects, "total": len(objects),
		"time": time.Now().UTC().Format(time.RFC1123)})
}

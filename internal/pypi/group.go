package pypi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"arca/internal/format"
	"arca/internal/repo"
)

// A PyPI group merges what its members list: a project page holds the
// files of every member the caller may read, the first member keeping a
// file name that several have, and every link points at the group, under
// the path the winning member serves the file at. The edge answers a
// download through the group from the first member that has the path, so
// the file served is the one the page described. Each member's page is
// taken by running the format's own handler for it into memory, in JSON,
// so that hosted, proxy and nested group members are read alike.

var _ format.Merger = (*Format)(nil)

var _ format.MergeKeeper = (*Format)(nil)

// MergeVariant lets the edge keep every merged answer: a merged page
// depends on nothing but what the edge keys it by (Accept chooses HTML or
// JSON).
func (f *Format) MergeVariant(r *http.Request, path string) (string, bool) { return "", true }

// Merges accepts the simple API's index and project pages and the JSON
// API: the paths whose answer a group builds from all its members.
func (f *Format) Merges(r *http.Request, p string) bool {
	if p == "simple/" {
		return true
	}
	if rest, ok := strings.CutPrefix(p, "simple/"); ok {
		rest = strings.TrimSuffix(rest, "/")
		return rest != "" && !strings.Contains(rest, "/")
	}
	if rest, ok := strings.CutPrefix(p, "pypi/"); ok {
		parts := strings.Split(rest, "/")
		return (len(parts) == 2 || len(parts) == 3) && parts[len(parts)-1] == "json" && parts[0] != ""
	}
	return false
}

// captureMember runs handler h for one member of r's group, asking for
// JSON, with the path values given in values replaced. It returns the
// body of a 200 answer; any other status is an error, a 404 one that
// format.IsNotFound recognizes.
func captureMember(h func(http.ResponseWriter, *format.Request) error, member *format.Request, accept string, values map[string]string) ([]byte, error) {
	if !member.Repo.Online && member.Repo.Type != repo.Proxy {
		return nil, fmt.Errorf("%s: %w", member.Repo.Name, repo.ErrOffline)
	}
	sub := *member
	sub.Request = member.Request.Clone(member.Context())
	sub.Header.Set("Accept", accept)
	for k, v := range values {
		sub.SetPathValue(k, v)
	}
	c, err := format.Capture(h, &sub)
	if err != nil {
		return nil, err
	}
	switch c.Status {
	case http.StatusOK:
		return c.Body, nil
	case http.StatusNotFound:
		return nil, pypiErr(http.StatusNotFound, "%s: not found", member.Repo.Name)
	}
	return nil, fmt.Errorf("member %s answered %d", member.Repo.Name, c.Status)
}

// eachMember calls read for each member of r's group, in order. A member
// that lacks the document is passed over; one that fails is too, with a
// warning, unless no member answers: then its failure is the answer. It
// returns a not-found error naming what when no member has it.
func eachMember(r *format.Request, what string, read func(member *format.Request) error) error {
	answered := false
	var failed error
	for _, m := range r.Members {
		err := read(m)
		switch {
		case err == nil:
			answered = true
		case format.IsNotFound(err):
		case format.IsUnavailable(err):
			slog.WarnContext(r.Context(), "group member skipped", "group", r.Repo.Name, "member", m.Repo.Name,
				"path", r.Path, "error", err)
			failed = err
		default:
			return fmt.Errorf("member %s of group %s: %w", m.Repo.Name, r.Repo.Name, err)
		}
	}
	if answered {
		return nil
	}
	if failed != nil {
		return failed
	}
	return pypiErr(http.StatusNotFound, "%s not found in group %s", what, r.Repo.Name)
}

// rebase turns a link a member gave into the group's link to the same
// path; a link elsewhere (none of arca's pages has one) gives "" and ok
// false.
func rebase(group, member *format.Request, link string) (string, bool) {
	rest, ok := strings.CutPrefix(link, member.RepositoryURL())
	if !ok {
		return "", false
	}
	return group.RepositoryURL() + rest, true
}

// groupProject answers a project page of a group: the files of its
// members merged, in the form the client negotiated.
func (f *Format) groupProject(w http.ResponseWriter, r *format.Request, norm string) error {
	merged := &upstreamPage{APIVersion: apiVersion, Versions: []string{}}
	links := map[string]string{} // file name -> the group's link
	haveVersions := map[string]bool{}
	allVersions := true
	err := eachMember(r, "project "+norm, func(m *format.Request) error {
		body, err := captureMember(f.project, m, typeJSON, nil)
		if err != nil {
			return err
		}
		page, err := parseJSONPage(body, m.RepositoryURL())
		if err != nil {
			return fmt.Errorf("page of %s in member %s: %w", norm, m.Repo.Name, err)
		}
		if !atLeast11(page.APIVersion) {
			merged.APIVersion = "1.0"
		}
		if page.Versions == nil {
			allVersions = false
		}
		for _, v := range page.Versions {
			if !haveVersions[v] {
				haveVersions[v] = true
				merged.Versions = append(merged.Versions, v)
			}
		}
		for _, fl := range page.Files {
			if _, taken := links[fl.Filename]; taken {
				continue
			}
			link, ok := rebase(r, m, fl.URL)
			if !ok {
				// Not a file the member serves itself: the group could
				// not serve it either.
				continue
			}
			links[fl.Filename] = link
			merged.Files = append(merged.Files, fl)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if allVersions {
		slices.SortStableFunc(merged.Versions, compareVersions)
	} else {
		merged.Versions = nil
	}
	ct, isJSON := negotiate(r.Header.Get("Accept"))
	body, err := pageBody(norm, merged, isJSON, func(fl *upstreamFile) string { return links[fl.Filename] })
	if err != nil {
		return err
	}
	return writePage(w, r, ct, body)
}

// groupIndex answers the simple index of a group: every project any
// member lists, once, sorted.
func (f *Format) groupIndex(w http.ResponseWriter, r *format.Request) error {
	seen := map[string]bool{}
	var projects []string
	err := eachMember(r, "the simple index", func(m *format.Request) error {
		body, err := captureMember(f.index, m, typeJSON, nil)
		if err != nil {
			return err
		}
		var doc struct {
			Projects []struct {
				Name string `json:"name"`
			} `json:"projects"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return fmt.Errorf("simple index of member %s: %w", m.Repo.Name, err)
		}
		for _, p := range doc.Projects {
			if !seen[p.Name] {
				seen[p.Name] = true
				projects = append(projects, p.Name)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(projects)
	ct, isJSON := negotiate(r.Header.Get("Accept"))
	body, err := indexBody(projects, isJSON)
	if err != nil {
		return err
	}
	return writePage(w, r, ct, body)
}

// jsonAPIDoc is a JSON API document as a member answers it.
type jsonAPIDoc struct {
	Info     map[string]any          `json:"info"`
	Releases map[string][]memberFile `json:"releases"`
}

// memberFile is a file of a member's JSON API document with every field
// kept as the member sent it: a proxy member's upstream may send fields,
// or types, that arca's own answers do not have.
type memberFile map[string]json.RawMessage

// text returns the string at key, "" when absent or not a string.
func (f memberFile) text(key string) string {
	var s string
	json.Unmarshal(f[key], &s) //nolint:errcheck // "" when not a string
	return s
}

// yanked reports whether the file is yanked.
func (f memberFile) yanked() bool {
	var b bool
	json.Unmarshal(f["yanked"], &b) //nolint:errcheck // not yanked when not a bool
	return b
}

// groupJSONAPI answers the JSON API of a group. The releases are those of
// every member, hosted, proxy or group, each file name kept from the first
// member that has it; a release's info comes from the first member that
// has the release.
func (f *Format) groupJSONAPI(w http.ResponseWriter, r *format.Request, norm, version string) error {
	if norm != r.PathValue("project") {
		target := r.RepositoryURL() + "pypi/" + url.PathEscape(norm) + "/"
		if version != "" {
			target += url.PathEscape(version) + "/"
		}
		http.Redirect(w, r.Request, target+"json", http.StatusMovedPermanently)
		return nil
	}
	releases := map[string][]memberFile{}
	owner := map[string]*format.Request{} // release -> first member with it
	var versions []string
	seen := map[string]bool{}
	err := eachMember(r, "project "+norm, func(m *format.Request) error {
		body, err := captureMember(f.jsonProject, m, "application/json", map[string]string{"version": ""})
		if err != nil {
			return err
		}
		var doc jsonAPIDoc
		if err := json.Unmarshal(body, &doc); err != nil {
			return fmt.Errorf("JSON API of %s in member %s: %w", norm, m.Repo.Name, err)
		}
		mine := make([]string, 0, len(doc.Releases))
		for v := range doc.Releases {
			mine = append(mine, v)
		}
		slices.SortFunc(mine, compareVersions)
		for _, v := range mine {
			if owner[v] == nil {
				owner[v] = m
				versions = append(versions, v)
				releases[v] = []memberFile{}
			}
			for _, fl := range doc.Releases[v] {
				name := fl.text("filename")
				link, ok := rebase(r, m, fl.text("url"))
				if seen[name] || !ok {
					continue
				}
				seen[name] = true
				fl["url"], _ = json.Marshal(link)
				releases[v] = append(releases[v], fl)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(versions, compareVersions)
	yanked := func(v string) bool {
		for _, fl := range releases[v] {
			if !fl.yanked() {
				return false
			}
		}
		return len(releases[v]) > 0
	}
	chosen := ""
	if version == "" {
		chosen = pickLatest(versions, yanked)
	} else {
		want, err := NormalizeVersion(version)
		if err != nil {
			return pypiErr(http.StatusNotFound, "release %s %s not found", norm, version)
		}
		for _, v := range versions {
			if v == version || compareVersions(v, want) == 0 {
				chosen = v
				break
			}
		}
		if chosen == "" {
			return pypiErr(http.StatusNotFound, "release %s %s not found", norm, version)
		}
		if chosen != version {
			http.Redirect(w, r.Request, r.RepositoryURL()+"pypi/"+url.PathEscape(norm)+"/"+url.PathEscape(chosen)+"/json",
				http.StatusMovedPermanently)
			return nil
		}
	}
	// The release's own info, from the member that has it.
	body, err := captureMember(f.jsonRelease, owner[chosen], "application/json", map[string]string{"version": chosen})
	if err != nil {
		return fmt.Errorf("release %s %s in member %s: %w", norm, chosen, owner[chosen].Repo.Name, err)
	}
	var doc jsonAPIDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("release %s %s in member %s: %w", norm, chosen, owner[chosen].Repo.Name, err)
	}
	info := doc.Info
	if info == nil {
		info = map[string]any{}
	}
	projectURL := r.RepositoryURL() + "pypi/" + url.PathEscape(norm) + "/"
	info["package_url"] = projectURL
	info["project_url"] = projectURL
	info["release_url"] = projectURL + url.PathEscape(chosen) + "/"
	info["yanked"] = yanked(chosen)
	out := map[string]any{"info": info, "last_serial": 0, "urls": releases[chosen], "vulnerabilities": []any{}}
	if version == "" {
		out["releases"] = releases
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode JSON API of %s: %w", norm, err)
	}
	return writePage(w, r, "application/json", string(b))
}

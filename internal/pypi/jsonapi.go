package pypi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"arca/internal/format"
	"arca/internal/repo"
)

// The JSON API as the public index (warehouse) has it: /pypi/{project}/json for a
// project's latest release and all its files, /pypi/{project}/{version}/json
// for one release. Poetry and other tools read it. A proxy repository
// serves its upstream's documents, rewritten (proxy_jsonapi.go).

// jsonAPIFile is a file of "releases" and "urls".
type jsonAPIFile struct {
	CommentText       string            `json:"comment_text"`
	Digests           map[string]string `json:"digests"`
	Downloads         int               `json:"downloads"`
	Filename          string            `json:"filename"`
	HasSig            bool              `json:"has_sig"`
	MD5Digest         string            `json:"md5_digest"`
	PackageType       string            `json:"packagetype"`
	PythonVersion     string            `json:"python_version"`
	RequiresPython    *string           `json:"requires_python"`
	Size              int64             `json:"size"`
	UploadTime        string            `json:"upload_time"`
	UploadTimeISO8601 string            `json:"upload_time_iso_8601"`
	URL               string            `json:"url"`
	Yanked            bool              `json:"yanked"`
	YankedReason      *string           `json:"yanked_reason"`
}

// infoStrings are the info keys that are strings or null; infoLists those
// that are lists or null.
var (
	infoStrings = []string{"author", "author_email", "description", "description_content_type",
		"download_url", "home_page", "keywords", "license", "license_expression", "maintainer",
		"maintainer_email", "platform", "requires_python", "summary"}
	infoLists = []string{"classifiers", "requires_dist", "provides_extra", "license_files", "dynamic"}
)

// jsonProject serves /pypi/{project}/json.
func (f *Format) jsonProject(w http.ResponseWriter, r *format.Request) error {
	return f.jsonAPI(w, r, "")
}

// jsonRelease serves /pypi/{project}/{version}/json.
func (f *Format) jsonRelease(w http.ResponseWriter, r *format.Request) error {
	return f.jsonAPI(w, r, r.PathValue("version"))
}

func (f *Format) jsonAPI(w http.ResponseWriter, r *format.Request, version string) error {
	name := r.PathValue("project")
	norm := Normalize(name)
	if r.Repo.Type == repo.Group {
		return f.groupJSONAPI(w, r, norm, version)
	}
	if r.Repo.Type == repo.Proxy {
		return f.proxyJSONAPI(w, r, name, version)
	}
	files, err := f.repos.PyPIFiles(r.Context(), r.Repo, norm)
	if err != nil {
		return err
	}
	normVersion := version
	if version != "" {
		// Another spelling of a release's version ("2.0.0" for "2.0")
		// redirects too.
		v, err := ReleaseVersion(files, version)
		if err != nil {
			return pypiErr(http.StatusNotFound, "release %s %s not found", norm, version)
		}
		normVersion = v
	}
	if norm != name || normVersion != version {
		target := r.RepositoryURL() + "pypi/" + url.PathEscape(norm) + "/"
		if version != "" {
			target += url.PathEscape(normVersion) + "/"
		}
		http.Redirect(w, r.Request, target+"json", http.StatusMovedPermanently)
		return nil
	}
	if len(files) == 0 {
		return pypiErr(http.StatusNotFound, "project %s not found", norm)
	}
	byVersion := map[string][]repo.PyPIFile{}
	var versions []string
	for _, fl := range files {
		if _, ok := byVersion[fl.Version]; !ok {
			versions = append(versions, fl.Version)
		}
		byVersion[fl.Version] = append(byVersion[fl.Version], fl)
	}
	slices.SortFunc(versions, compareVersions)
	if version == "" {
		version = latestVersion(versions, byVersion)
	} else if _, ok := byVersion[version]; !ok {
		return pypiErr(http.StatusNotFound, "release %s %s not found", norm, version)
	}

	files = byVersion[version]
	projectURL := r.RepositoryURL() + "pypi/" + url.PathEscape(norm) + "/"
	info := releaseInfo(files)
	info["name"] = displayName(files, norm)
	info["version"] = version
	info["package_url"] = projectURL
	info["project_url"] = projectURL
	info["release_url"] = projectURL + url.PathEscape(version) + "/"
	info["bugtrack_url"] = nil
	info["docs_url"] = nil
	info["downloads"] = map[string]int{"last_day": -1, "last_week": -1, "last_month": -1}
	info["yanked"] = allYanked(files)
	info["yanked_reason"] = nil
	if allYanked(files) && files[0].YankReason != "" {
		info["yanked_reason"] = files[0].YankReason
	}

	urls := []jsonAPIFile{}
	for _, fl := range files {
		jf, err := f.jsonAPIFile(r, fl)
		if err != nil {
			return err
		}
		urls = append(urls, jf)
	}
	doc := map[string]any{"info": info, "last_serial": 0, "urls": urls, "vulnerabilities": []any{}}
	if r.PathValue("version") == "" {
		releases := map[string][]jsonAPIFile{}
		for _, v := range versions {
			list := []jsonAPIFile{}
			for _, fl := range byVersion[v] {
				jf, err := f.jsonAPIFile(r, fl)
				if err != nil {
					return err
				}
				list = append(list, jf)
			}
			releases[v] = list
		}
		doc["releases"] = releases
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return writePage(w, r, "application/json", string(b))
}

// latestVersion is the highest final release that is not yanked, else the
// highest release not yanked, else the highest release.
func latestVersion(sorted []string, byVersion map[string][]repo.PyPIFile) string {
	return pickLatest(sorted, func(v string) bool { return allYanked(byVersion[v]) })
}

// pickLatest is latestVersion over versions whose being wholly yanked
// yanked tells.
func pickLatest(sorted []string, yanked func(string) bool) string {
	for _, final := range []bool{true, false} {
		for i := len(sorted) - 1; i >= 0; i-- {
			v := sorted[i]
			if !yanked(v) && (!final || !isPreRelease(v)) {
				return v
			}
		}
	}
	return sorted[len(sorted)-1]
}

func allYanked(files []repo.PyPIFile) bool {
	for _, fl := range files {
		if !fl.Yanked {
			return false
		}
	}
	return len(files) > 0
}

// displayName is the project's name as its metadata spells it.
func displayName(files []repo.PyPIFile, norm string) string {
	for _, fl := range files {
		var md map[string]any
		if json.Unmarshal(fl.Metadata, &md) == nil {
			if n, ok := md["name"].(string); ok && n != "" {
				return n
			}
		}
	}
	return norm
}

// releaseInfo is the "info" of a release from its files' kept metadata:
// each key from the first file that has it.
func releaseInfo(files []repo.PyPIFile) map[string]any {
	info := map[string]any{}
	for _, k := range infoStrings {
		info[k] = nil
	}
	for _, k := range infoLists {
		info[k] = nil
	}
	info["project_urls"] = nil
	for _, fl := range files {
		var md map[string]any
		if json.Unmarshal(fl.Metadata, &md) != nil {
			continue
		}
		for _, k := range infoStrings {
			if s, ok := md[k].(string); ok && info[k] == nil {
				info[k] = s
			}
		}
		for _, k := range infoLists {
			if l, ok := md[k].([]any); ok && info[k] == nil {
				info[k] = l
			}
		}
		if l, ok := md["project_urls"].([]any); ok && info["project_urls"] == nil {
			urls := map[string]string{}
			for _, item := range l {
				if s, ok := item.(string); ok {
					label, u, found := strings.Cut(s, ",")
					if found {
						urls[strings.TrimSpace(label)] = strings.TrimSpace(u)
					}
				}
			}
			info["project_urls"] = urls
		}
	}
	if info["description"] == nil {
		info["description"] = ""
	}
	if info["summary"] == nil {
		info["summary"] = ""
	}
	return info
}

// jsonAPIFile describes one file, with the MD5 from its asset's blob.
func (f *Format) jsonAPIFile(r *format.Request, fl repo.PyPIFile) (jsonAPIFile, error) {
	jf := jsonAPIFile{
		Digests:           map[string]string{"sha256": fl.SHA256},
		Downloads:         -1,
		Filename:          fl.Filename,
		PackageType:       "sdist",
		PythonVersion:     "source",
		Size:              fl.Size,
		UploadTime:        fl.CreatedAt.UTC().Format("2006-01-02T15:04:05"),
		UploadTimeISO8601: uploadTime(fl.CreatedAt),
		URL: r.RepositoryURL() + "packages/" + url.PathEscape(fl.Project) + "/" + url.PathEscape(fl.Version) +
			"/" + url.PathEscape(fl.Filename),
		Yanked: fl.Yanked,
	}
	if strings.HasSuffix(fl.Filename, ".whl") {
		jf.PackageType = "bdist_wheel"
		if parts := strings.Split(strings.TrimSuffix(fl.Filename, ".whl"), "-"); len(parts) >= 5 {
			jf.PythonVersion = parts[len(parts)-3]
		}
	}
	var md map[string]any
	if json.Unmarshal(fl.Metadata, &md) == nil {
		if pv, ok := md["pyversion"].(string); ok && pv != "" {
			jf.PythonVersion = pv
		}
	}
	if fl.RequiresPython != "" {
		rp := fl.RequiresPython
		jf.RequiresPython = &rp
	}
	if fl.Yanked && fl.YankReason != "" {
		reason := fl.YankReason
		jf.YankedReason = &reason
	}
	a, err := f.repos.Asset(r.Context(), r.Repo, fl.Path)
	switch {
	case err == nil:
		jf.Digests["md5"] = a.Blob.MD5
		jf.MD5Digest = a.Blob.MD5
	case !errors.Is(err, repo.ErrNotFound):
		return jf, err
	}
	return jf, nil
}

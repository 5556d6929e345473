package pypi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"arca/internal/format"
	"arca/internal/proxy"
)

// A PyPI proxy serves the JSON API from the upstream's own documents,
// fetched from "pypi/{project}/json" and "pypi/{project}/{version}/json"
// under the same index base as "simple/", kept as metadata at the same
// paths and revalidated like the project pages. Each answer is the
// upstream's document with every file's "url" pointing at the proxy, at
// the URL its simple page gives the file, and info's own URLs pointing at
// the proxy's JSON API; every other field is passed on as the upstream
// wrote it. A file listed there downloads like one read on the simple
// page: the download fetches that page when the proxy lacks it.

// jsonDocAccept is what the upstream is asked for: the JSON API has no
// other form.
const jsonDocAccept = "application/json"

// jsonDocPath is where the upstream's JSON API document of a project, or
// of one release of it when version is not "", is cached.
func jsonDocPath(norm, version string) string {
	if version == "" {
		return "pypi/" + norm + "/json"
	}
	return "pypi/" + norm + "/" + version + "/json"
}

// proxyJSONAPI answers the JSON API of a proxy repository for the project
// name, and the release version unless it is "". A project name that is
// not normalized redirects at once, as on a hosted repository; a version
// that the upstream spells otherwise redirects to the upstream's spelling.
func (f *Format) proxyJSONAPI(w http.ResponseWriter, r *format.Request, name, version string) error {
	norm := Normalize(name)
	projectURL := r.RepositoryURL() + "pypi/" + url.PathEscape(norm) + "/"
	if norm != name {
		target := projectURL
		if version != "" {
			if nv, err := NormalizeVersion(version); err == nil {
				version = nv
			}
			target += url.PathEscape(version) + "/"
		}
		http.Redirect(w, r.Request, target+"json", http.StatusMovedPermanently)
		return nil
	}
	doc, docURL, err := f.proxyJSONDoc(r.Context(), r, norm, version, format.WantsRevalidation(r.Header))
	if err != nil {
		return err
	}
	if v, ok := docVersion(doc); ok && version != "" && v != version && compareVersions(v, version) == 0 {
		http.Redirect(w, r.Request, projectURL+url.PathEscape(v)+"/json", http.StatusMovedPermanently)
		return nil
	}
	body, err := rewriteJSONDoc(doc, projectURL, func(filename string) string {
		return proxyFileURL(r, norm, filename)
	})
	if err != nil {
		return &proxy.UpstreamError{URL: docURL, Err: fmt.Errorf("JSON API document of %s: %w", norm, err)}
	}
	return writePage(w, r, "application/json", string(body))
}

// proxyJSONDoc returns the upstream's JSON API document of a normalized
// project, or of its release version unless that is "", from the cache or
// fetched now, decoded one level deep; revalidate asks the cache to check
// it with the upstream now. It returns the document's upstream URL too.
func (f *Format) proxyJSONDoc(ctx context.Context, r *format.Request, norm, version string,
	revalidate bool) (map[string]json.RawMessage, string, error) {
	base, err := f.upstreamBase(r)
	if err != nil {
		return nil, "", err
	}
	docURL := base + "/pypi/" + url.PathEscape(norm) + "/"
	what := "project " + norm
	if version != "" {
		docURL += url.PathEscape(version) + "/"
		what = "release " + norm + " " + version
	}
	docURL += "json"
	b, _, err := f.cachedMetadata(ctx, r, proxy.Item{Path: jsonDocPath(norm, version), URL: docURL, Mutable: true,
		Revalidate: revalidate, Whole: true, Header: http.Header{"Accept": {jsonDocAccept}},
		ContentType: jsonDocAccept}, what)
	if err != nil {
		return nil, "", err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil || doc == nil {
		if err == nil {
			err = errors.New("null document")
		}
		return nil, "", &proxy.UpstreamError{URL: docURL, Err: fmt.Errorf("JSON API document of %s: %w", what, err)}
	}
	return doc, docURL, nil
}

// docVersion is the version a JSON API document's info gives.
func docVersion(doc map[string]json.RawMessage) (string, bool) {
	var info struct {
		Version *string `json:"version"`
	}
	if json.Unmarshal(doc["info"], &info) != nil || info.Version == nil || *info.Version == "" {
		return "", false
	}
	return *info.Version, true
}

// rewriteJSONDoc encodes an upstream's JSON API document with each file
// of "urls" and of every list of "releases" linked at fileURL(filename),
// and info's package_url, project_url and release_url under projectURL.
// The rest is kept as it came; only the order of object keys and the
// spaces between tokens may change.
func rewriteJSONDoc(doc map[string]json.RawMessage, projectURL string, fileURL func(string) string) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	if raw, ok := doc["info"]; ok && !isNull(raw) {
		var info map[string]json.RawMessage
		if err := json.Unmarshal(raw, &info); err != nil {
			return nil, fmt.Errorf("info: %w", err)
		}
		releaseURL := "null"
		if v, ok := docVersion(doc); ok {
			releaseURL = jsonString(projectURL + url.PathEscape(v) + "/")
		}
		info["package_url"] = json.RawMessage(jsonString(projectURL))
		info["project_url"] = json.RawMessage(jsonString(projectURL))
		info["release_url"] = json.RawMessage(releaseURL)
		b, err := encodeJSON(info)
		if err != nil {
			return nil, err
		}
		out["info"] = b
	}
	if raw, ok := doc["urls"]; ok && !isNull(raw) {
		var files []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &files); err != nil {
			return nil, fmt.Errorf("urls: %w", err)
		}
		b, err := rewriteFiles(files, fileURL)
		if err != nil {
			return nil, fmt.Errorf("urls: %w", err)
		}
		out["urls"] = b
	}
	if raw, ok := doc["releases"]; ok && !isNull(raw) {
		var releases map[string]json.RawMessage
		if err := json.Unmarshal(raw, &releases); err != nil {
			return nil, fmt.Errorf("releases: %w", err)
		}
		for v, list := range releases {
			if isNull(list) {
				continue
			}
			var files []map[string]json.RawMessage
			if err := json.Unmarshal(list, &files); err != nil {
				return nil, fmt.Errorf("release %s: %w", v, err)
			}
			b, err := rewriteFiles(files, fileURL)
			if err != nil {
				return nil, fmt.Errorf("release %s: %w", v, err)
			}
			releases[v] = b
		}
		b, err := encodeJSON(releases)
		if err != nil {
			return nil, err
		}
		out["releases"] = b
	}
	return encodeJSON(out)
}

// rewriteFiles encodes a list of JSON API files with each "url" replaced
// by fileURL of the file's name.
func rewriteFiles(files []map[string]json.RawMessage, fileURL func(string) string) (json.RawMessage, error) {
	for i, fl := range files {
		if fl == nil {
			return nil, fmt.Errorf("file %d is not an object", i)
		}
		var name string
		if err := json.Unmarshal(fl["filename"], &name); err != nil || name == "" {
			return nil, fmt.Errorf("file %d has no filename", i)
		}
		fl["url"] = json.RawMessage(jsonString(fileURL(name)))
	}
	if files == nil {
		files = []map[string]json.RawMessage{}
	}
	return encodeJSON(files)
}

// encodeJSON encodes v without escaping <, > and &, so that strings the
// upstream wrote (descriptions hold HTML) pass as they came.
func encodeJSON(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON API document: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := encodeJSON(s) // a string always encodes
	return string(b)
}

// isNull reports whether a raw JSON value is null.
func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

package pypi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"arca/internal/format"
	"arca/internal/repo"
)

// Media types of the simple repository API (PEP 691).
const (
	typeJSON       = "application/vnd.pypi.simple.v1+json"
	typeHTML       = "application/vnd.pypi.simple.v1+html"
	typeLatestJSON = "application/vnd.pypi.simple.latest+json"
	typeLatestHTML = "application/vnd.pypi.simple.latest+html"
	typeText       = "text/html"
)

// apiVersion is the simple API version served: 1.1 has PEP 700's fields.
const apiVersion = "1.1"

// negotiate picks the response's media type from Accept, by quality value,
// JSON first on a tie; HTML when Accept is absent or names nothing served.
// It returns the Content-Type to send and whether it is JSON.
func negotiate(accept string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return typeText, false
	}
	offered := []string{typeJSON, typeLatestJSON, typeHTML, typeLatestHTML, typeText}
	best, bestQ := "", 0.0
	quality := map[string]float64{}
	for _, item := range strings.Split(accept, ",") {
		fields := strings.Split(item, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, p := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				} else {
					q = 0
				}
			}
		}
		if old, ok := quality[mt]; !ok || q > old {
			quality[mt] = q
		}
	}
	for _, t := range offered {
		q, ok := quality[t]
		if !ok && t == typeText {
			// */* and text/* stand for the plain HTML page.
			q, ok = quality["text/*"]
			if !ok {
				q, ok = quality["*/*"]
			}
		}
		if ok && q > bestQ {
			best, bestQ = t, q
		}
	}
	switch best {
	case "":
		return typeText, false
	case typeJSON, typeLatestJSON:
		return typeJSON, true
	case typeLatestHTML:
		return typeHTML, false
	}
	return best, false
}

type jsonMeta struct {
	APIVersion string `json:"api-version"`
}

// index is the list of projects.
func (f *Format) index(w http.ResponseWriter, r *format.Request) error {
	var projects []string
	var err error
	switch r.Repo.Type {
	case repo.Group:
		return f.groupIndex(w, r)
	case repo.Proxy:
		projects, err = f.proxyProjects(r.Context(), r.Repo)
	default:
		projects, err = f.repos.PyPIProjects(r.Context(), r.Repo)
	}
	if err != nil {
		return err
	}
	ct, isJSON := negotiate(r.Header.Get("Accept"))
	body, err := indexBody(projects, isJSON)
	if err != nil {
		return err
	}
	return writePage(w, r, ct, body)
}

// indexBody renders the list of projects as JSON or HTML.
func indexBody(projects []string, isJSON bool) (string, error) {
	if isJSON {
		type project struct {
			Name string `json:"name"`
		}
		doc := struct {
			Meta     jsonMeta  `json:"meta"`
			Projects []project `json:"projects"`
		}{jsonMeta{apiVersion}, []project{}}
		for _, p := range projects {
			doc.Projects = append(doc.Projects, project{p})
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return "", fmt.Errorf("encode index: %w", err)
		}
		return string(b), nil
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"" + apiVersion + "\">\n")
	b.WriteString("<title>Simple index</title>\n</head>\n<body>\n")
	for _, p := range projects {
		fmt.Fprintf(&b, "<a href=\"%s/\">%s</a><br>\n", html.EscapeString(url.PathEscape(p)), html.EscapeString(p))
	}
	b.WriteString("</body>\n</html>\n")
	return b.String(), nil
}

// jsonFile is a file of a PEP 691 project page, with PEP 700's fields.
type jsonFile struct {
	Filename       string            `json:"filename"`
	URL            string            `json:"url"`
	Hashes         map[string]string `json:"hashes"`
	RequiresPython *string           `json:"requires-python,omitempty"`
	Yanked         any               `json:"yanked"`
	Size           int64             `json:"size"`
	UploadTime     string            `json:"upload-time"`
	// CoreMetadata is PEP 658's metadata under its PEP 714 name: JSON
	// never carries the old dist-info-metadata, on which pip 22.3 to 23.0 fail.
	CoreMetadata any `json:"core-metadata,omitempty"`
}

// project is a project's page of files. A name that is not normalized is
// redirected to the normalized URL, as is a URL without the final slash.
func (f *Format) project(w http.ResponseWriter, r *format.Request) error {
	name := r.PathValue("project")
	norm := Normalize(name)
	if norm != name || !strings.HasSuffix(r.URL.Path, "/") {
		http.Redirect(w, r.Request, r.RepositoryURL()+"simple/"+url.PathEscape(norm)+"/", http.StatusMovedPermanently)
		return nil
	}
	switch r.Repo.Type {
	case repo.Proxy:
		return f.proxyProject(w, r, norm)
	case repo.Group:
		return f.groupProject(w, r, norm)
	}
	files, err := f.repos.PyPIFiles(r.Context(), r.Repo, norm)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return pypiErr(http.StatusNotFound, "project %s not found", norm)
	}
	ct, isJSON := negotiate(r.Header.Get("Accept"))
	fileURL := func(file string, version string) string {
		return r.RepositoryURL() + "packages/" + url.PathEscape(norm) + "/" + url.PathEscape(version) + "/" + url.PathEscape(file)
	}
	if isJSON {
		doc := struct {
			Meta     jsonMeta   `json:"meta"`
			Name     string     `json:"name"`
			Versions []string   `json:"versions"`
			Files    []jsonFile `json:"files"`
		}{Meta: jsonMeta{apiVersion}, Name: norm, Versions: []string{}, Files: []jsonFile{}}
		seen := map[string]bool{}
		for _, fl := range files {
			if !seen[fl.Version] {
				seen[fl.Version] = true
				doc.Versions = append(doc.Versions, fl.Version)
			}
			jf := jsonFile{Filename: fl.Filename, URL: fileURL(fl.Filename, fl.Version),
				Hashes: map[string]string{"sha256": fl.SHA256}, Yanked: false, Size: fl.Size,
				UploadTime: uploadTime(fl.CreatedAt)}
			if m := coreMetadataSHA256(fl.Metadata); m != "" {
				jf.CoreMetadata = map[string]string{"sha256": m}
			}
			if fl.RequiresPython != "" {
				rp := fl.RequiresPython
				jf.RequiresPython = &rp
			}
			if fl.Yanked {
				jf.Yanked = true
				if fl.YankReason != "" {
					jf.Yanked = fl.YankReason
				}
			}
			doc.Files = append(doc.Files, jf)
		}
		return writeDoc(w, r, ct, doc)
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"" + apiVersion + "\">\n")
	fmt.Fprintf(&b, "<title>Links for %s</title>\n</head>\n<body>\n<h1>Links for %s</h1>\n", html.EscapeString(norm), html.EscapeString(norm))
	for _, fl := range files {
		fmt.Fprintf(&b, "<a href=\"%s\"", html.EscapeString(fileURL(fl.Filename, fl.Version)+"#sha256="+fl.SHA256))
		if fl.RequiresPython != "" {
			fmt.Fprintf(&b, " data-requires-python=\"%s\"", html.EscapeString(fl.RequiresPython))
		}
		if m := coreMetadataSHA256(fl.Metadata); m != "" {
			fmt.Fprintf(&b, " data-dist-info-metadata=\"sha256=%s\" data-core-metadata=\"sha256=%s\"", m, m)
		}
		if fl.Yanked {
			fmt.Fprintf(&b, " data-yanked=\"%s\"", html.EscapeString(fl.YankReason))
		}
		fmt.Fprintf(&b, ">%s</a><br>\n", html.EscapeString(fl.Filename))
	}
	b.WriteString("</body>\n</html>\n")
	return writePage(w, r, ct, b.String())
}

// uploadTime formats a time as PEP 700 asks: ISO 8601 in UTC with a Z.
func uploadTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

func writeDoc(w http.ResponseWriter, r *format.Request, ct string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode page: %w", err)
	}
	return writePage(w, r, ct, string(b))
}

// writePage answers a generated page with an ETag made from its bytes,
// and 304 to a client that already holds them, so that pip's and a proxy's
// revalidations cost no transfer.
func writePage(w http.ResponseWriter, r *format.Request, ct, body string) error {
	sum := sha256.Sum256([]byte(body))
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Add("Vary", "Accept")
	for _, v := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if v = strings.TrimPrefix(strings.TrimSpace(v), "W/"); v == etag || v == "*" {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(body)) //nolint:errcheck // the client went away
	return nil
}

// download serves a distribution file with its checksums, or a wheel's
// METADATA at the file's URL plus ".metadata" (PEP 658).
func (f *Format) download(w http.ResponseWriter, r *format.Request) error {
	if r.Repo.Type == repo.Proxy {
		return f.proxyDownload(w, r)
	}
	if name, ok := strings.CutSuffix(r.PathValue("filename"), ".metadata"); ok {
		return f.coreMetadata(w, r, name)
	}
	a, err := f.repos.Asset(r.Context(), r.Repo, r.Path)
	if err != nil {
		return err
	}
	return format.ServeAsset(w, r, f.repos, a)
}

// coreMetadata serves the METADATA kept for a wheel.
func (f *Format) coreMetadata(w http.ResponseWriter, r *format.Request, filename string) error {
	fl, err := f.repos.PyPIFile(r.Context(), r.Repo, filename)
	if err != nil {
		return err
	}
	b, ok := storedCoreMetadata(fl.Metadata)
	if !ok || fl.Project != r.PathValue("project") || fl.Version != r.PathValue("version") {
		return pypiErr(http.StatusNotFound, "no metadata file for %s", filename)
	}
	sum := sha256.Sum256(b)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	h.Set("X-Checksum-Sha256", hex.EncodeToString(sum[:]))
	http.ServeContent(w, r.Request, filename+".metadata", fl.CreatedAt, bytes.NewReader(b))
	return nil
}

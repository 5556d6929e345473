package pypi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// A PyPI proxy repository keeps the upstream's project pages as they came,
// at pagePath, revalidated like any metadata, and rewrites them for each
// client: every file link points back at this repository, under the same
// "packages/{project}/{version}/{filename}" layout a hosted repository has,
// so that groups and clients see one shape. A file is fetched once from the
// URL the page gives for it and checked against the page's hashes.

// upstreamAccept asks for PEP 691 JSON, which carries sizes and upload
// times, and takes the PEP 503 HTML of an older index instead.
const upstreamAccept = typeJSON + ", " + typeHTML + ";q=0.2, " + typeText + ";q=0.1"

// maxPageSize bounds a project page read into memory; the largest pages
// of the public index are a few tens of megabytes.
const maxPageSize = 256 << 20

// pagePath is where a project's upstream page is cached.
func pagePath(norm string) string { return "simple/" + norm + "/index" }

// upstreamBase is the proxy's index base, without its trailing slash.
func (f *Format) upstreamBase(r *format.Request) (string, error) {
	if f.cache == nil {
		return "", fmt.Errorf("pypi: proxy repository %s served without a proxy cache", r.Repo.Name)
	}
	settings, err := f.repos.ProxySettings(r.Repo)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(settings.URL, "/"), nil
}

// cachedMetadata returns the bytes of a metadata item of the proxy (a
// project page, a JSON API document), from the cache or fetched now, and
// its asset; what names the item in a not-found answer.
func (f *Format) cachedMetadata(ctx context.Context, r *format.Request, it proxy.Item, what string) ([]byte, repo.Asset, error) {
	resp, err := f.cache.Get(ctx, r.Repo, it)
	if errors.Is(err, repo.ErrNotFound) {
		msg := what + " not found upstream"
		if !r.Repo.Online {
			msg = fmt.Sprintf("%s is not cached and proxy repository %s is offline", what, r.Repo.Name)
		}
		return nil, repo.Asset{}, &format.Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: msg, Err: err}
	}
	if err != nil {
		return nil, repo.Asset{}, err
	}
	body, err := f.repos.Open(ctx, *resp.Asset)
	if err != nil {
		return nil, repo.Asset{}, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxPageSize))
	if err != nil {
		return nil, repo.Asset{}, fmt.Errorf("read cached %s: %w", what, err)
	}
	return b, *resp.Asset, nil
}

// proxyPage returns the upstream's page for a normalized project, from
// the cache or fetched now; revalidate asks the cache to check it with the
// upstream now.
func (f *Format) proxyPage(ctx context.Context, r *format.Request, norm string, revalidate bool) (*upstreamPage, error) {
	base, err := f.upstreamBase(r)
	if err != nil {
		return nil, err
	}
	pageURL := base + "/simple/" + url.PathEscape(norm) + "/"
	b, asset, err := f.cachedMetadata(ctx, r, proxy.Item{Path: pagePath(norm), URL: pageURL, Mutable: true,
		Revalidate: revalidate, Whole: true, Header: http.Header{"Accept": {upstreamAccept}}, ContentType: typeText},
		"project "+norm)
	if err != nil {
		return nil, err
	}
	linkBase := pageURL
	if asset.OriginURL != "" {
		linkBase = asset.OriginURL
	}
	var page *upstreamPage
	if strings.Contains(strings.ToLower(asset.ContentType), "json") {
		page, err = parseJSONPage(b, linkBase)
	} else {
		page, err = parseHTMLPage(b, linkBase)
	}
	if err != nil {
		return nil, &proxy.UpstreamError{URL: pageURL, Err: fmt.Errorf("project page of %s: %w", norm, err)}
	}
	return page, nil
}

// distExtensions are the extensions of distribution files, longest first
// where one ends another.
var distExtensions = []string{".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tbz", ".tar", ".zip",
	".whl", ".egg", ".exe", ".msi", ".rpm", ".dmg"}

// fileVersion is the version a distribution file's name gives, for the
// folder a proxy serves it from; "unknown" when the name says none.
func fileVersion(norm, filename string) string {
	stem := filename
	ext := ""
	for _, e := range distExtensions {
		if len(filename) > len(e) && strings.EqualFold(filename[len(filename)-len(e):], e) {
			stem, ext = filename[:len(filename)-len(e)], strings.ToLower(e)
			break
		}
	}
	if ext == ".whl" || ext == ".egg" {
		// {name}-{version}-... where the name has no "-".
		if parts := strings.Split(stem, "-"); len(parts) >= 2 && parts[1] != "" {
			return parts[1]
		}
	}
	// An sdist is {name}-{version}, and older ones kept the dashes of the
	// name: the version follows the prefix that normalizes to the project.
	for i := range len(stem) {
		if stem[i] == '-' && Normalize(stem[:i]) == norm && i+1 < len(stem) {
			return stem[i+1:]
		}
	}
	return "unknown"
}

// proxyFileURL is where a proxy serves a file of a project.
func proxyFileURL(r *format.Request, norm, filename string) string {
	return r.RepositoryURL() + "packages/" + url.PathEscape(norm) + "/" +
		url.PathEscape(fileVersion(norm, filename)) + "/" + url.PathEscape(filename)
}

// proxyProject answers a project page of a proxy repository: the
// upstream's page, revalidated when the client asks for it, rewritten in
// the form the client negotiated.
func (f *Format) proxyProject(w http.ResponseWriter, r *format.Request, norm string) error {
	page, err := f.proxyPage(r.Context(), r, norm, format.WantsRevalidation(r.Header))
	if err != nil {
		return err
	}
	ct, isJSON := negotiate(r.Header.Get("Accept"))
	body, err := pageBody(norm, page, isJSON, func(fl *upstreamFile) string { return proxyFileURL(r, norm, fl.Filename) })
	if err != nil {
		return err
	}
	return writePage(w, r, ct, body)
}

// pageBody renders a project page of files known from a page (an
// upstream's, or a group's merge) as JSON or HTML; fileURL gives the link
// of each file, without its fragment. The page claims API 1.1 only when
// it has everything PEP 700 asks for.
func pageBody(norm string, page *upstreamPage, isJSON bool, fileURL func(*upstreamFile) string) (string, error) {
	full := page.pep700()
	version := "1.0"
	if full {
		version = apiVersion
	}
	if isJSON {
		b, err := json.Marshal(rewrittenJSONPage(norm, page, full, version, fileURL))
		if err != nil {
			return "", fmt.Errorf("encode page of %s: %w", norm, err)
		}
		return string(b), nil
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"" + version + "\">\n")
	fmt.Fprintf(&b, "<title>Links for %s</title>\n</head>\n<body>\n<h1>Links for %s</h1>\n", html.EscapeString(norm), html.EscapeString(norm))
	for i := range page.Files {
		fl := &page.Files[i]
		href := fileURL(fl)
		if alg, sum := preferredHash(fl.Hashes); alg != "" {
			href += "#" + alg + "=" + sum
		}
		fmt.Fprintf(&b, "<a href=\"%s\"", html.EscapeString(href))
		if fl.RequiresPython != nil {
			fmt.Fprintf(&b, " data-requires-python=\"%s\"", html.EscapeString(*fl.RequiresPython))
		}
		if fl.Metadata {
			v := "true"
			if alg, sum := preferredHash(fl.MetadataHashes); alg != "" {
				v = alg + "=" + sum
			}
			// Both names, as PEP 714 asks of HTML.
			fmt.Fprintf(&b, " data-dist-info-metadata=\"%s\" data-core-metadata=\"%s\"", html.EscapeString(v), html.EscapeString(v))
		}
		if fl.Yanked {
			fmt.Fprintf(&b, " data-yanked=\"%s\"", html.EscapeString(fl.YankReason))
		}
		fmt.Fprintf(&b, ">%s</a><br>\n", html.EscapeString(fl.Filename))
	}
	b.WriteString("</body>\n</html>\n")
	return b.String(), nil
}

// proxyJSONFile is a file of a rewritten PEP 691 page; PEP 700's size and
// upload time are left out when the upstream did not give them.
type proxyJSONFile struct {
	Filename       string            `json:"filename"`
	URL            string            `json:"url"`
	Hashes         map[string]string `json:"hashes"`
	RequiresPython *string           `json:"requires-python,omitempty"`
	Yanked         any               `json:"yanked"`
	Size           *int64            `json:"size,omitempty"`
	UploadTime     string            `json:"upload-time,omitempty"`
	// CoreMetadata only, never dist-info-metadata: see jsonFile.
	CoreMetadata any `json:"core-metadata,omitempty"`
}

// rewrittenJSONPage is the PEP 691 document of a page whose links
// fileURL gives; full adds PEP 700's versions.
func rewrittenJSONPage(norm string, page *upstreamPage, full bool, version string, fileURL func(*upstreamFile) string) any {
	files := []proxyJSONFile{}
	for i := range page.Files {
		fl := &page.Files[i]
		jf := proxyJSONFile{Filename: fl.Filename, URL: fileURL(fl), Hashes: fl.Hashes,
			RequiresPython: fl.RequiresPython, Yanked: false, Size: fl.Size, UploadTime: fl.UploadTime}
		if jf.Hashes == nil {
			jf.Hashes = map[string]string{}
		}
		if fl.Yanked {
			jf.Yanked = true
			if fl.YankReason != "" {
				jf.Yanked = fl.YankReason
			}
		}
		if fl.Metadata {
			jf.CoreMetadata = true
			if len(fl.MetadataHashes) > 0 {
				jf.CoreMetadata = fl.MetadataHashes
			}
		}
		files = append(files, jf)
	}
	doc := struct {
		Meta     jsonMeta        `json:"meta"`
		Name     string          `json:"name"`
		Versions []string        `json:"versions,omitempty"`
		Files    []proxyJSONFile `json:"files"`
	}{Meta: jsonMeta{version}, Name: norm, Files: files}
	if full {
		doc.Versions = slices.Clone(page.Versions)
		if doc.Versions == nil {
			doc.Versions = []string{}
		}
	}
	return doc
}

// preferredHash picks the hash to put in a link's fragment: SHA-256 when
// there is one, else the first by name, so that the choice is stable.
func preferredHash(hashes map[string]string) (string, string) {
	if v := hashes["sha256"]; v != "" {
		return "sha256", v
	}
	names := make([]string, 0, len(hashes))
	for k := range hashes {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if hashes[k] != "" {
			return k, hashes[k]
		}
	}
	return "", ""
}

// expectation is what the cache must check a download against: the
// digests among hashes that the blob store computes.
func expectation(hashes map[string]string) blob.Expect {
	want := blob.NoExpectation
	for alg, into := range map[blob.Algorithm]*string{blob.SHA256: &want.SHA256, blob.SHA512: &want.SHA512,
		blob.SHA1: &want.SHA1, blob.MD5: &want.MD5} {
		if v := hashes[string(alg)]; v != "" && blob.ValidHex(alg, v) {
			*into = v
		}
	}
	return want
}

// proxyDownload serves a file, or its PEP 658 metadata file, through the
// cache: fetched once from the URL the project page gives for it, checked
// against the page's hashes. A file the cached page does not list has the
// page revalidated at once, for a client that learnt of a new release
// elsewhere.
func (f *Format) proxyDownload(w http.ResponseWriter, r *format.Request) error {
	if a, err := f.repos.Asset(r.Context(), r.Repo, r.Path); err == nil {
		return format.ServeAsset(w, r, f.repos, a)
	} else if !errors.Is(err, repo.ErrNotFound) {
		return err
	}
	project, version, filename := r.PathValue("project"), r.PathValue("version"), r.PathValue("filename")
	if Normalize(project) != project {
		return pypiErr(http.StatusNotFound, "%s is not a normalized project name", project)
	}
	page, err := f.proxyPage(r.Context(), r, project, false)
	if err != nil {
		return err
	}
	fl, metadata := lookup(page, filename)
	if fl == nil {
		if page, err = f.proxyPage(r.Context(), r, project, true); err != nil {
			return err
		}
		if fl, metadata = lookup(page, filename); fl == nil {
			return pypiErr(http.StatusNotFound, "%s is not listed on the upstream page of project %s", filename, project)
		}
	}
	if v := fileVersion(project, fl.Filename); v != version {
		return pypiErr(http.StatusNotFound, "%s is served at %s", filename, proxyFileURL(r, project, fl.Filename))
	}
	comp := repo.Component{Name: project, Version: version}
	if nv, err := NormalizeVersion(version); err == nil {
		comp.Version = nv
	}
	it := proxy.Item{Path: r.Path, URL: fl.URL, Expect: expectation(fl.Hashes),
		ContentType: "application/octet-stream", Component: comp}
	if metadata {
		if !fl.Metadata {
			return pypiErr(http.StatusNotFound, "no metadata file for %s", fl.Filename)
		}
		it.URL += ".metadata"
		it.Expect = expectation(fl.MetadataHashes)
		it.ContentType = "text/plain; charset=utf-8"
	}
	resp, err := f.cache.Get(r.Context(), r.Repo, it)
	if err != nil {
		return err
	}
	return format.ServeProxied(w, r, f.repos, resp)
}

// lookup finds a file by its name, or the file whose metadata file is
// named so.
func lookup(page *upstreamPage, filename string) (*upstreamFile, bool) {
	if fl := page.file(filename); fl != nil {
		return fl, false
	}
	if name, ok := strings.CutSuffix(filename, ".metadata"); ok {
		if fl := page.file(name); fl != nil {
			return fl, true
		}
	}
	return nil, false
}

// proxyProjects lists the projects whose upstream pages the proxy holds:
// the upstream's whole index is not copied (the public one lists every
// project there is), and installers never read it.
func (f *Format) proxyProjects(ctx context.Context, r *repo.Repository) ([]string, error) {
	var names []string
	err := f.repos.AssetsUnder(ctx, r, "simple/", func(a repo.Asset) error {
		rest, ok := strings.CutPrefix(a.Path, "simple/")
		if name, ok2 := strings.CutSuffix(rest, "/index"); ok && ok2 && !strings.Contains(name, "/") {
			names = append(names, name)
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

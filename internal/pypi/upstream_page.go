package pypi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	htmltoken "golang.org/x/net/html"
)

// An upstream's project page, PEP 691 JSON or PEP 503 HTML, is read into
// one shape, upstreamPage, with every link made absolute; the proxy serves
// and rewrites pages, and checks downloads, from that shape alone.

// upstreamFile is one file as an upstream project page lists it.
type upstreamFile struct {
	Filename string
	// URL is the file's absolute upstream URL, without its fragment.
	URL            string
	Hashes         map[string]string
	RequiresPython *string
	Yanked         bool
	YankReason     string
	// Metadata tells that a PEP 658 metadata file is served next to the
	// file; MetadataHashes are its digests, when the page gives them.
	Metadata       bool
	MetadataHashes map[string]string
	Size           *int64
	UploadTime     string
}

// upstreamPage is a parsed upstream project page.
type upstreamPage struct {
	// APIVersion is the simple API version the page declares.
	APIVersion string
	// Versions is PEP 700's list, nil when the page has none.
	Versions []string
	Files    []upstreamFile
}

// file returns the file named filename, or nil.
func (p *upstreamPage) file(filename string) *upstreamFile {
	for i := range p.Files {
		if p.Files[i].Filename == filename {
			return &p.Files[i]
		}
	}
	return nil
}

// pep700 reports whether the page gave everything PEP 700 (API 1.1) asks
// for, so that the rewritten page may claim that version.
func (p *upstreamPage) pep700() bool {
	if p.Versions == nil || !atLeast11(p.APIVersion) {
		return false
	}
	for _, fl := range p.Files {
		if fl.Size == nil || fl.UploadTime == "" {
			return false
		}
	}
	return true
}

// atLeast11 reports whether a "major.minor" API version is 1.1 or later.
func atLeast11(v string) bool {
	majorS, minorS, _ := strings.Cut(strings.TrimSpace(v), ".")
	major, err1 := strconv.Atoi(majorS)
	minor, err2 := strconv.Atoi(minorS)
	return err1 == nil && err2 == nil && (major > 1 || (major == 1 && minor >= 1))
}

// jsonUpstreamPage is a PEP 691 project page as read; the fields whose
// type varies are decoded by hand.
type jsonUpstreamPage struct {
	Meta struct {
		APIVersion string `json:"api-version"`
	} `json:"meta"`
	Versions []string `json:"versions"`
	Files    []struct {
		Filename         string            `json:"filename"`
		URL              string            `json:"url"`
		Hashes           map[string]string `json:"hashes"`
		RequiresPython   *string           `json:"requires-python"`
		Yanked           json.RawMessage   `json:"yanked"`
		CoreMetadata     json.RawMessage   `json:"core-metadata"`
		DistInfoMetadata json.RawMessage   `json:"dist-info-metadata"`
		Size             *int64            `json:"size"`
		UploadTime       string            `json:"upload-time"`
	} `json:"files"`
}

// parseJSONPage reads a PEP 691 page whose relative URLs are relative to
// base.
func parseJSONPage(b []byte, base string) (*upstreamPage, error) {
	var doc jsonUpstreamPage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a PEP 691 JSON page: %w", err)
	}
	baseURL, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	page := &upstreamPage{APIVersion: doc.Meta.APIVersion, Versions: doc.Versions}
	for _, jf := range doc.Files {
		fl := upstreamFile{Filename: jf.Filename, Hashes: lowerHashes(jf.Hashes), RequiresPython: jf.RequiresPython,
			Size: jf.Size, UploadTime: jf.UploadTime}
		if fl.URL, err = resolve(baseURL, jf.URL); err != nil {
			return nil, fmt.Errorf("file %s: %w", jf.Filename, err)
		}
		var reason string
		var yanked bool
		switch {
		case json.Unmarshal(jf.Yanked, &reason) == nil:
			// Any string marks the file yanked, with that reason.
			fl.Yanked, fl.YankReason = true, reason
		case json.Unmarshal(jf.Yanked, &yanked) == nil:
			fl.Yanked = yanked
		}
		md := jf.CoreMetadata
		if len(md) == 0 {
			md = jf.DistInfoMetadata
		}
		var hashes map[string]string
		switch {
		case json.Unmarshal(md, &yanked) == nil:
			fl.Metadata = yanked
		case json.Unmarshal(md, &hashes) == nil && hashes != nil:
			fl.Metadata, fl.MetadataHashes = true, lowerHashes(hashes)
		}
		if fl.Filename == "" {
			return nil, errors.New("a file has no filename")
		}
		page.Files = append(page.Files, fl)
	}
	return page, nil
}

// htmlAnchor is a link of a PEP 503 page as read, before it is resolved
// against the page's base URL, which a later base element may still set.
type htmlAnchor struct {
	href string
	// attrs holds the anchor's other attributes, names lower-cased and
	// values decoded; only the first of a repeated name counts.
	attrs map[string]string
	text  strings.Builder
}

// tagAttributes reads the attributes of the tokenizer's current start tag.
// Names come lower-cased and values with their character references
// decoded, as the tokenizer gives them; a name given twice keeps its first
// value, as browsers do.
func tagAttributes(z *htmltoken.Tokenizer) map[string]string {
	attrs := map[string]string{}
	for more := true; more; {
		var key, val []byte
		key, val, more = z.TagAttr()
		if key == nil {
			break
		}
		if _, dup := attrs[string(key)]; !dup {
			attrs[string(key)] = string(val)
		}
	}
	return attrs
}

// cleanHref prepares an href value for URL parsing the way browsers do:
// tabs and line breaks anywhere are dropped, and surrounding spaces too.
func cleanHref(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	return strings.Trim(s, " \f")
}

// parseHTMLPage reads a PEP 503 page whose relative links are relative to
// base, or to the page's first base element that has an href.
//
// The page is walked with an HTML tokenizer rather than parsed into a
// tree, so that no more than the anchors found is kept. An anchor ends at
// its end tag, at the next anchor's start tag (as a browser would close
// it) or at the end of the page. Text inside script, style and the other
// raw-text elements is not markup, so links there are not seen. Links
// that do not resolve to an http or https URL, and those leaving no file
// name, are not files and are skipped; a link that is not a URL at all
// makes the page an error.
func parseHTMLPage(b []byte, base string) (*upstreamPage, error) {
	baseURL, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	page := &upstreamPage{APIVersion: "1.0"}
	var anchors []*htmlAnchor
	var open *htmlAnchor
	haveBase := false
	z := htmltoken.NewTokenizer(bytes.NewReader(b))
tokens:
	for {
		switch z.Next() {
		case htmltoken.ErrorToken:
			// io.EOF, the only error an in-memory reader lets through.
			break tokens
		case htmltoken.TextToken:
			if open != nil {
				open.text.Write(z.Text())
			}
		case htmltoken.EndTagToken:
			if name, _ := z.TagName(); string(name) == "a" {
				open = nil
			}
		case htmltoken.StartTagToken, htmltoken.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "a":
				open = nil
				if !hasAttr {
					continue
				}
				attrs := tagAttributes(z)
				href, ok := attrs["href"]
				if !ok {
					continue
				}
				open = &htmlAnchor{href: href, attrs: attrs}
				anchors = append(anchors, open)
			case "base":
				if haveBase || !hasAttr {
					continue
				}
				if href, ok := tagAttributes(z)["href"]; ok {
					haveBase = true
					if u, err := baseURL.Parse(cleanHref(href)); err == nil {
						baseURL = u
					}
				}
			case "meta":
				if !hasAttr {
					continue
				}
				if a := tagAttributes(z); strings.EqualFold(a["name"], "pypi:repository-version") && a["content"] != "" {
					page.APIVersion = a["content"]
				}
			}
		}
	}
	for _, a := range anchors {
		fl, ok, err := anchorFile(baseURL, a)
		if err != nil {
			return nil, err
		}
		if ok {
			page.Files = append(page.Files, fl)
		}
	}
	return page, nil
}

// anchorFile makes the file an anchor of a PEP 503 page links to, its URL
// resolved against base; ok is false when the link is not one to a file.
func anchorFile(base *url.URL, a *htmlAnchor) (fl upstreamFile, ok bool, err error) {
	u, err := base.Parse(cleanHref(a.href))
	if err != nil {
		return fl, false, fmt.Errorf("link %q: %w", a.href, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fl, false, nil
	}
	fl.Hashes = map[string]string{}
	if name, value, found := strings.Cut(u.Fragment, "="); found && name != "" && value != "" {
		fl.Hashes[strings.ToLower(name)] = strings.ToLower(value)
	}
	u.Fragment, u.RawFragment = "", ""
	fl.URL = u.String()
	fl.Filename = strings.TrimSpace(a.text.String())
	if fl.Filename == "" {
		fl.Filename = lastSegment(u)
	}
	if fl.Filename == "" {
		return fl, false, nil
	}
	if rp, found := a.attrs["data-requires-python"]; found {
		fl.RequiresPython = &rp
	}
	if reason, found := a.attrs["data-yanked"]; found {
		fl.Yanked, fl.YankReason = true, reason
	}
	md, found := a.attrs["data-core-metadata"]
	if !found {
		md, found = a.attrs["data-dist-info-metadata"]
	}
	if found && md != "false" {
		fl.Metadata = true
		if name, value, hashed := strings.Cut(md, "="); hashed && name != "" && value != "" {
			fl.MetadataHashes = map[string]string{strings.ToLower(name): strings.ToLower(value)}
		}
	}
	return fl, true, nil
}

// resolve makes ref absolute against base and drops its fragment.
func resolve(base *url.URL, ref string) (string, error) {
	u, err := base.Parse(ref)
	if err != nil {
		return "", err
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

func lastSegment(u *url.URL) string {
	p := u.Path
	return p[strings.LastIndex(p, "/")+1:]
}

func lowerHashes(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		out[strings.ToLower(k)] = strings.ToLower(v)
	}
	return out
}

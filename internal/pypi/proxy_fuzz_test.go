package pypi

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// htmlPageBase is the URL the pages below are read as if fetched from.
const htmlPageBase = "https://index.example/simple/demo/"

// htmlPageSeeds are PEP 503 pages as upstreams write them, and some as
// they should not: odd quoting, entities, markup inside anchors, missing
// end tags, links that are no files.
var htmlPageSeeds = []string{
	"",
	`<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.1"><title>Links for demo</title></head>
<body><h1>Links for demo</h1>
<a href="https://files.example/packages/demo-1.0.tar.gz#sha256=ABCDEF" data-requires-python="&gt;=3.8">demo-1.0.tar.gz</a><br>
<a href="../../files/demo-1.0-py3-none-any.whl#sha256=0123" data-dist-info-metadata="sha256=FEED" data-core-metadata="sha256=BEEF" data-yanked="">demo-1.0-py3-none-any.whl</a><br>
</body></html>`,
	`<html><body><A HREF=../../f/demo-2.0.zip#md5=aa DATA-YANKED='it&#39;s &amp; broken'>demo-2.0.zip</A>
<a href = 'x/demo-2.1.tar.gz' data-requires-python=">=3.6,<4" data-core-metadata=true><b>demo-2.1</b>.tar.gz</a>`,
	`<base href="https://mirror.example/pkgs/"><a href="demo-3.0.tar.gz">demo&#45;3.0&period;tar.gz</a><a href="demo-3.1.tar.gz">demo-3.1.tar.gz<a href="demo-3.2.tar.gz"></a>`,
	`<a href="demo-4.0.tar.gz" href="other.tar.gz">demo-4.0.tar.gz</a><a>no href</a><a href="mailto:x@example.org">mail</a><a href="#top"></a><a href="/">root</a><a href="">`,
	`<script>var s = '<a href="hidden.tar.gz">hidden</a>';</script><!-- <a href="c.tar.gz">c</a> --><a href="
	demo-5.0.tar.gz
">  demo-5.0.tar.gz  </a><a href="ftp://x.example/a.tar.gz">a.tar.gz</a>`,
	`<a href="http://[::1]:namedport/x.tar.gz">bad</a>`,
	`<a href='//other.example/demo-6.0.tar.gz#sha256=' data-dist-info-metadata="false">demo-6.0.tar.gz</a <a href=unterminated`,
}

// TestParseHTMLPage checks what is read from a few pages.
func TestParseHTMLPage(t *testing.T) {
	type want struct {
		filename, url, hash, requires, yank, mdHash string
		yanked, metadata                            bool
	}
	hash := func(fl upstreamFile) string {
		for k, v := range fl.Hashes {
			return k + "=" + v
		}
		return ""
	}
	for i, tc := range []struct {
		page  string
		api   string
		files []want
	}{
		{htmlPageSeeds[1], "1.1", []want{
			{filename: "demo-1.0.tar.gz", url: "https://files.example/packages/demo-1.0.tar.gz", hash: "sha256=abcdef", requires: ">=3.8"},
			{filename: "demo-1.0-py3-none-any.whl", url: "https://index.example/files/demo-1.0-py3-none-any.whl", hash: "sha256=0123",
				yanked: true, metadata: true, mdHash: "sha256=beef"},
		}},
		{htmlPageSeeds[2], "1.0", []want{
			{filename: "demo-2.0.zip", url: "https://index.example/f/demo-2.0.zip", hash: "md5=aa", yanked: true, yank: "it's & broken"},
			{filename: "demo-2.1.tar.gz", url: "https://index.example/simple/demo/x/demo-2.1.tar.gz", requires: ">=3.6,<4", metadata: true},
		}},
		{htmlPageSeeds[3], "1.0", []want{
			{filename: "demo-3.0.tar.gz", url: "https://mirror.example/pkgs/demo-3.0.tar.gz"},
			{filename: "demo-3.1.tar.gz", url: "https://mirror.example/pkgs/demo-3.1.tar.gz"},
			{filename: "demo-3.2.tar.gz", url: "https://mirror.example/pkgs/demo-3.2.tar.gz"},
		}},
		{htmlPageSeeds[4], "1.0", []want{
			{filename: "demo-4.0.tar.gz", url: "https://index.example/simple/demo/demo-4.0.tar.gz"},
			{filename: "root", url: "https://index.example/"},
		}},
		{htmlPageSeeds[5], "1.0", []want{
			{filename: "demo-5.0.tar.gz", url: "https://index.example/simple/demo/demo-5.0.tar.gz"},
		}},
		{htmlPageSeeds[7], "1.0", []want{
			{filename: "demo-6.0.tar.gz", url: "https://other.example/demo-6.0.tar.gz"},
		}},
	} {
		page, err := parseHTMLPage([]byte(tc.page), htmlPageBase)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		if page.APIVersion != tc.api || len(page.Files) != len(tc.files) {
			t.Fatalf("page %d: API %q, files %+v", i, page.APIVersion, page.Files)
		}
		for j, w := range tc.files {
			fl := page.Files[j]
			requires := ""
			if fl.RequiresPython != nil {
				requires = *fl.RequiresPython
			}
			mdHash := ""
			for k, v := range fl.MetadataHashes {
				mdHash = k + "=" + v
			}
			got := want{filename: fl.Filename, url: fl.URL, hash: hash(fl), requires: requires, yank: fl.YankReason,
				mdHash: mdHash, yanked: fl.Yanked, metadata: fl.Metadata}
			if got != w {
				t.Errorf("page %d file %d:\n got %+v\nwant %+v", i, j, got, w)
			}
		}
	}
	if _, err := parseHTMLPage([]byte(htmlPageSeeds[6]), htmlPageBase); err == nil {
		t.Errorf("a link that is no URL was accepted")
	}
}

// FuzzParseHTMLPage feeds arbitrary pages to the parser: it must not
// panic, and every file it returns must have a name and an absolute http
// or https URL without a fragment.
func FuzzParseHTMLPage(f *testing.F) {
	for _, s := range htmlPageSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		page, err := parseHTMLPage([]byte(s), htmlPageBase)
		if err != nil {
			return
		}
		if page.APIVersion == "" {
			t.Errorf("empty API version")
		}
		for _, fl := range page.Files {
			if fl.Filename == "" {
				t.Errorf("file without a name: %+v", fl)
			}
			u, err := url.Parse(fl.URL)
			if err != nil {
				t.Errorf("file %q: URL %q does not parse: %v", fl.Filename, fl.URL, err)
				continue
			}
			if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !u.IsAbs() {
				t.Errorf("file %q: URL %q is not an absolute http(s) URL", fl.Filename, fl.URL)
			}
			if u.Fragment != "" || strings.Contains(fl.URL, "#") {
				t.Errorf("file %q: URL %q has a fragment", fl.Filename, fl.URL)
			}
		}
	})
}

// FuzzRewriteJSONDoc rewrites arbitrary JSON API documents as a proxy
// does with an upstream's: it must not panic, what it returns must be
// JSON, and no file link may be left pointing anywhere but at arca.
func FuzzRewriteJSONDoc(f *testing.F) {
	f.Add(`{"info":{"name":"Demo","version":"1.0"},"urls":[{"filename":"demo-1.0.tar.gz","url":"https://files.example/demo-1.0.tar.gz"}],"releases":{"1.0":[{"filename":"demo-1.0.tar.gz","url":"https://files.example/x"}],"0.5":null}}`)
	f.Add(`{"info":null,"urls":null,"releases":{}}`)
	f.Add(`{"info":{"version":null},"urls":[{"url":"x"}]}`)
	f.Add(`{"releases":{"1":[null]},"last_serial":1e400}`)
	const arca = "http://arca.test/repository/pp/"
	f.Fuzz(func(t *testing.T, s string) {
		var doc map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &doc) != nil || doc == nil {
			return
		}
		b, err := rewriteJSONDoc(doc, arca+"pypi/demo/", func(name string) string { return arca + "packages/" + url.PathEscape(name) })
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("rewritten document is not JSON: %s", b)
		}
		// Keys as clients read them: exactly (Go's struct decoding would
		// match "Releases" too).
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatalf("rewritten document is no object: %v", err)
		}
		type file = map[string]json.RawMessage
		var files, list []file
		var releases map[string]json.RawMessage
		if json.Unmarshal(top["urls"], &list) == nil {
			files = append(files, list...)
		}
		if json.Unmarshal(top["releases"], &releases) == nil {
			for _, raw := range releases {
				list = nil
				if json.Unmarshal(raw, &list) == nil {
					files = append(files, list...)
				}
			}
		}
		for _, fl := range files {
			var link string
			if json.Unmarshal(fl["url"], &link) != nil || !strings.HasPrefix(link, arca+"packages/") {
				t.Errorf("a file link %s does not point at arca: %s", fl["url"], b)
			}
		}
	})
}

package pypi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// jsonAPIDoc is a JSON API document as the tests read it.
type jsonAPIDoc struct {
	Info     map[string]any              `json:"info"`
	URLs     []map[string]any            `json:"urls"`
	Releases map[string][]map[string]any `json:"releases"`
}

func decodeJSONAPI(t *testing.T, body string) jsonAPIDoc {
	t.Helper()
	var doc jsonAPIDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return doc
}

// TestProxyJSONAPIOfArca reads the JSON API through a proxy of another
// arca's hosted repository: the upstream's documents with every file URL
// and info URL pointing at the proxy, files that download through the
// proxy when the client read nothing else, ETags, redirects of names and
// versions, the cache and its revalidation, and upstream 404s.
func TestProxyJSONAPIOfArca(t *testing.T) {
	up := serve(t)
	up.Create(t, `{"name":"up","format":"pypi","type":"hosted","online":true,"anonymousRead":true}`)
	upBase := up.URL + "/repository/up/"
	files := map[string][]byte{
		"demo-1.0-py3-none-any.whl": wheelBytes(t, "demo", "1.0"),
		"demo-1.0.tar.gz":           sdist(t, "demo", "1.0"),
		"demo-2.0.tar.gz":           sdist(t, "demo", "2.0"),
	}
	for _, name := range []string{"demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz", "demo-2.0.tar.gz"} {
		version := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, "demo-"), ".tar.gz"), "-py3-none-any.whl")
		if code, body := upload(t, upBase, name, files[name], map[string]string{"version": version,
			"description": "<p>A & B</p>"}); code != 200 {
			t.Fatalf("upload %s: %d %s", name, code, body)
		}
	}
	var seen counter
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.URL.Path)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	_, _, base := proxyTo(t, front.URL+"/repository/up/")

	resp, body := do(t, "GET", base+"pypi/demo/json", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("project JSON: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(body, up.URL) || strings.Contains(body, front.URL) {
		t.Errorf("the document names the upstream: %s", body)
	}
	doc := decodeJSONAPI(t, body)
	if doc.Info["version"] != "2.0" || doc.Info["package_url"] != base+"pypi/demo/" ||
		doc.Info["project_url"] != base+"pypi/demo/" || doc.Info["release_url"] != base+"pypi/demo/2.0/" ||
		doc.Info["description"] != "<p>A & B</p>" || len(doc.Releases) != 2 || len(doc.Releases["1.0"]) != 2 ||
		len(doc.Releases["2.0"]) != 1 || len(doc.URLs) != 1 {
		t.Fatalf("project JSON: %s", body)
	}

	// Everything but the URLs is the upstream's.
	_, upBody := do(t, "GET", upBase+"pypi/demo/json", "", nil)
	var want, got any
	if err := json.Unmarshal([]byte(upBody), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	w := want.(map[string]any)
	for _, k := range []string{"package_url", "project_url", "release_url"} {
		w["info"].(map[string]any)[k] = doc.Info[k]
	}
	lists := [][]any{w["urls"].([]any)}
	for _, l := range w["releases"].(map[string]any) {
		lists = append(lists, l.([]any))
	}
	for _, l := range lists {
		for _, f := range l {
			fm := f.(map[string]any)
			fm["url"] = strings.Replace(fm["url"].(string), upBase, base, 1)
		}
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("proxied document differs from the upstream's beyond its URLs:\nupstream %s\nproxy    %s", upBody, body)
	}

	// The rewritten URLs download through the proxy, which fetches the
	// simple page it needs for that on its own.
	if n := seen.get("/repository/up/simple/demo/"); n != 0 {
		t.Fatalf("simple page fetched %d times before any download", n)
	}
	for v, list := range doc.Releases {
		for _, f := range list {
			name := f["filename"].(string)
			if f["url"] != base+"packages/demo/"+v+"/"+name {
				t.Errorf("URL of %s: %v", name, f["url"])
			}
			if code, got := get(t, f["url"].(string)); code != 200 || got != string(files[name]) {
				t.Errorf("download %s: %d, %d bytes", name, code, len(got))
			}
		}
	}
	if n := seen.get("/repository/up/simple/demo/"); n != 1 {
		t.Errorf("simple page fetched %d times, want 1", n)
	}

	// ETag and 304.
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Error("no ETag")
	} else if resp, _ := do(t, "GET", base+"pypi/demo/json", "", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if n := seen.get("/repository/up/pypi/demo/json"); n != 1 {
		t.Errorf("upstream document fetched %d times, want 1 (cached)", n)
	}

	// One release.
	resp, body = do(t, "GET", base+"pypi/demo/1.0/json", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
		t.Fatalf("release JSON: %d %s", resp.StatusCode, body)
	}
	rel := decodeJSONAPI(t, body)
	if rel.Info["version"] != "1.0" || rel.Info["release_url"] != base+"pypi/demo/1.0/" || rel.Releases != nil ||
		strings.Contains(body, `"releases"`) || len(rel.URLs) != 2 {
		t.Fatalf("release JSON: %s", body)
	}
	for _, f := range rel.URLs {
		if f["url"] != base+"packages/demo/1.0/"+f["filename"].(string) {
			t.Errorf("release file URL: %v", f["url"])
		}
	}

	// Names and versions spelled otherwise redirect, like a hosted
	// repository's; what the upstream lacks is a 404 in plain text.
	for p, want := range map[string]string{
		"pypi/Demo/json":       "pypi/demo/json",
		"pypi/DEMO/1.0/json":   "pypi/demo/1.0/json",
		"pypi/demo/1.0.0/json": "pypi/demo/1.0/json",
	} {
		resp, _ := do(t, "GET", base+p, "", nil)
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != base+want {
			t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, p := range []string{"pypi/nothing/json", "pypi/demo/9.0/json"} {
		resp, body := do(t, "GET", base+p, "", nil)
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
			!strings.Contains(body, "not found upstream") {
			t.Errorf("%s: %d %s %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}

	// A release published upstream shows when the client asks for a
	// revalidation, as pip and poetry do.
	if code, body := upload(t, upBase, "demo-3.0.tar.gz", sdist(t, "demo", "3.0"), map[string]string{"version": "3.0"}); code != 200 {
		t.Fatalf("upload 3.0: %d %s", code, body)
	}
	if _, body := do(t, "GET", base+"pypi/demo/json", "", nil); decodeJSONAPI(t, body).Info["version"] != "2.0" {
		t.Errorf("cached document changed without a revalidation: %s", body)
	}
	_, body = do(t, "GET", base+"pypi/demo/json", "", nil, "Cache-Control", "max-age=0")
	if doc := decodeJSONAPI(t, body); doc.Info["version"] != "3.0" || len(doc.Releases["3.0"]) != 1 {
		t.Fatalf("revalidated document: %s", body)
	}
	if code, got := get(t, base+"packages/demo/3.0/demo-3.0.tar.gz"); code != 200 || got != string(sdist(t, "demo", "3.0")) {
		t.Errorf("download of the new release: %d", code)
	}
}

// fakeIndex is an index that serves a JSON API of its own making, with
// fields arca does not know and files on a path of their own.
type fakeIndex struct {
	srv  *httptest.Server
	down atomic.Bool
	file []byte
}

func newFakeIndex(t *testing.T) *fakeIndex {
	fx := &fakeIndex{file: []byte("the sdist of demo 1.0")}
	fx.srv = httptest.NewServer(http.HandlerFunc(fx.serve))
	t.Cleanup(fx.srv.Close)
	return fx
}

// fileEntry is the upstream's JSON API entry of the one file.
func (fx *fakeIndex) fileEntry() string {
	return `{"filename":"demo-1.0.tar.gz","url":"` + fx.srv.URL + `/files/demo-1.0.tar.gz","digests":{"sha256":"` +
		sha256Hex(fx.file) + `","blake2b_256":"00ff"},"size":` + fmt.Sprint(len(fx.file)) +
		`,"comment_text":null,"yanked":false,"yanked_reason":null,"ratio":1.50,"future_field":{"a":[1,2,3]}}`
}

// projectDoc is the upstream's project document, written by hand.
func (fx *fakeIndex) projectDoc() string {
	return `{"info":{"name":"Demo","version":"1.0","description":"<b>A & B</b>","package_url":"` + fx.srv.URL +
		`/project/demo/","project_url":"` + fx.srv.URL + `/project/demo/","release_url":"` + fx.srv.URL +
		`/project/demo/1.0/","project_urls":{"Home":"https://example.invalid/"},"unknown_key":[true,null]},` +
		`"last_serial":123456789012345678901234567890,"releases":{"0.1":[],"0.5":null,"1.0":[` + fx.fileEntry() + `]},` +
		`"urls":[` + fx.fileEntry() + `],"vulnerabilities":[{"id":"V-1","fixed_in":["1.0"]}],"ownership":{"roles":[]}}`
}

func (fx *fakeIndex) serve(w http.ResponseWriter, r *http.Request) {
	if fx.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/pypi/demo/json":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, fx.projectDoc()) //nolint:errcheck // a test server
	case "/pypi/demo/1.0/json":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"info":{"name":"Demo","version":"1.0"},"urls":[`+fx.fileEntry()+`]}`) //nolint:errcheck // a test server
	case "/pypi/notjson/json":
		io.WriteString(w, "<html>not JSON</html>") //nolint:errcheck // a test server
	case "/pypi/failing/json":
		http.Error(w, "failing", http.StatusInternalServerError)
	case "/simple/demo/":
		w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
		io.WriteString(w, `{"meta":{"api-version":"1.0"},"name":"demo","files":[{"filename":"demo-1.0.tar.gz",`+ //nolint:errcheck // a test server
			`"url":"../../files/demo-1.0.tar.gz","hashes":{"sha256":"`+sha256Hex(fx.file)+`"}}]}`)
	case "/files/demo-1.0.tar.gz":
		w.Write(fx.file) //nolint:errcheck // a test server
	default:
		http.NotFound(w, r)
	}
}

// TestProxyJSONAPIKeepsFields proxies an index whose JSON API has fields
// arca does not know, numbers no float holds and HTML in strings: all
// pass as the upstream wrote them, and only the URLs change. Then the
// upstream fails: the cached document is served, what was never cached
// is a 502, a broken document too, and an offline proxy serves only
// its cache.
func TestProxyJSONAPIKeepsFields(t *testing.T) {
	fx := newFakeIndex(t)
	env := serve(t)
	pp := env.Create(t, fmt.Sprintf(`{"name":"pp","format":"pypi","type":"proxy","online":true,"anonymousRead":true,
		"proxy":{"url":%q,"retries":0,"metadataMaxAge":"1ms"}}`, fx.srv.URL+"/"))
	base := env.URL + "/repository/pp/"

	resp, body := do(t, "GET", base+"pypi/demo/json", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("project JSON: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"last_serial":123456789012345678901234567890`, `"ratio":1.50`,
		`"description":"<b>A & B</b>"`, `"unknown_key":[true,null]`, `"future_field":{"a":[1,2,3]}`,
		`"blake2b_256":"00ff"`, `"0.5":null`, `"0.1":[]`, `"vulnerabilities":[{"id":"V-1","fixed_in":["1.0"]}]`,
		`"ownership":{"roles":[]}`, `"project_urls":{"Home":"https://example.invalid/"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("document lacks %s: %s", want, body)
		}
	}
	if strings.Contains(body, fx.srv.URL) {
		t.Errorf("document names the upstream: %s", body)
	}
	// Decoded, the document is the upstream's but for the URLs.
	var want, got any
	dec := json.NewDecoder(strings.NewReader(strings.NewReplacer(
		fx.srv.URL+"/files/", base+"packages/demo/1.0/",
		fx.srv.URL+"/project/", base+"pypi/").Replace(fx.projectDoc())))
	dec.UseNumber()
	if err := dec.Decode(&want); err != nil {
		t.Fatal(err)
	}
	dec = json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("document differs beyond its URLs:\nwant %v\ngot  %v", want, got)
	}
	doc := decodeJSONAPI(t, body)
	if code, b := get(t, doc.URLs[0]["url"].(string)); code != 200 || b != string(fx.file) {
		t.Errorf("download: %d %q", code, b)
	}
	if _, body := do(t, "GET", base+"pypi/demo/1.0/json", "", nil); !strings.Contains(body, `"release_url":"`+base+`pypi/demo/1.0/"`) ||
		!strings.Contains(body, `"url":"`+base+`packages/demo/1.0/demo-1.0.tar.gz"`) {
		t.Errorf("release JSON: %s", body)
	}

	// Through a group, a file keeps the fields and types the upstream gave.
	env.Create(t, `{"name":"gp","format":"pypi","type":"group","online":true,"anonymousRead":true,"group":{"members":["pp"]}}`)
	if resp, gbody := do(t, "GET", env.URL+"/repository/gp/pypi/demo/json", "", nil); resp.StatusCode != 200 ||
		!strings.Contains(gbody, `"future_field":{"a":[1,2,3]}`) || !strings.Contains(gbody, `"ratio":1.50`) ||
		!strings.Contains(gbody, `"blake2b_256":"00ff"`) {
		t.Errorf("group of the proxy: %d %s", resp.StatusCode, gbody)
	}

	// A document that is not JSON, and an upstream failing on a document
	// never cached: 502.
	for _, p := range []string{"pypi/notjson/json", "pypi/failing/json"} {
		if resp, body := do(t, "GET", base+p, "", nil); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: %d %q", p, resp.StatusCode, body)
		}
	}

	// Upstream down: the cached document, stale, is served as it was.
	fx.down.Store(true)
	time.Sleep(5 * time.Millisecond)
	if resp, stale := do(t, "GET", base+"pypi/demo/json", "", nil); resp.StatusCode != 200 || stale != body {
		t.Errorf("stale document: %d %s", resp.StatusCode, stale)
	}
	if resp, b := do(t, "GET", base+"pypi/other/json", "", nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("uncached document, upstream down: %d %q", resp.StatusCode, b)
	}

	// Offline: the cache only.
	fx.down.Store(false)
	off := *pp
	off.Online = false
	if err := env.Repos.Update(context.Background(), &off); err != nil {
		t.Fatal(err)
	}
	if resp, cached := do(t, "GET", base+"pypi/demo/json", "", nil); resp.StatusCode != 200 || cached != body {
		t.Errorf("offline, cached: %d %s", resp.StatusCode, cached)
	}
	if resp, b := do(t, "GET", base+"pypi/other/json", "", nil); resp.StatusCode != 404 || !strings.Contains(b, "offline") {
		t.Errorf("offline, not cached: %d %q", resp.StatusCode, b)
	}
}

// TestGroupJSONAPIWithProxy merges the JSON API of a hosted member and a
// proxy of another arca: the releases of both, the first member keeping a
// file name both have, links to the group that download.
func TestGroupJSONAPIWithProxy(t *testing.T) {
	up := serve(t)
	up.Create(t, `{"name":"up","format":"pypi","type":"hosted","online":true,"anonymousRead":true}`)
	upURL := up.URL + "/repository/up/"
	u1 := sdist(t, "demo", "1.0", "upstream")
	u4 := sdist(t, "demo", "4.0", "upstream")
	for _, c := range []struct {
		file    string
		content []byte
		version string
	}{{"demo-1.0.tar.gz", u1, "1.0"}, {"demo-4.0.tar.gz", u4, "4.0"}} {
		if code, body := upload(t, upURL, c.file, c.content, map[string]string{"version": c.version}); code != 200 {
			t.Fatalf("upload upstream: %d %s", code, body)
		}
	}
	e := serve(t)
	e.Create(t, `{"name":"h","format":"pypi","type":"hosted","online":true}`)
	e.Create(t, fmt.Sprintf(`{"name":"pp","format":"pypi","type":"proxy","online":true,"proxy":{"url":%q,"retries":0}}`, upURL))
	e.Create(t, `{"name":"g","format":"pypi","type":"group","online":true,"group":{"members":["h","pp"],"writeMember":"h"}}`)
	g := e.URL + "/repository/g/"
	h1 := sdist(t, "demo", "1.0", "hosted")
	h2 := sdist(t, "demo", "2.0", "hosted")
	for _, c := range []struct {
		file    string
		content []byte
		version string
	}{{"demo-1.0.tar.gz", h1, "1.0"}, {"demo-2.0.tar.gz", h2, "2.0"}} {
		if code, body := upload(t, e.URL+"/repository/h/", c.file, c.content, map[string]string{"version": c.version}); code != 200 {
			t.Fatalf("upload: %d %s", code, body)
		}
	}

	code, body, _ := getAs(t, "admin", "secret", g+"pypi/demo/json")
	if code != 200 {
		t.Fatalf("group JSON API: %d %s", code, body)
	}
	doc := decodeJSONAPI(t, body)
	if len(doc.Releases) != 3 || len(doc.Releases["1.0"]) != 1 || len(doc.Releases["2.0"]) != 1 || len(doc.Releases["4.0"]) != 1 {
		t.Fatalf("group releases: %s", body)
	}
	if f := doc.Releases["1.0"][0]; f["digests"].(map[string]any)["sha256"] != sha256Hex(h1) {
		t.Errorf("1.0 is not the hosted member's: %v", f)
	}
	if doc.Info["version"] != "4.0" || doc.Info["release_url"] != g+"pypi/demo/4.0/" || len(doc.URLs) != 1 ||
		doc.URLs[0]["url"] != g+"packages/demo/4.0/demo-4.0.tar.gz" {
		t.Errorf("group info and urls: %s", body)
	}
	for v, want := range map[string][]byte{"1.0": h1, "2.0": h2, "4.0": u4} {
		f := doc.Releases[v][0]
		if f["url"] != g+"packages/demo/"+v+"/demo-"+v+".tar.gz" {
			t.Errorf("URL of %s: %v", v, f["url"])
			continue
		}
		if code, got, _ := getAs(t, "admin", "secret", f["url"].(string)); code != 200 || !bytes.Equal([]byte(got), want) {
			t.Errorf("download of %s through the group: %d, %d bytes", v, code, len(got))
		}
	}
	code, body, _ = getAs(t, "admin", "secret", g+"pypi/demo/4.0/json")
	if doc := decodeJSONAPI(t, body); code != 200 || doc.Info["version"] != "4.0" || len(doc.URLs) != 1 ||
		doc.URLs[0]["url"] != g+"packages/demo/4.0/demo-4.0.tar.gz" {
		t.Errorf("group release JSON from the proxy: %d %s", code, body)
	}
}

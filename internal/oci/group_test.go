package oci_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The group tests serve a group "registry" of two hosted repositories,
// "containers" (first, the write member) and "other", and a group "ro"
// of the same members without a write member.
const (
	registryGroup = `{"name":"registry","format":"oci","type":"group","group":{"members":["containers","other"],"writeMember":"containers"}}`
	readOnlyGroup = `{"name":"ro","format":"oci","type":"group","group":{"members":["containers","other"]}}`
)

func newGroupEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, containersRepo, otherRepo, registryGroup, readOnlyGroup)
}

// tagList reads an image's tag list and the Link header.
func (e *env) tagList(path string, headers ...string) ([]string, string) {
	e.t.Helper()
	r := e.must(e.do("GET", path, nil, headers...), http.StatusOK)
	var doc struct {
		Name string
		Tags []string
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		e.t.Fatalf("tag list %q: %v", r.body, err)
	}
	return doc.Tags, r.Header.Get("Link")
}

func TestGroupReadsFromFirstMember(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t)
	onlyOther := e.pushImage("other/app", "other-only", randBytes(20))
	first := e.pushImage("containers/app", "shared", randBytes(20))
	second := e.pushImage("other/app", "shared", randBytes(20))

	for _, prefix := range []string{"registry", "ro"} {
		// A tag both members have: the first member's manifest.
		r := e.must(e.do("GET", prefix+"/app/manifests/shared", nil, "Accept", first.mediaType), http.StatusOK)
		if got := r.Header.Get("Docker-Content-Digest"); got != first.digest() {
			t.Errorf("%s shared = %s, want the first member's %s (second's is %s)", prefix, got, first.digest(), second.digest())
		}
		// A tag and a digest only the second member has.
		r = e.must(e.do("GET", prefix+"/app/manifests/other-only", nil, "Accept", onlyOther.mediaType), http.StatusOK)
		if string(r.body) != string(onlyOther.body) {
			t.Errorf("%s other-only = %q", prefix, r.body)
		}
		e.must(e.do("GET", prefix+"/app/manifests/"+second.digest(), nil, "Accept", second.mediaType), http.StatusOK)
		r = e.must(e.do("HEAD", prefix+"/app/manifests/"+second.digest(), nil, "Accept", second.mediaType), http.StatusOK)
		if got := r.Header.Get("Docker-Content-Digest"); got != second.digest() || len(r.body) != 0 {
			t.Errorf("HEAD %s by digest: digest %q, body %d bytes", prefix, got, len(r.body))
		}
		// A layer of the second member, by GET and HEAD.
		var doc struct{ Layers []descriptor }
		if err := json.Unmarshal(onlyOther.body, &doc); err != nil {
			t.Fatal(err)
		}
		layer := doc.Layers[0].Digest
		r = e.must(e.do("GET", prefix+"/app/blobs/"+layer, nil), http.StatusOK)
		if sha(r.body) != layer {
			t.Errorf("%s layer has digest %s, want %s", prefix, sha(r.body), layer)
		}
		r = e.must(e.do("HEAD", prefix+"/app/blobs/"+layer, nil), http.StatusOK)
		if r.Header.Get("Content-Length") != "20" {
			t.Errorf("HEAD %s layer: Content-Length %q", prefix, r.Header.Get("Content-Length"))
		}
		// What no member has answers the registry's not-found codes.
		if code := e.must(e.do("GET", prefix+"/app/manifests/none", nil), http.StatusNotFound).code(t); code != "MANIFEST_UNKNOWN" {
			t.Errorf("%s unknown tag: code %s", prefix, code)
		}
		if code := e.must(e.do("GET", prefix+"/app/blobs/sha256:"+strings.Repeat("0", 64), nil), http.StatusNotFound).code(t); code != "BLOB_UNKNOWN" {
			t.Errorf("%s unknown blob: code %s", prefix, code)
		}
		e.must(e.do("HEAD", prefix+"/app/blobs/sha256:"+strings.Repeat("0", 64), nil), http.StatusNotFound)
	}
}

func TestGroupMergesTags(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t)
	m := e.pushImage("containers/app", "v1", randBytes(10))
	for _, tag := range []string{"b", "shared"} {
		e.pushManifest("containers/app", tag, m)
	}
	o := e.pushImage("other/app", "a", randBytes(10))
	for _, tag := range []string{"shared", "v2", "c"} {
		e.pushManifest("other/app", tag, o)
	}
	e.pushImage("other/solo", "1", randBytes(10))
	want := []string{"a", "b", "c", "shared", "v1", "v2"}

	r := e.must(e.do("GET", "registry/app/tags/list", nil), http.StatusOK)
	var doc struct {
		Name string
		Tags []string
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || doc.Name != "registry/app" || !slices.Equal(doc.Tags, want) {
		t.Errorf("merged tag list = %s (%v), want registry/app with %v", r.body, err, want)
	}
	var paged []string
	query := "?n=4"
	for i := 0; query != "" && i < 5; i++ {
		page, link := e.tagList("registry/app/tags/list" + query)
		if len(page) > 4 {
			t.Fatalf("page of %d tags", len(page))
		}
		paged = append(paged, page...)
		query = ""
		if link != "" {
			if !strings.HasPrefix(link, "</v2/registry/app/tags/list?") {
				t.Fatalf("Link = %q", link)
			}
			query = link[strings.Index(link, "?"):strings.Index(link, ">")]
		}
	}
	if !slices.Equal(paged, want) {
		t.Errorf("paged = %v, want %v", paged, want)
	}
	if got, _ := e.tagList("registry/app/tags/list?last=c&n=2"); !slices.Equal(got, []string{"shared", "v1"}) {
		t.Errorf("after c, 2 = %v", got)
	}
	// An image only one member has; one none has.
	if got, _ := e.tagList("ro/solo/tags/list"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("solo tags = %v", got)
	}
	if code := e.must(e.do("GET", "registry/nothing/tags/list", nil), http.StatusNotFound).code(t); code != "NAME_UNKNOWN" {
		t.Errorf("unknown image: code %s", code)
	}
	// A member the caller may not read is left out of the union.
	e.user("partial", map[string][]string{"registry": {"read"}, "containers": {"read"}})
	if got, _ := e.tagList("registry/app/tags/list", "@user", "partial"); !slices.Equal(got, []string{"b", "shared", "v1"}) {
		t.Errorf("tags for a reader of containers only = %v", got)
	}
	e.must(e.do("GET", "registry/solo/tags/list", nil, "@user", "partial"), http.StatusNotFound)
}

func TestGroupMergesReferrers(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t)
	subject := e.pushImage("containers/app", "1", randBytes(10))
	empty := []byte("{}")
	for _, name := range []string{"containers/app", "other/app"} {
		e.pushBlob(name, empty)
	}
	// The layers are pushed first, as the registry checks them.
	pushWithLayer := func(name string, a manifest, layer []byte) {
		e.pushBlob(name, layer)
		e.must(e.do("PUT", name+"/manifests/"+a.digest(), a.body, "Content-Type", a.mediaType), http.StatusCreated)
	}
	sigLayer, sbomLayer := randBytes(5), randBytes(5)
	sig := artifact("application/vnd.example.sig", subject, empty, sigLayer, nil)
	sbom := artifact("application/vnd.example.sbom", subject, empty, sbomLayer, nil)
	pushWithLayer("containers/app", sig, sigLayer)
	pushWithLayer("other/app", sbom, sbomLayer)
	pushWithLayer("other/app", sig, sigLayer) // in both: listed once

	refs := func(query string) ([]string, http.Header) {
		r := e.must(e.do("GET", "registry/app/referrers/"+subject.digest()+query, nil), http.StatusOK)
		var index struct{ Manifests []descriptor }
		if err := json.Unmarshal(r.body, &index); err != nil {
			t.Fatal(err)
		}
		var ds []string
		for _, d := range index.Manifests {
			ds = append(ds, d.Digest)
		}
		return ds, r.Header
	}
	if got, _ := refs(""); !slices.Equal(got, []string{sig.digest(), sbom.digest()}) {
		t.Errorf("referrers = %v, want sig %s then sbom %s", got, sig.digest(), sbom.digest())
	}
	got, h := refs("?artifactType=application/vnd.example.sbom")
	if !slices.Equal(got, []string{sbom.digest()}) || h.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered referrers = %v, %v", got, h)
	}
}

// registryToken asks the token endpoint for scopes as a user; it returns
// the token and the access list it carries.
func (e *env) registryToken(user string, scopes ...string) (string, map[string][]string) {
	e.t.Helper()
	q := url.Values{"service": {"arca.test"}, "scope": scopes}
	r := e.must(e.do("GET", "/v2/token?"+q.Encode(), nil, "@user", user), http.StatusOK)
	var tok struct{ Token string }
	if err := json.Unmarshal(r.body, &tok); err != nil {
		e.t.Fatal(err)
	}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		e.t.Fatalf("token %q is not a JWT", tok.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		e.t.Fatal(err)
	}
	var claims struct {
		Access []struct {
			Name    string
			Actions []string
		}
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		e.t.Fatal(err)
	}
	access := map[string][]string{}
	for _, a := range claims.Access {
		access[a.Name] = a.Actions
	}
	return tok.Token, access
}

func TestGroupTokenScope(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t)
	e.user("dev", map[string][]string{"registry": {"read"}, "ro": {"read"}, "containers": {"read", "write", "delete"}, "other": {"read"}})
	e.user("reader", map[string][]string{"registry": {"read"}, "containers": {"read"}})
	e.user("stranger", map[string][]string{"other": {"read", "write"}})

	_, access := e.registryToken("dev", "repository:registry/app:pull,push,delete")
	if got := access["registry/app"]; !slices.Equal(got, []string{"pull", "push", "delete"}) {
		t.Errorf("dev on the group: %v", got)
	}
	// The token names the group only: the edge reads its scope for the
	// group while it walks the members.
	if len(access) != 1 {
		t.Errorf("dev's accesses: %v", access)
	}
	_, access = e.registryToken("reader", "repository:registry/app:pull,push")
	if got := access["registry/app"]; !slices.Equal(got, []string{"pull"}) {
		t.Errorf("reader on the group: %v", got)
	}
	if _, ok := access["other/app"]; ok {
		t.Errorf("reader got a member it may not read: %v", access)
	}
	// Write on a member that is not the write member grants nothing.
	_, access = e.registryToken("stranger", "repository:registry/app:pull,push")
	if got, ok := access["registry/app"]; ok {
		t.Errorf("stranger on the group: %v", got)
	}
	// A group without a write member takes no push.
	_, access = e.registryToken("dev", "repository:ro/app:*")
	if got := access["ro/app"]; !slices.Equal(got, []string{"pull"}) {
		t.Errorf("dev on the read-only group: %v", got)
	}
	// Scopes of other repositories are issued as before.
	_, access = e.registryToken("dev", "repository:registry/app:pull", "repository:containers/base:push", "repository:other/x:push")
	if got := access["containers/base"]; !slices.Equal(got, []string{"push"}) {
		t.Errorf("dev on containers: %v", got)
	}
	if got, ok := access["other/x"]; ok {
		t.Errorf("dev got push on other: %v", got)
	}
}

func TestGroupPushWithTokenLandsInWriteMember(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t)
	e.user("dev", map[string][]string{"registry": {"read"}, "containers": {"read", "write", "delete"}, "other": {"read"}})
	token, _ := e.registryToken("dev", "repository:registry/app:pull,push,delete")
	bearer := []string{"@anonymous", "", "Authorization", "Bearer " + token}
	with := func(headers ...string) []string { return append(slices.Clone(bearer), headers...) }

	// A chunked upload: the session's Location names the group, and the
	// follow-ups with the same token reach the write member's session.
	layer := randBytes(3000)
	r := e.must(e.do("POST", "registry/app/blobs/uploads/", nil, bearer...), http.StatusAccepted)
	loc := r.location(t)
	if !strings.HasPrefix(loc, "/v2/registry/app/blobs/uploads/") {
		t.Fatalf("upload Location = %q, want it under the group", loc)
	}
	r = e.must(e.do("PATCH", loc, layer[:1000], with("Content-Range", "0-999", "Content-Type", "application/octet-stream")...), http.StatusAccepted)
	loc = r.location(t)
	e.must(e.do("GET", loc, nil, bearer...), http.StatusNoContent)
	r = e.must(e.do("PUT", loc+"?digest="+url.QueryEscape(sha(layer)), layer[1000:], with("Content-Type", "application/octet-stream")...), http.StatusCreated)
	if got := r.location(t); got != "/v2/registry/app/blobs/"+sha(layer) {
		t.Errorf("blob Location = %q", got)
	}
	config := []byte(`{"os":"linux"}`)
	e.must(e.do("POST", "registry/app/blobs/uploads/?digest="+sha(config), config, bearer...), http.StatusCreated)
	m := imageManifest(config, layer)
	r = e.must(e.do("PUT", "registry/app/manifests/1.0", m.body, with("Content-Type", m.mediaType)...), http.StatusCreated)
	if got := r.location(t); got != "/v2/registry/app/manifests/"+m.digest() {
		t.Errorf("manifest Location = %q", got)
	}

	// It landed in the write member only, and reads back through the group.
	e.must(e.do("GET", "containers/app/manifests/1.0", nil, "Accept", m.mediaType), http.StatusOK)
	e.must(e.do("GET", "containers/app/blobs/"+sha(layer), nil), http.StatusOK)
	e.must(e.do("GET", "other/app/manifests/1.0", nil), http.StatusNotFound)
	r = e.must(e.do("GET", "registry/app/manifests/1.0", nil, with("Accept", m.mediaType)...), http.StatusOK)
	if r.Header.Get("Docker-Content-Digest") != m.digest() {
		t.Errorf("pull through the group: %s", r.Header.Get("Docker-Content-Digest"))
	}
	if got, _ := e.tagList("registry/app/tags/list", bearer...); !slices.Equal(got, []string{"1.0"}) {
		t.Errorf("tags through the group with the token = %v", got)
	}

	// A mount from an image of the group: the member holding the blob
	// lends it, read as through the group, to the write member.
	base := e.pushBlob("other/base", randBytes(64))
	both, _ := e.registryToken("dev", "repository:registry/copy:pull,push", "repository:registry/base:pull", "repository:registry/app:pull")
	for _, mnt := range []struct{ digest, from string }{{base, "registry/base"}, {sha(layer), "registry/app"}} {
		r = e.must(e.do("POST", "registry/copy/blobs/uploads/?mount="+mnt.digest+"&from="+mnt.from, nil,
			"@anonymous", "", "Authorization", "Bearer "+both), http.StatusCreated)
		if got := r.location(t); got != "/v2/registry/copy/blobs/"+mnt.digest {
			t.Errorf("mount Location = %q", got)
		}
		e.must(e.do("HEAD", "containers/copy/blobs/"+mnt.digest, nil), http.StatusOK)
	}

	// Deletion through the group, with the token's delete.
	e.must(e.do("DELETE", "registry/app/manifests/"+m.digest(), nil, bearer...), http.StatusAccepted)
	e.must(e.do("GET", "containers/app/manifests/"+m.digest(), nil), http.StatusNotFound)

	// A token without push is refused, with a challenge for the group.
	pull, _ := e.registryToken("dev", "repository:registry/app:pull")
	r = e.must(e.do("POST", "registry/app/blobs/uploads/", nil, "@anonymous", "", "Authorization", "Bearer "+pull), http.StatusUnauthorized)
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="repository:registry/app:pull,push"`) {
		t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
	// A user without write on the write member is denied.
	e.user("reader", map[string][]string{"registry": {"read", "write"}, "containers": {"read"}})
	e.must(e.do("POST", "registry/app/blobs/uploads/", nil, "@user", "reader"), http.StatusForbidden)
}

func TestGroupWithoutWriteMember(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t)
	config := []byte(`{"os":"linux"}`)
	for _, req := range []struct{ method, path string }{
		{"POST", "ro/app/blobs/uploads/"},
		{"POST", "ro/app/blobs/uploads/?digest=" + sha(config)},
		{"PUT", "ro/app/manifests/1.0"},
		{"DELETE", "ro/app/manifests/1.0"},
		{"DELETE", "ro/app/blobs/" + sha(config)},
	} {
		r := e.must(e.do(req.method, req.path, config), http.StatusMethodNotAllowed)
		if code := r.code(t); code != "UNSUPPORTED" {
			t.Errorf("%s %s: code %s", req.method, req.path, code)
		}
	}
	// Nothing reached a member.
	e.must(e.do("GET", "containers/app/blobs/"+sha(config), nil), http.StatusNotFound)
}

func TestGroupCatalog(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t)
	for _, name := range []string{"containers/app", "containers/b", "other/app", "other/c"} {
		e.pushImage(name, "1", randBytes(5))
	}
	catalog := func(query string, who ...string) ([]string, string) {
		r := e.must(e.do("GET", "/v2/_catalog"+query, nil, who...), http.StatusOK)
		var doc struct{ Repositories []string }
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Repositories, r.Header.Get("Link")
	}
	all := []string{"containers/app", "containers/b", "other/app", "other/c",
		"registry/app", "registry/b", "registry/c", "ro/app", "ro/b", "ro/c"}
	if got, _ := catalog(""); !slices.Equal(got, all) {
		t.Errorf("admin's catalog = %v, want %v", got, all)
	}
	var paged []string
	query := "?n=3"
	for i := 0; query != "" && i < 10; i++ {
		page, link := catalog(query)
		paged = append(paged, page...)
		query = ""
		if link != "" {
			query = link[strings.Index(link, "?"):strings.Index(link, ">")]
		}
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged catalog = %v", paged)
	}
	// The group lists only the members its caller may read.
	e.user("partial", map[string][]string{"registry": {"read"}, "other": {"read"}})
	if got, _ := catalog("", "@user", "partial"); !slices.Equal(got, []string{"other/app", "other/c", "registry/app", "registry/c"}) {
		t.Errorf("partial's catalog = %v", got)
	}
}

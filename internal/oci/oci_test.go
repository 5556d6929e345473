package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/oci"
	"arca/internal/repo"
)

const (
	containersRepo = `{"name":"containers","format":"oci","type":"hosted"}`
	otherRepo      = `{"name":"other","format":"oci","type":"hosted"}`
)

func TestPing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	r := e.do("GET", "/v2/", nil, "@anonymous", "")
	e.must(r, http.StatusUnauthorized)
	host := strings.TrimPrefix(e.ts.URL, "http://")
	want := `Bearer realm="` + e.ts.URL + `/v2/token",service="` + host + `"`
	if got := r.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	if got := r.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
		t.Errorf("Docker-Distribution-API-Version = %q on a 401", got)
	}
	if code := r.code(t); code != "UNAUTHORIZED" {
		t.Errorf("code = %s", code)
	}
	r = e.must(e.do("GET", "/v2/", nil), http.StatusOK)
	if string(r.body) != "{}" || r.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("GET /v2/ = %q, headers %v", r.body, r.Header)
	}
}

func TestChallengeScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	for _, tt := range []struct{ method, path, scope string }{
		{"GET", "containers/team/app/manifests/1.0", "repository:containers/team/app:pull"},
		{"HEAD", "containers/team/app/blobs/sha256:" + strings.Repeat("a", 64), "repository:containers/team/app:pull"},
		{"POST", "containers/team/app/blobs/uploads/", "repository:containers/team/app:pull,push"},
		{"DELETE", "containers/team/app/manifests/1.0", "repository:containers/team/app:delete"},
	} {
		r := e.must(e.do(tt.method, tt.path, nil, "@anonymous", ""), http.StatusUnauthorized)
		got := r.Header.Get("WWW-Authenticate")
		if tt.scope != "" && !strings.HasSuffix(got, `,scope="`+tt.scope+`"`) {
			t.Errorf("%s %s: WWW-Authenticate = %q, want scope %s", tt.method, tt.path, got, tt.scope)
		}
		if !strings.HasPrefix(got, `Bearer realm="`+e.ts.URL+`/v2/token"`) {
			t.Errorf("%s %s: WWW-Authenticate = %q", tt.method, tt.path, got)
		}
	}
}

func TestMonolithicPushAndPull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	data := randBytes(5000)
	d := sha(data)

	// POST with the digest and the body: one request.
	r := e.must(e.do("POST", "containers/team/app/blobs/uploads/?digest="+d, data), http.StatusCreated)
	if got := r.location(t); got != "/v2/containers/team/app/blobs/"+d {
		t.Errorf("Location = %q", got)
	}
	if !strings.HasPrefix(r.Header.Get("Location"), e.ts.URL) {
		t.Errorf("Location %q is not absolute", r.Header.Get("Location"))
	}

	r = e.must(e.do("GET", "containers/team/app/blobs/"+d, nil), http.StatusOK)
	if !bytes.Equal(r.body, data) || r.Header.Get("Docker-Content-Digest") != d ||
		r.Header.Get("Content-Length") != "5000" {
		t.Errorf("GET blob: %d bytes, headers %v", len(r.body), r.Header)
	}
	r = e.must(e.do("HEAD", "containers/team/app/blobs/"+d, nil), http.StatusOK)
	if len(r.body) != 0 || r.Header.Get("Content-Length") != "5000" || r.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("HEAD blob: %d bytes, headers %v", len(r.body), r.Header)
	}
	r = e.must(e.do("GET", "containers/team/app/blobs/"+d, nil, "Range", "bytes=100-199"), http.StatusPartialContent)
	if !bytes.Equal(r.body, data[100:200]) || r.Header.Get("Content-Range") != "bytes 100-199/5000" {
		t.Errorf("range: %d bytes, Content-Range %q", len(r.body), r.Header.Get("Content-Range"))
	}
	e.must(e.do("GET", "containers/team/app/blobs/"+d, nil, "Range", "bytes=6000-7000"), http.StatusRequestedRangeNotSatisfiable)

	// A blob is visible only in the image it was pushed to.
	r = e.must(e.do("GET", "containers/team/other/blobs/"+d, nil), http.StatusNotFound)
	if code := r.code(t); code != "BLOB_UNKNOWN" {
		t.Errorf("blob of another image: code %s", code)
	}

	// POST then PUT with the body.
	data2 := randBytes(3000)
	r = e.must(e.do("POST", "containers/team/app/blobs/uploads/", nil), http.StatusAccepted)
	if r.Header.Get("Range") != "0-0" || r.Header.Get("Docker-Upload-UUID") == "" {
		t.Errorf("POST: headers %v", r.Header)
	}
	r = e.must(e.do("PUT", r.location(t)+"?digest="+sha(data2), data2, "Content-Type", "application/octet-stream"), http.StatusCreated)
	if r.Header.Get("Docker-Content-Digest") != sha(data2) {
		t.Errorf("PUT: Docker-Content-Digest %q", r.Header.Get("Docker-Content-Digest"))
	}
	r = e.must(e.do("GET", r.location(t), nil), http.StatusOK)
	if !bytes.Equal(r.body, data2) {
		t.Errorf("pulled %d bytes, want the pushed %d", len(r.body), len(data2))
	}
}

func TestChunkedPushResumesAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	data := randBytes(3 * 1024)
	r := e.must(e.do("POST", "containers/app/blobs/uploads/", nil, "Content-Length", "0"), http.StatusAccepted)
	loc := r.location(t)
	id := r.Header.Get("Docker-Upload-UUID")
	if !strings.HasSuffix(loc, "/blobs/uploads/"+id) {
		t.Fatalf("Location %q does not carry the upload id %q", loc, id)
	}
	r = e.must(e.do("PATCH", loc, data[:1024], "Content-Range", "0-1023", "Content-Type", "application/octet-stream"), http.StatusAccepted)
	if r.Header.Get("Range") != "0-1023" {
		t.Errorf("PATCH Range = %q", r.Header.Get("Range"))
	}
	loc = r.location(t)

	e.restart()

	r = e.must(e.do("GET", loc, nil), http.StatusNoContent)
	if r.Header.Get("Range") != "0-1023" || r.Header.Get("Docker-Upload-UUID") != id {
		t.Errorf("upload status after restart: Range %q, id %q", r.Header.Get("Range"), r.Header.Get("Docker-Upload-UUID"))
	}
	// A streamed chunk without Content-Range goes at the end.
	r = e.must(e.do("PATCH", loc, data[1024:2048]), http.StatusAccepted)
	if r.Header.Get("Range") != "0-2047" {
		t.Errorf("PATCH Range = %q", r.Header.Get("Range"))
	}
	// The last chunk comes with the closing PUT.
	r = e.must(e.do("PUT", r.location(t)+"?digest="+sha(data), data[2048:], "Content-Range", "2048-3071"), http.StatusCreated)
	r = e.must(e.do("GET", r.location(t), nil), http.StatusOK)
	if !bytes.Equal(r.body, data) {
		t.Error("the resumed upload's bytes differ")
	}
	// The session is gone.
	r = e.must(e.do("GET", loc, nil), http.StatusNotFound)
	if code := r.code(t); code != "BLOB_UPLOAD_UNKNOWN" {
		t.Errorf("finished session: code %s", code)
	}
}

func TestBadRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	data := randBytes(2048)
	loc := e.must(e.do("POST", "containers/app/blobs/uploads/", nil), http.StatusAccepted).location(t)
	loc = e.must(e.do("PATCH", loc, data[:1024], "Content-Range", "0-1023"), http.StatusAccepted).location(t)

	for _, cr := range []string{"512-1535", "1025-2047", "0-1023", "oops"} {
		r := e.must(e.do("PATCH", loc, data[1024:], "Content-Range", cr), http.StatusRequestedRangeNotSatisfiable)
		if code := r.code(t); code != "BLOB_UPLOAD_INVALID" {
			t.Errorf("Content-Range %s: code %s", cr, code)
		}
		if r.Header.Get("Range") != "0-1023" || r.Header.Get("Location") == "" {
			t.Errorf("Content-Range %s: 416 without the session's Range and Location: %v", cr, r.Header)
		}
	}
	// Out of order in the closing PUT too.
	e.must(e.do("PUT", loc+"?digest="+sha(data), data[1024:], "Content-Range", "1000-2023"), http.StatusRequestedRangeNotSatisfiable)
	// The session is intact and finishes.
	r := e.must(e.do("GET", loc, nil), http.StatusNoContent)
	if r.Header.Get("Range") != "0-1023" {
		t.Errorf("Range after refused chunks = %q", r.Header.Get("Range"))
	}
	e.must(e.do("PATCH", loc, data[1024:], "Content-Range", "1024-2047"), http.StatusAccepted)
	e.must(e.do("PUT", loc+"?digest="+sha(data), nil), http.StatusCreated)
}

func TestDigestMismatchStoresNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	data := randBytes(1000)
	wrong := sha(randBytes(10))
	wrongHex := strings.TrimPrefix(wrong, "sha256:")

	// Monolithic.
	r := e.must(e.do("POST", "containers/app/blobs/uploads/?digest="+wrong, data), http.StatusBadRequest)
	if code := r.code(t); code != "DIGEST_INVALID" {
		t.Errorf("POST: code %s", code)
	}
	// Session.
	loc := e.must(e.do("POST", "containers/app/blobs/uploads/", nil), http.StatusAccepted).location(t)
	e.must(e.do("PATCH", loc, data), http.StatusAccepted)
	r = e.must(e.do("PUT", loc+"?digest="+wrong, nil), http.StatusBadRequest)
	if code := r.code(t); code != "DIGEST_INVALID" {
		t.Errorf("PUT: code %s", code)
	}
	e.must(e.do("GET", loc, nil), http.StatusNotFound)
	e.must(e.do("HEAD", "containers/app/blobs/"+sha(data), nil), http.StatusNotFound)
	if n := e.blobFiles(strings.TrimPrefix(sha(data), "sha256:")) + e.blobFiles(wrongHex); n != 0 {
		t.Errorf("%d blob files stored after digest mismatches", n)
	}
	// Malformed and unsupported digests.
	for _, d := range []string{"sha256:abc", "sha256:" + strings.ToUpper(wrongHex), "md5:0123", "nodigest"} {
		r := e.must(e.do("POST", "containers/app/blobs/uploads/?digest="+d, data), http.StatusBadRequest)
		if code := r.code(t); code != "DIGEST_INVALID" {
			t.Errorf("digest %s: code %s", d, code)
		}
	}
	loc = e.must(e.do("POST", "containers/app/blobs/uploads/", nil), http.StatusAccepted).location(t)
	if code := e.must(e.do("PUT", loc, data), http.StatusBadRequest).code(t); code != "DIGEST_INVALID" {
		t.Errorf("PUT without digest: code %s", code)
	}
}

func TestSHA512(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	data := randBytes(4000)
	d := sha512Of(data)
	r := e.must(e.do("POST", "containers/app/blobs/uploads/?digest="+d, data), http.StatusCreated)
	if r.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("Docker-Content-Digest = %q", r.Header.Get("Docker-Content-Digest"))
	}
	r = e.must(e.do("GET", "containers/app/blobs/"+d, nil), http.StatusOK)
	if !bytes.Equal(r.body, data) || r.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("GET by sha512: %d bytes, digest %q", len(r.body), r.Header.Get("Docker-Content-Digest"))
	}
	// Chunked, committed under sha512.
	data2 := randBytes(2000)
	loc := e.must(e.do("POST", "containers/app/blobs/uploads/", nil), http.StatusAccepted).location(t)
	loc = e.must(e.do("PATCH", loc, data2[:1000], "Content-Range", "0-999"), http.StatusAccepted).location(t)
	e.must(e.do("PUT", loc+"?digest="+sha512Of(data2), data2[1000:], "Content-Range", "1000-1999"), http.StatusCreated)
	e.must(e.do("HEAD", "containers/app/blobs/"+sha512Of(data2), nil), http.StatusOK)
	e.must(e.do("HEAD", "containers/app/blobs/"+sha(data2), nil), http.StatusOK)

	// A manifest referencing sha512 blobs, pushed by its sha512 digest.
	doc := map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d, "size": len(data)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha512Of(data2), "size": len(data2)}},
	}
	m := encode(doc, "application/vnd.oci.image.manifest.v1+json")
	md := sha512Of(m.body)
	r = e.pushManifest("containers/app", md, m)
	if r.Header.Get("Docker-Content-Digest") != md || r.location(t) != "/v2/containers/app/manifests/"+md {
		t.Errorf("PUT manifest by sha512: digest %q, Location %q", r.Header.Get("Docker-Content-Digest"), r.Header.Get("Location"))
	}
	r = e.must(e.do("GET", "containers/app/manifests/"+md, nil), http.StatusOK)
	if !bytes.Equal(r.body, m.body) || r.Header.Get("Docker-Content-Digest") != md {
		t.Errorf("GET manifest by sha512: digest %q", r.Header.Get("Docker-Content-Digest"))
	}
	// Pushing it under the wrong sha512 is refused.
	if code := e.must(e.do("PUT", "containers/app/manifests/"+sha512Of(data), m.body, "Content-Type", m.mediaType), http.StatusBadRequest).code(t); code != "DIGEST_INVALID" {
		t.Errorf("wrong sha512 manifest digest: code %s", code)
	}
}

func TestMount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo, otherRepo, `{"name":"secret","format":"oci","type":"hosted"}`)
	e.user("dev", map[string][]string{"containers": {"read", "write"}, "other": {"read"}})
	layer := randBytes(2000)
	d := e.pushBlob("other/base", layer)
	hidden := e.pushBlob("secret/x", randBytes(100))
	same := e.pushBlob("containers/lib", randBytes(300))

	mount := func(image, query string) response {
		return e.do("POST", "containers/"+image+"/blobs/uploads/?"+query, nil, "@user", "dev")
	}
	// From another arca repository the user may read.
	r := e.must(mount("app", "mount="+d+"&from=other/base"), http.StatusCreated)
	if r.location(t) != "/v2/containers/app/blobs/"+d || r.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("mount: Location %q, digest %q", r.Header.Get("Location"), r.Header.Get("Docker-Content-Digest"))
	}
	if r := e.must(e.do("GET", "containers/app/blobs/"+d, nil, "@user", "dev"), http.StatusOK); !bytes.Equal(r.body, layer) {
		t.Error("mounted blob differs")
	}
	// From an image of the same repository, named without the repository.
	e.must(mount("app2", "mount="+same+"&from=lib"), http.StatusCreated)
	// And as "<repository>/<image>".
	e.must(mount("app3", "mount="+same+"&from=containers/lib"), http.StatusCreated)
	// Without from: any image the user may read that holds it.
	e.must(mount("app4", "mount="+d), http.StatusCreated)
	// From where the user may not read, or where the blob is not: a session.
	for _, q := range []string{"mount=" + hidden + "&from=secret/x", "mount=" + hidden, "mount=" + d + "&from=other/nothing"} {
		r := e.must(mount("app5", q), http.StatusAccepted)
		if !strings.Contains(r.location(t), "/blobs/uploads/") {
			t.Errorf("%s: fallback Location %q", q, r.Header.Get("Location"))
		}
	}
	e.must(e.do("HEAD", "containers/app5/blobs/"+hidden, nil), http.StatusNotFound)

	// A registry token that does not cover the source: a 401 whose
	// challenge adds the source's scope, then the mount with a token for
	// both.
	token := func(scopes ...string) string {
		q := url.Values{"scope": scopes}
		r := e.must(e.do("GET", "/v2/token?"+q.Encode(), nil, "@user", "dev"), http.StatusOK)
		var doc struct{ Token string }
		if err := json.Unmarshal(r.body, &doc); err != nil || doc.Token == "" {
			t.Fatalf("token: %s", r.body)
		}
		return "Bearer " + doc.Token
	}
	narrow := token("repository:containers/app6:pull,push")
	r = e.must(e.do("POST", "containers/app6/blobs/uploads/?mount="+d+"&from=other/base", nil,
		"@anonymous", "", "Authorization", narrow), http.StatusUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); !strings.HasSuffix(got,
		`scope="repository:containers/app6:pull,push repository:other/base:pull"`) {
		t.Errorf("challenge for the mount's source = %q", got)
	}
	if r.Header.Get("X-Arca-Oci-Extra-Scope") != "" {
		t.Error("the internal scope note leaked")
	}
	wide := token("repository:containers/app6:pull,push", "repository:other/base:pull")
	e.must(e.do("POST", "containers/app6/blobs/uploads/?mount="+d+"&from=other/base", nil,
		"@anonymous", "", "Authorization", wide), http.StatusCreated)
	// Without from, the first holder the token misses is asked for.
	only := e.pushBlob("other/base", randBytes(50))
	r = e.must(e.do("POST", "containers/app7/blobs/uploads/?mount="+only, nil,
		"@anonymous", "", "Authorization", token("repository:containers/app7:pull,push")), http.StatusUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, "repository:other/base:pull") {
		t.Errorf("challenge for an anonymous mount = %q", got)
	}
	if n := e.blobFiles(strings.TrimPrefix(d, "sha256:")); n != 1 {
		t.Errorf("%d files for the mounted blob, want 1", n)
	}
}

func TestManifestPushPullAndValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	layer := randBytes(1000)
	m := e.pushImage("containers/app", "1.0", layer)

	for _, ref := range []string{"1.0", m.digest()} {
		r := e.must(e.do("GET", "containers/app/manifests/"+ref, nil, "Accept", m.mediaType), http.StatusOK)
		if !bytes.Equal(r.body, m.body) || r.Header.Get("Content-Type") != m.mediaType ||
			r.Header.Get("Docker-Content-Digest") != m.digest() || r.Header.Get("Content-Length") != strconv.Itoa(len(m.body)) {
			t.Errorf("GET %s: headers %v", ref, r.Header)
		}
		r = e.must(e.do("HEAD", "containers/app/manifests/"+ref, nil), http.StatusOK)
		if len(r.body) != 0 || r.Header.Get("Content-Length") != strconv.Itoa(len(m.body)) {
			t.Errorf("HEAD %s: headers %v", ref, r.Header)
		}
	}
	// Content negotiation: a client that does not accept the type.
	r := e.must(e.do("GET", "containers/app/manifests/1.0", nil, "Accept", "application/vnd.docker.distribution.manifest.v2+json"), http.StatusNotFound)
	if code := r.code(t); code != "MANIFEST_UNKNOWN" {
		t.Errorf("unaccepted type: code %s", code)
	}
	e.must(e.do("GET", "containers/app/manifests/1.0", nil, "Accept", "application/vnd.docker.distribution.manifest.v2+json, */*"), http.StatusOK)

	config := []byte(`{"os":"linux"}`)
	e.pushBlob("containers/app", config)
	missing := randBytes(10)
	bad := func(body []byte, contentType, ref string, status int, code string) {
		t.Helper()
		if ref == "" {
			ref = "bad"
		}
		r := e.must(e.do("PUT", "containers/app/manifests/"+ref, body, "Content-Type", contentType), status)
		if got := r.code(t); got != code {
			t.Errorf("%.60s: code %s, want %s (%s)", body, got, code, r.body)
		}
	}
	ociType := "application/vnd.oci.image.manifest.v1+json"
	bad([]byte("{not json"), ociType, "", 400, "MANIFEST_INVALID")
	bad(imageManifest(config, missing).body, ociType, "", 400, "MANIFEST_BLOB_UNKNOWN")
	bad(imageManifest(randBytes(5)).body, ociType, "", 400, "MANIFEST_BLOB_UNKNOWN")
	bad(imageManifest(config).body, "application/vnd.oci.image.index.v1+json", "", 400, "MANIFEST_INVALID")
	bad([]byte(`{"schemaVersion":1,"mediaType":"`+ociType+`","config":{}}`), ociType, "", 400, "MANIFEST_INVALID")
	bad([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}`), "", "", 400, "MANIFEST_INVALID")
	bad(index(manifest{body: randBytes(10), mediaType: ociType}).body, "application/vnd.oci.image.index.v1+json", "", 400, "MANIFEST_BLOB_UNKNOWN")
	bad(imageManifest(config).body, ociType, "bad:tag", 400, "DIGEST_INVALID")
	bad(imageManifest(config).body, ociType, "sha256:baddigeststring", 400, "DIGEST_INVALID")
	bad(imageManifest(config).body, ociType, sha(randBytes(3)), 400, "DIGEST_INVALID")
	bad(imageManifest(config).body, ociType, strings.Repeat("x", 129), 400, "MANIFEST_INVALID")
	huge := []byte(`{"schemaVersion":2,"annotations":{"a":"` + strings.Repeat("A", 4<<20) + `"}}`)
	bad(huge, ociType, "", 413, "SIZE_INVALID")

	// Up to 4 MiB is taken.
	big := map[string]any{"schemaVersion": 2, "mediaType": ociType,
		"config": desc("application/vnd.oci.image.config.v1+json", config), "layers": []any{},
		"annotations": map[string]string{"a": strings.Repeat("A", 4<<20-500)}}
	e.pushManifest("containers/app", "big", encode(big, ociType))

	// Non-distributable layers may be absent.
	nd := map[string]any{"schemaVersion": 2, "mediaType": ociType,
		"config": desc("application/vnd.oci.image.config.v1+json", config),
		"layers": []any{
			descriptor{MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Digest: sha(randBytes(4)), Size: 4},
			descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: sha(randBytes(4)), Size: 4, URLs: []string{"https://example.com/x"}},
			desc("application/vnd.oci.image.layer.v1.tar+gzip", layer),
		}}
	e.pushManifest("containers/app", "nd", encode(nd, ociType))

	// Docker schema 2, with its own types; no mediaType in the body means
	// the Content-Type decides.
	dm := map[string]any{"schemaVersion": 2,
		"config": desc("application/vnd.docker.container.image.v1+json", config),
		"layers": []any{desc("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)}}
	dmm := encode(dm, "application/vnd.docker.distribution.manifest.v2+json")
	e.pushManifest("containers/app", "docker", dmm)
	r = e.must(e.do("GET", "containers/app/manifests/docker", nil), http.StatusOK)
	if r.Header.Get("Content-Type") != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("docker manifest served as %q", r.Header.Get("Content-Type"))
	}
	list := encode(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
		"manifests": []any{desc(dmm.mediaType, dmm.body)}}, "application/vnd.docker.distribution.manifest.list.v2+json")
	e.pushManifest("containers/app", "list", list)

	// An index of manifests of the image, and an empty one.
	arm := e.pushImage("containers/app", "arm", randBytes(100))
	idx := index(m, arm)
	r = e.pushManifest("containers/app", "multi", idx)
	if r.Header.Get("Docker-Content-Digest") != idx.digest() {
		t.Errorf("index digest %q, want %q", r.Header.Get("Docker-Content-Digest"), idx.digest())
	}
	e.pushManifest("containers/app", index().digest(), index())

	// Unknown manifests.
	for _, ref := range []string{"nope", sha(randBytes(5))} {
		if code := e.must(e.do("GET", "containers/app/manifests/"+ref, nil), http.StatusNotFound).code(t); code != "MANIFEST_UNKNOWN" {
			t.Errorf("unknown %s: code %s", ref, code)
		}
	}
	// Bad names.
	if code := e.must(e.do("GET", "containers/Bad/manifests/1.0", nil), http.StatusBadRequest).code(t); code != "NAME_INVALID" {
		t.Errorf("bad name: code %s", code)
	}
}

func TestTagsPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	m := e.pushImage("containers/app", "v1", randBytes(10))
	tags := []string{"v1"}
	for _, tag := range []string{"b", "a", "latest", "v2", "A", "0.1"} {
		e.pushManifest("containers/app", tag, m)
		tags = append(tags, tag)
	}
	slices.Sort(tags)

	list := func(query string) ([]string, string) {
		r := e.must(e.do("GET", "containers/app/tags/list"+query, nil), http.StatusOK)
		var doc struct {
			Name string
			Tags []string
		}
		if err := json.Unmarshal(r.body, &doc); err != nil || doc.Name != "containers/app" {
			t.Fatalf("tags list %q: %v", r.body, err)
		}
		return doc.Tags, r.Header.Get("Link")
	}
	all, link := list("")
	if !slices.Equal(all, tags) || link != "" {
		t.Errorf("all tags = %v, Link %q; want %v", all, link, tags)
	}
	var paged []string
	query := "?n=3"
	for i := 0; query != "" && i < 10; i++ {
		page, link := list(query)
		if len(page) > 3 {
			t.Fatalf("page of %d tags", len(page))
		}
		paged = append(paged, page...)
		query = ""
		if link != "" {
			if !strings.HasPrefix(link, "</v2/containers/app/tags/list?") || !strings.HasSuffix(link, `>; rel="next"`) {
				t.Fatalf("Link = %q", link)
			}
			query = link[strings.Index(link, "?"):strings.Index(link, ">")]
		}
	}
	if !slices.Equal(paged, tags) {
		t.Errorf("paged tags = %v, want %v", paged, tags)
	}
	if got, _ := list("?last=b"); !slices.Equal(got, []string{"latest", "v1", "v2"}) {
		t.Errorf("tags after b = %v", got)
	}
	if got, _ := list("?n=0"); len(got) != 0 {
		t.Errorf("n=0 gave %v", got)
	}
	if code := e.must(e.do("GET", "containers/app/tags/list?n=x", nil), http.StatusBadRequest).code(t); code == "" {
		t.Error("bad n accepted")
	}
	if code := e.must(e.do("GET", "containers/nothing/tags/list", nil), http.StatusNotFound).code(t); code != "NAME_UNKNOWN" {
		t.Errorf("unknown image: code %s", code)
	}
}

func TestReferrers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	subject := e.pushImage("containers/app", "1.0", randBytes(50))
	empty := []byte("{}")
	e.pushBlob("containers/app", empty)
	var sigs []manifest
	for i, at := range []string{"application/vnd.example.sig", "application/vnd.example.sbom", "application/vnd.example.sig"} {
		layer := randBytes(20)
		e.pushBlob("containers/app", layer)
		a := artifact(at, subject, empty, layer, map[string]string{"n": strconv.Itoa(i)})
		r := e.pushManifest("containers/app", a.digest(), a)
		if r.Header.Get("OCI-Subject") != subject.digest() {
			t.Errorf("OCI-Subject = %q, want %q", r.Header.Get("OCI-Subject"), subject.digest())
		}
		sigs = append(sigs, a)
	}
	// A referrer whose subject does not exist is accepted.
	ghost := manifest{body: []byte("ghost"), mediaType: "application/vnd.oci.image.manifest.v1+json"}
	layer := randBytes(20)
	e.pushBlob("containers/app", layer)
	e.pushManifest("containers/app", "orphan", artifact("application/vnd.example.sig", ghost, empty, layer, nil))

	type index struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []descriptor
	}
	get := func(query string) (index, http.Header) {
		r := e.must(e.do("GET", "containers/app/referrers/"+subject.digest()+query, nil), http.StatusOK)
		var idx index
		if err := json.Unmarshal(r.body, &idx); err != nil {
			t.Fatal(err)
		}
		if r.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" || idx.SchemaVersion != 2 ||
			idx.MediaType != "application/vnd.oci.image.index.v1+json" {
			t.Errorf("referrers: Content-Type %q, %+v", r.Header.Get("Content-Type"), idx)
		}
		return idx, r.Header
	}
	idx, h := get("")
	if len(idx.Manifests) != 3 || h.Get("OCI-Filters-Applied") != "" {
		t.Fatalf("referrers = %+v, filters %q", idx.Manifests, h.Get("OCI-Filters-Applied"))
	}
	for i, d := range idx.Manifests {
		if d.Digest != sigs[i].digest() || d.Size != int64(len(sigs[i].body)) || d.MediaType != sigs[i].mediaType ||
			d.Annotations["n"] != strconv.Itoa(i) || d.ArtifactType == "" {
			t.Errorf("referrer %d = %+v", i, d)
		}
	}
	idx, h = get("?artifactType=application/vnd.example.sig")
	if len(idx.Manifests) != 2 || h.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered referrers = %+v, filters %q", idx.Manifests, h.Get("OCI-Filters-Applied"))
	}
	for _, d := range idx.Manifests {
		if d.ArtifactType != "application/vnd.example.sig" {
			t.Errorf("filter let %+v through", d)
		}
	}
	// The orphan is found by its subject's digest; an unknown subject has
	// none, with a 200.
	r := e.must(e.do("GET", "containers/app/referrers/"+ghost.digest(), nil), http.StatusOK)
	if !bytes.Contains(r.body, []byte("vnd.example.sig")) {
		t.Errorf("referrers of a missing subject: %s", r.body)
	}
	r = e.must(e.do("GET", "containers/nothing/referrers/"+sha(randBytes(5)), nil), http.StatusOK)
	if !bytes.Contains(r.body, []byte(`"manifests":[]`)) {
		t.Errorf("no referrers: %s", r.body)
	}
	if code := e.must(e.do("GET", "containers/app/referrers/sha256:zz", nil), http.StatusBadRequest).code(t); code != "DIGEST_INVALID" {
		t.Errorf("bad subject digest: code %s", code)
	}
}

func TestDeleteSemantics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	layer := randBytes(100)
	m := e.pushImage("containers/app", "1.0", layer)
	e.pushManifest("containers/app", "latest", m)

	// Deleting a tag deletes only the tag.
	e.must(e.do("DELETE", "containers/app/manifests/latest", nil), http.StatusAccepted)
	e.must(e.do("GET", "containers/app/manifests/latest", nil), http.StatusNotFound)
	e.must(e.do("GET", "containers/app/manifests/"+m.digest(), nil), http.StatusOK)
	e.must(e.do("GET", "containers/app/manifests/1.0", nil), http.StatusOK)
	if code := e.must(e.do("DELETE", "containers/app/manifests/latest", nil), http.StatusNotFound).code(t); code != "MANIFEST_UNKNOWN" {
		t.Errorf("deleting a deleted tag: code %s", code)
	}
	// Deleting by digest removes the tags pointing to it.
	e.must(e.do("DELETE", "containers/app/manifests/"+m.digest(), nil), http.StatusAccepted)
	e.must(e.do("HEAD", "containers/app/manifests/"+m.digest(), nil), http.StatusNotFound)
	e.must(e.do("HEAD", "containers/app/manifests/1.0", nil), http.StatusNotFound)
	if code := e.must(e.do("DELETE", "containers/app/manifests/"+m.digest(), nil), http.StatusNotFound).code(t); code != "MANIFEST_UNKNOWN" {
		t.Errorf("deleting a deleted manifest: code %s", code)
	}
	// Blobs: the link goes at once.
	e.must(e.do("DELETE", "containers/app/blobs/"+sha(layer), nil), http.StatusAccepted)
	e.must(e.do("HEAD", "containers/app/blobs/"+sha(layer), nil), http.StatusNotFound)
	if code := e.must(e.do("DELETE", "containers/app/blobs/"+sha(layer), nil), http.StatusNotFound).code(t); code != "BLOB_UNKNOWN" {
		t.Errorf("deleting a deleted blob: code %s", code)
	}
	// Cancelling an upload.
	loc := e.must(e.do("POST", "containers/app/blobs/uploads/", nil), http.StatusAccepted).location(t)
	e.must(e.do("DELETE", loc, nil), http.StatusNoContent)
	if code := e.must(e.do("DELETE", loc, nil), http.StatusNotFound).code(t); code != "BLOB_UPLOAD_UNKNOWN" {
		t.Errorf("cancelling twice: code %s", code)
	}
	// Deleting needs the delete permission.
	e.user("pusher", map[string][]string{"containers": {"read", "write"}})
	e.pushImage("containers/app", "2.0", randBytes(10))
	if code := e.must(e.do("DELETE", "containers/app/manifests/2.0", nil, "@user", "pusher"), http.StatusForbidden).code(t); code != "DENIED" {
		t.Errorf("delete without permission: code %s", code)
	}
}

func TestUploadSessionsBelongToTheirImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo, otherRepo)
	r := e.must(e.do("POST", "containers/app/blobs/uploads/", nil), http.StatusAccepted)
	id := r.Header.Get("Docker-Upload-UUID")
	for _, p := range []string{"containers/other/blobs/uploads/" + id, "other/app/blobs/uploads/" + id} {
		if code := e.must(e.do("PATCH", p, []byte("x")), http.StatusNotFound).code(t); code != "BLOB_UPLOAD_UNKNOWN" {
			t.Errorf("PATCH %s: code %s", p, code)
		}
		e.must(e.do("GET", p, nil), http.StatusNotFound)
	}
	e.must(e.do("GET", "containers/app/blobs/uploads/"+id, nil), http.StatusNoContent)
}

func TestImmutableTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `{"name":"containers","format":"oci","type":"hosted","oci":{"immutableTags":true}}`)
	m1 := e.pushImage("containers/app", "1.0", randBytes(10))
	// The same manifest again is no move.
	e.pushManifest("containers/app", "1.0", m1)
	m2 := e.pushImage("containers/app", "2.0", randBytes(10))
	r := e.must(e.do("PUT", "containers/app/manifests/1.0", m2.body, "Content-Type", m2.mediaType), http.StatusConflict)
	if code := r.code(t); code != "DENIED" {
		t.Errorf("moving an immutable tag: code %s", code)
	}
	if r := e.must(e.do("GET", "containers/app/manifests/1.0", nil), http.StatusOK); !bytes.Equal(r.body, m1.body) {
		t.Error("the immutable tag moved")
	}
	e.must(e.do("DELETE", "containers/app/manifests/1.0", nil), http.StatusConflict)
	e.must(e.do("DELETE", "containers/app/manifests/"+m1.digest(), nil), http.StatusConflict)
	// An untagged manifest may go.
	e.must(e.do("PUT", "containers/app/manifests/"+index(m1).digest(), index(m1).body, "Content-Type", index(m1).mediaType), http.StatusCreated)
	e.must(e.do("DELETE", "containers/app/manifests/"+index(m1).digest(), nil), http.StatusAccepted)
}

func TestWritePolicyDeny(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `{"name":"containers","format":"oci","type":"hosted","writePolicy":"deny"}`)
	if code := e.must(e.do("POST", "containers/app/blobs/uploads/", nil), http.StatusForbidden).code(t); code != "DENIED" {
		t.Errorf("push to a read-only repository: code %s", code)
	}
}

func TestConcurrentPushOfOneLayer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo, otherRepo)
	layer := randBytes(1 << 20)
	d := sha(layer)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			name := fmt.Sprintf("containers/app%d", i/2)
			if i%2 == 1 {
				name = fmt.Sprintf("other/app%d", i)
			}
			if i%3 == 0 {
				r := e.do("POST", name+"/blobs/uploads/?digest="+d, layer)
				if r.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("%s: monolithic push: %d %s", name, r.StatusCode, r.body)
				}
				return
			}
			r := e.do("POST", name+"/blobs/uploads/", nil)
			if r.StatusCode != http.StatusAccepted {
				errs <- fmt.Errorf("%s: POST %d", name, r.StatusCode)
				return
			}
			loc := r.Header.Get("Location")
			half := len(layer) / 2
			r = e.do("PATCH", loc[len(e.ts.URL):], layer[:half], "Content-Range", fmt.Sprintf("0-%d", half-1))
			if r.StatusCode != http.StatusAccepted {
				errs <- fmt.Errorf("%s: PATCH %d %s", name, r.StatusCode, r.body)
				return
			}
			r = e.do("PUT", loc[len(e.ts.URL):]+"?digest="+d, layer[half:], "Content-Range", fmt.Sprintf("%d-%d", half, len(layer)-1))
			if r.StatusCode != http.StatusCreated {
				errs <- fmt.Errorf("%s: PUT %d %s", name, r.StatusCode, r.body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.blobFiles(strings.TrimPrefix(d, "sha256:")); n != 1 {
		t.Errorf("%d files for one layer pushed 8 times", n)
	}
	if _, err := e.repos.FindBlob(context.Background(), blob.SHA256, strings.TrimPrefix(d, "sha256:")); err != nil {
		t.Errorf("the layer is not recorded: %v", err)
	}
	for i := range 4 {
		e.must(e.do("HEAD", fmt.Sprintf("containers/app%d/blobs/%s", i, d), nil), http.StatusOK)
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo, otherRepo, `{"name":"public","format":"oci","type":"hosted","anonymousRead":true}`)
	e.user("dev", map[string][]string{"containers": {"read"}})
	for _, name := range []string{"containers/b", "containers/a/x", "other/c", "public/p"} {
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
	if got, _ := catalog(""); !slices.Equal(got, []string{"containers/a/x", "containers/b", "other/c", "public/p"}) {
		t.Errorf("admin's catalog = %v", got)
	}
	if got, _ := catalog("", "@user", "dev"); !slices.Equal(got, []string{"containers/a/x", "containers/b", "public/p"}) {
		t.Errorf("dev's catalog = %v", got)
	}
	// Without credentials the catalog challenges, as /v2/ does; with an
	// anonymous token it lists what anyone may read.
	e.must(e.do("GET", "/v2/_catalog", nil, "@anonymous", ""), http.StatusUnauthorized)
	anon := e.must(e.do("GET", "/v2/token?scope=registry:catalog:*", nil, "@anonymous", ""), http.StatusOK)
	var anonTok struct{ Token string }
	if err := json.Unmarshal(anon.body, &anonTok); err != nil {
		t.Fatal(err)
	}
	if got, _ := catalog("", "@anonymous", "", "Authorization", "Bearer "+anonTok.Token); !slices.Equal(got, []string{"public/p"}) {
		t.Errorf("anonymous catalog = %v", got)
	}
	// A registry token for the catalog lists what its user may read.
	r := e.must(e.do("GET", "/v2/token?scope=registry:catalog:*", nil, "@user", "dev"), http.StatusOK)
	var tok struct{ Token string }
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatal(err)
	}
	if got, _ := catalog("", "@anonymous", "", "Authorization", "Bearer "+tok.Token); !slices.Equal(got, []string{"containers/a/x", "containers/b", "public/p"}) {
		t.Errorf("dev's catalog with a token = %v", got)
	}
	got, link := catalog("?n=2")
	if !slices.Equal(got, []string{"containers/a/x", "containers/b"}) || link != `</v2/_catalog?last=containers%2Fb&n=2>; rel="next"` {
		t.Errorf("first page = %v, Link %q", got, link)
	}
	if got, link := catalog("?n=2&last=containers/b"); !slices.Equal(got, []string{"other/c", "public/p"}) || link != "" {
		t.Errorf("second page = %v, Link %q", got, link)
	}
}

func TestAnonymousReadAndPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `{"name":"public","format":"oci","type":"hosted","anonymousRead":true}`, containersRepo)
	m := e.pushImage("public/app", "1", randBytes(5))
	e.must(e.do("GET", "public/app/manifests/1", nil, "@anonymous", ""), http.StatusOK)
	r := e.must(e.do("POST", "public/app/blobs/uploads/", nil, "@anonymous", ""), http.StatusUnauthorized)
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="repository:public/app:pull,push"`) {
		t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
	e.must(e.do("GET", "containers/app/manifests/"+m.digest(), nil, "@anonymous", ""), http.StatusUnauthorized)
	e.user("reader", map[string][]string{"containers": {"read"}})
	if code := e.must(e.do("POST", "containers/app/blobs/uploads/", nil, "@user", "reader"), http.StatusForbidden).code(t); code != "DENIED" {
		t.Errorf("push without write: code %s", code)
	}
	// An unknown repository under /v2/.
	if code := e.must(e.do("GET", "nothing/app/tags/list", nil), http.StatusNotFound).code(t); code != "NAME_UNKNOWN" {
		t.Errorf("unknown repository: code %s", code)
	}
}

func TestValidateSettingsAndClassify(t *testing.T) {
	t.Parallel()
	f := oci.New(nil, nil, nil)
	r := &repo.Repository{Name: "c", Format: "oci"}
	for raw, ok := range map[string]bool{
		`{"immutableTags":true,"gcUntagged":false}`: true,
		`{}`:                    true,
		`{"immutableTags":"x"}`: false,
		`{"unknown":1}`:         false,
		`{} {}`:                 false,
	} {
		err := f.ValidateSettings(r, json.RawMessage(raw))
		if (err == nil) != ok {
			t.Errorf("ValidateSettings(%s) = %v", raw, err)
		}
	}
	if err := f.ValidateSettings(r, nil); err != nil {
		t.Errorf("no section: %v", err)
	}
	d := "sha256:" + strings.Repeat("a", 64)
	for p, want := range map[string]format.Kind{
		"team/app/manifests/" + d:   format.Artifact,
		"team/app/blobs/" + d:       format.Artifact,
		"team/app/manifests/latest": format.Metadata,
		"team/app/tags/list":        format.Metadata,
		"team/app/referrers/" + d:   format.Metadata,
		"team/app/blobs/uploads/":   format.Metadata,
		"whatever":                  format.Metadata,
	} {
		if got := f.Classify(p); got != want {
			t.Errorf("Classify(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestRepositoryPrefixServesTheSameAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo)
	data := randBytes(100)
	r := e.must(e.do("POST", "/repository/containers/app/blobs/uploads/", nil), http.StatusAccepted)
	if !strings.HasPrefix(r.location(t), "/repository/containers/app/blobs/uploads/") {
		t.Errorf("Location %q", r.Header.Get("Location"))
	}
	e.must(e.do("PUT", r.location(t)+"?digest="+sha(data), data), http.StatusCreated)
	e.must(e.do("GET", "containers/app/blobs/"+sha(data), nil), http.StatusOK)
}

// Package oci is the oci format: a container registry that follows the OCI
// distribution specification v1.1 under /v2/, for images, indexes and
// artifacts (Helm charts, signatures, SBOMs), and the Docker registry API
// clients expect.
//
// The first path segment after /v2/ names the arca repository; the rest is
// the image name of the distribution-spec: /v2/containers/team/app/manifests/1.0
// addresses image "team/app" of repository "containers". Routes see the path
// after the repository and parse it themselves, since names contain slashes.
//
// Blobs (layers, configs) go into the shared content-addressed blob store
// and are linked to the image they were pushed to; manifests are stored as
// blobs too, with their media type, subject, tags and references as
// metadata (see repo's OCI methods). Chunked uploads are resumable sessions
// of the blob store and survive restarts.
package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// Prefix is the URL space of the registry API.
const Prefix = "/v2/"

const (
	apiVersionHeader = "Docker-Distribution-API-Version"
	apiVersion       = "registry/2.0"
	// maxManifestSize is the largest manifest accepted; the spec asks
	// registries to take at least 4 MiB.
	maxManifestSize = 4 << 20
	// uploadRecordTTL is the age after which the record of an upload
	// session that was neither finished nor cancelled is dropped; the blob
	// store expires the bytes of idle sessions much sooner.
	uploadRecordTTL = 7 * 24 * time.Hour
)

// Format serves oci repositories.
type Format struct {
	repos *repo.Service
	token func(http.ResponseWriter, *format.RootRequest) error
	// sessions serializes the requests on one upload session, striped by
	// session id: two chunks appended at once would interleave.
	sessions [64]sync.Mutex
	// lastExpiry is when upload records were last expired (Unix seconds).
	lastExpiry atomic.Int64
	// cache is the cache of proxy repositories; nil when none is served.
	cache *proxy.Service
	// mirror routes unknown /v2/ names to proxy repositories.
	mirror mirror
	// upstream authenticates proxy repositories to their upstreams.
	upstream *upstreamAuth
	// tagFlights coalesces the revalidations of proxied tags.
	tagFlights tagFlights
}

var (
	_ format.Format     = (*Format)(nil)
	_ format.RootRouter = (*Format)(nil)
	_ format.Mirror     = (*Format)(nil)
)

// New returns the oci format over the repository service, with the cache
// of its proxy repositories (nil when it serves none).
func New(repos *repo.Service, authn *auth.Service, cache *proxy.Service) *Format {
	return &Format{repos: repos, token: TokenEndpoint(authn, repos), cache: cache, upstream: newUpstreamAuth()}
}

// ID returns "oci".
func (f *Format) ID() string { return "oci" }

// Prefix returns "/v2/".
func (f *Format) Prefix() string { return Prefix }

// Routes lists the registry endpoints of a repository. Every method takes
// the whole path, which each handler parses: see parsePath.
func (f *Format) Routes() []format.Route {
	return []format.Route{
		{Method: "GET", Pattern: "/{path...}", Permission: auth.Read, Handle: f.handle(f.get)},
		{Method: "PUT", Pattern: "/{path...}", Permission: auth.Write, Handle: f.handle(f.put)},
		{Method: "POST", Pattern: "/{path...}", Permission: auth.Write, Handle: f.handle(f.post)},
		{Method: "PATCH", Pattern: "/{path...}", Permission: auth.Write, Handle: f.handle(f.patch)},
		{Method: "DELETE", Pattern: "/{path...}", Permission: auth.Delete, Handle: f.handle(f.delete)},
	}
}

// RootRoutes are the version check and the catalog.
func (f *Format) RootRoutes() []format.RootRoute {
	return []format.RootRoute{
		{Method: "GET", Pattern: "/v2/{$}", Handle: f.ping},
		{Method: "GET", Pattern: "/v2/_catalog", Handle: f.catalog},
		{Method: "GET", Pattern: "/v2/token", Handle: f.token},
		{Method: "POST", Pattern: "/v2/token", Handle: f.token},
	}
}

// Classify says that blobs and manifests by digest never change; tags,
// tag lists and referrers do.
func (f *Format) Classify(p string) format.Kind {
	t, ok := parsePath(p)
	switch {
	case !ok:
		return format.Metadata
	case t.kind == kindBlob, t.kind == kindManifest && strings.Contains(t.ref, ":"):
		return format.Artifact
	}
	return format.Metadata
}

// settings is the "oci" section of a repository definition.
type settings struct {
	// ImmutableTags refuses to move or delete a tag once pushed.
	ImmutableTags bool `json:"immutableTags"`
	// GCUntagged lets garbage collection delete the manifests that no tag,
	// no index and no living subject keeps.
	GCUntagged bool `json:"gcUntagged"`
}

// ValidateSettings checks the "oci" section: only known keys, of the right
// types.
func (f *Format) ValidateSettings(r *repo.Repository, raw json.RawMessage) error {
	var s settings
	return repo.DecodeSection("oci", raw, &s)
}

// settingsOf reads a repository's "oci" section, validated when the
// repository was defined.
func settingsOf(r *repo.Repository) settings {
	var s settings
	if raw := r.Sections["oci"]; raw != nil {
		json.Unmarshal(raw, &s) //nolint:errcheck // validated by ValidateSettings
	}
	return s
}

// handle parses and checks the path of a repository request, marks the
// response as the registry API's and runs h.
func (f *Format) handle(h func(http.ResponseWriter, *format.Request, target) error) func(http.ResponseWriter, *format.Request) error {
	return func(w http.ResponseWriter, r *format.Request) error {
		w.Header().Set(apiVersionHeader, apiVersion)
		t, ok := parsePath(r.Path)
		if !ok {
			return fmt.Errorf("%w: no registry endpoint at %q", repo.ErrNotFound, r.Path)
		}
		if err := checkName(r.Repo.Name, t.image); err != nil {
			return err
		}
		return h(w, r, t)
	}
}

func (f *Format) get(w http.ResponseWriter, r *format.Request, t target) error {
	if r.Repo.Type == repo.Proxy {
		return f.getProxied(w, r, t)
	}
	switch t.kind {
	case kindManifest:
		return f.getManifest(w, r, t)
	case kindBlob:
		return f.getBlob(w, r, t)
	case kindUpload:
		return f.uploadStatus(w, r, t)
	case kindTags:
		return f.tags(w, r, t)
	case kindReferrers:
		return f.referrers(w, r, t)
	}
	return notAllowed(w, r, t)
}

func (f *Format) put(w http.ResponseWriter, r *format.Request, t target) error {
	switch t.kind {
	case kindManifest:
		return f.putManifest(w, r, t)
	case kindUpload:
		return f.finishUpload(w, r, t)
	}
	return notAllowed(w, r, t)
}

func (f *Format) post(w http.ResponseWriter, r *format.Request, t target) error {
	if t.kind == kindUploadStart {
		return f.startUpload(w, r, t)
	}
	return notAllowed(w, r, t)
}

func (f *Format) patch(w http.ResponseWriter, r *format.Request, t target) error {
	if t.kind == kindUpload {
		return f.appendUpload(w, r, t)
	}
	return notAllowed(w, r, t)
}

func (f *Format) delete(w http.ResponseWriter, r *format.Request, t target) error {
	switch t.kind {
	case kindManifest:
		return f.deleteManifest(w, r, t)
	case kindBlob:
		return f.deleteBlob(w, r, t)
	case kindUpload:
		return f.cancelUpload(w, r, t)
	}
	return notAllowed(w, r, t)
}

// allowed are the methods each endpoint answers.
var allowed = map[kind]string{
	kindManifest:    "GET, HEAD, PUT, DELETE",
	kindBlob:        "GET, HEAD, DELETE",
	kindUploadStart: "POST",
	kindUpload:      "GET, HEAD, PATCH, PUT, DELETE",
	kindTags:        "GET, HEAD",
	kindReferrers:   "GET, HEAD",
}

// notAllowed answers a method the endpoint does not have.
func notAllowed(w http.ResponseWriter, r *format.Request, t target) error {
	w.Header().Set("Allow", allowed[t.kind])
	return ociErr(http.StatusMethodNotAllowed, codeUnsupported, "method %s is not allowed here", r.Method)
}

// imageURL is the root-relative URL of an image under the prefix the
// request came by (/v2/ for registry clients, /repository/ otherwise) and
// the repository the client addressed, which for a group is not r.Repo.
func imageURL(r *format.Request, image string) string {
	prefix := Prefix
	if strings.HasPrefix(r.RequestURI, "/repository/") {
		prefix = "/repository/"
	}
	return prefix + addressedRepository(r) + "/" + image
}

// absolute makes a root-relative URL absolute.
func absolute(r *format.Request, u string) string { return r.BaseURL + u }

// ping answers the version check: 200 to a caller who authenticated, 401
// with the challenge to an anonymous one, so that clients log in.
func (f *Format) ping(w http.ResponseWriter, r *format.RootRequest) error {
	w.Header().Set(apiVersionHeader, apiVersion)
	if !presented(r) {
		return fmt.Errorf("%w: log in to use the registry", auth.ErrUnauthenticated)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}")) //nolint:errcheck // the client went away
	return nil
}

// presented reports whether the caller sent credentials that the edge
// accepted: a user, or an anonymous registry token (which authenticates as
// nobody). A caller without any gets the Bearer challenge, so that clients
// learn where tokens come from.
func presented(r *format.RootRequest) bool {
	return r.User != nil || r.Header.Get("Authorization") != ""
}

// errorIs and errorAs are errors.Is and errors.As, shortened for the
// handlers' switches.
func errorIs(err, target error) bool { return errors.Is(err, target) }

func errorAs(err error, target any) bool { return errors.As(err, target) }

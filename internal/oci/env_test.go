package oci_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/format"
	"arca/internal/meta"
	"arca/internal/oci"
	"arca/internal/repo"
	"arca/internal/server"
)

// hashes are the test passwords hashed at bcrypt's lowest cost, so that
// logins stay fast under the race detector.
var hashes = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for _, pw := range []string{"secret", "password1"} {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		out[pw] = string(h)
	}
	return out
})

// env is a whole arca server serving oci repositories over stores in a
// temporary folder, which restart reopens.
type env struct {
	t     *testing.T
	dir   string
	ts    *httptest.Server
	db    *meta.DB
	repos *repo.Service
	authn *auth.Service
}

// newEnv starts a server with the repositories given as JSON definitions;
// the admin's password is "secret".
func newEnv(t *testing.T, defs ...string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.start()
	admin := &auth.User{Name: "admin", PasswordHash: hashes()["secret"], Admin: true}
	if err := e.authn.CreateUser(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	for _, def := range defs {
		var r repo.Repository
		if err := json.Unmarshal([]byte(def), &r); err != nil {
			t.Fatal(err)
		}
		if err := e.repos.Create(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// start opens the stores in e.dir and serves them, as cmd/arca does.
func (e *env) start() {
	t := e.t
	t.Helper()
	ctx := context.Background()
	db, err := meta.OpenSQLite(ctx, filepath.Join(e.dir, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	driver, err := filesystem.New(e.blobRoot())
	if err != nil {
		t.Fatal(err)
	}
	blobs := blob.NewStore(driver)
	repos := repo.NewService(db, blobs)
	authn := auth.NewService(db)
	f := oci.New(repos, authn, nil)
	repos.RegisterFormat(f.ID(), f.ValidateSettings)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := server.New(server.Options{}, log, server.Services{DB: db, Blobs: blobs, Repos: repos,
		Auth: authn, Audit: audit.New(db, log)}, []format.Format{f})
	if err := authn.LoadRegistryKey(e.dir, ""); err != nil {
		t.Fatal(err)
	}
	e.ts, e.db, e.repos, e.authn = httptest.NewServer(srv), db, repos, authn
	ts := e.ts
	t.Cleanup(func() { ts.Close(); db.Close() })
}

// restart stops the server and starts a new one over the same folder: a
// new blob store, metadata connection and format.
func (e *env) restart() {
	e.ts.Close()
	e.db.Close()
	e.start()
}

func (e *env) blobRoot() string { return filepath.Join(e.dir, "blobs") }

// blobFiles counts the committed blob files with the given SHA-256 hex.
func (e *env) blobFiles(sha string) int {
	n := 0
	filepath.WalkDir(filepath.Join(e.blobRoot(), "blobs"), func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // a missing folder counts nothing
		if err == nil && !d.IsDir() && d.Name() == sha {
			n++
		}
		return nil
	})
	return n
}

// user creates a user with the given grants (repository -> actions); its
// password is "password1".
func (e *env) user(name string, grants map[string][]string) {
	e.t.Helper()
	u := &auth.User{Name: name, PasswordHash: hashes()["password1"]}
	for r, actions := range grants {
		u.Permissions = append(u.Permissions, auth.Grant{Repository: r, Actions: actions})
	}
	if err := e.authn.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
}

type response struct {
	*http.Response
	body []byte
}

// code returns the code of the spec's error document.
func (r response) code(t *testing.T) string {
	t.Helper()
	var doc struct {
		Errors []struct {
			Code, Message string
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || len(doc.Errors) != 1 {
		t.Fatalf("body %q is not an error document: %v", r.body, err)
	}
	return doc.Errors[0].Code
}

// location returns the path and query of the Location header.
func (r response) location(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(r.Header.Get("Location"))
	if err != nil || r.Header.Get("Location") == "" {
		t.Fatalf("Location %q: %v", r.Header.Get("Location"), err)
	}
	return u.RequestURI()
}

// do sends a request for target (a path, possibly relative to /v2/) as
// admin and reads the answer. Headers come in name, value pairs; the
// pseudo-header "@user" sends basic auth for that user (password
// "password1"), "@anonymous" none.
func (e *env) do(method, target string, body []byte, headers ...string) response {
	e.t.Helper()
	if !strings.HasPrefix(target, "/") {
		target = "/v2/" + target
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+target, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.SetBasicAuth("admin", "secret")
	for i := 0; i+1 < len(headers); i += 2 {
		switch headers[i] {
		case "@user":
			req.SetBasicAuth(headers[i+1], "password1")
		case "@anonymous":
			req.Header.Del("Authorization")
		default:
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{resp, b}
}

// must checks a response's status.
func (e *env) must(r response, status int) response {
	e.t.Helper()
	if r.StatusCode != status {
		e.t.Fatalf("%s %s = %d, want %d: %s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	}
	return r
}

// pushBlob uploads b to image (a "<repo>/<image>" name) in one POST.
func (e *env) pushBlob(name string, b []byte) string {
	e.t.Helper()
	d := sha(b)
	r := e.must(e.do("POST", name+"/blobs/uploads/?digest="+d, b), http.StatusCreated)
	if got := r.Header.Get("Docker-Content-Digest"); got != d {
		e.t.Fatalf("Docker-Content-Digest = %q, want %q", got, d)
	}
	return d
}

// pushManifest puts a manifest under ref and checks it was created.
func (e *env) pushManifest(name, ref string, m manifest) response {
	e.t.Helper()
	return e.must(e.do("PUT", name+"/manifests/"+ref, m.body, "Content-Type", m.mediaType), http.StatusCreated)
}

// pushImage pushes a config, layers and their manifest under ref; it
// returns the manifest.
func (e *env) pushImage(name, ref string, layers ...[]byte) manifest {
	e.t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rand":"` + hex.EncodeToString(randBytes(8)) + `"}`)
	e.pushBlob(name, config)
	for _, l := range layers {
		e.pushBlob(name, l)
	}
	m := imageManifest(config, layers...)
	e.pushManifest(name, ref, m)
	return m
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func sha512Of(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512:" + hex.EncodeToString(sum[:])
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// manifest is a manifest's bytes and media type.
type manifest struct {
	body      []byte
	mediaType string
}

func (m manifest) digest() string { return sha(m.body) }

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     map[string]string `json:"platform,omitempty"`
}

func desc(mediaType string, b []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: sha(b), Size: int64(len(b))}
}

// imageManifest is an OCI image manifest of a config and layers.
func imageManifest(config []byte, layers ...[]byte) manifest {
	doc := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc("application/vnd.oci.image.config.v1+json", config),
	}
	ls := []descriptor{}
	for _, l := range layers {
		ls = append(ls, desc("application/vnd.oci.image.layer.v1.tar+gzip", l))
	}
	doc["layers"] = ls
	return encode(doc, "application/vnd.oci.image.manifest.v1+json")
}

// artifact is an OCI artifact manifest with a subject.
func artifact(artifactType string, subject manifest, config, layer []byte, annotations map[string]string) manifest {
	doc := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"artifactType":  artifactType,
		"config":        desc("application/vnd.oci.empty.v1+json", config),
		"layers":        []descriptor{desc("application/octet-stream", layer)},
		"subject":       desc(subject.mediaType, subject.body),
	}
	if annotations != nil {
		doc["annotations"] = annotations
	}
	return encode(doc, "application/vnd.oci.image.manifest.v1+json")
}

// index is an OCI image index of manifests.
func index(ms ...manifest) manifest {
	ds := []descriptor{}
	for _, m := range ms {
		ds = append(ds, desc(m.mediaType, m.body))
	}
	return encode(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     ds,
	}, "application/vnd.oci.image.index.v1+json")
}

func encode(doc any, mediaType string) manifest {
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return manifest{body: b, mediaType: mediaType}
}

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ociClient runs an OCI client with its configuration kept in a temporary
// home, so that logins stay inside the test.
type ociClient struct {
	t    *testing.T
	home string
}

func newOCIClient(t *testing.T) *ociClient {
	home := t.TempDir()
	return &ociClient{t: t, home: home}
}

func (c *ociClient) env() []string {
	return append(os.Environ(),
		"HOME="+c.home,
		"DOCKER_CONFIG="+filepath.Join(c.home, ".docker"),
		"REGISTRY_AUTH_FILE="+filepath.Join(c.home, "auth.json"),
		"HELM_REGISTRY_CONFIG="+filepath.Join(c.home, ".docker", "config.json"),
		"HELM_CACHE_HOME="+filepath.Join(c.home, "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(c.home, "helm-config"),
		"HELM_DATA_HOME="+filepath.Join(c.home, "helm-data"),
		"XDG_RUNTIME_DIR="+c.home,
	)
}

// run runs a client and returns its standard output, failing the test when
// it exits non-zero.
func (c *ociClient) run(dir, tool string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(requireTool(c.t, tool), args...)
	cmd.Env = c.env()
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", tool, strings.Join(args, " "), err,
			stdout.String(), stderr.String())
	}
	return stdout.String()
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestCrane pushes, lists, copies, pulls, digests and deletes images with
// crane, including a multi-platform index, after a login through the token
// flow.
func TestCrane(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"containers","format":"oci","type":"hosted"}`)
	c := newOCIClient(t)
	dir := t.TempDir()
	reg := in.Addr
	c.run(dir, "crane", "auth", "login", reg, "-u", "admin", "-p", adminPassword)

	layer := filepath.Join(dir, "layer.tar")
	writeTar(t, layer, map[string]string{"hello.txt": "hello from arca\n"})
	img := reg + "/containers/team/app"
	c.run(dir, "crane", "append", "--insecure", "-f", layer, "-t", img+":1.0")
	digest := strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", img+":1.0"))
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("digest %q", digest)
	}
	c.run(dir, "crane", "copy", "--insecure", img+":1.0", img+":copy")
	tags := c.run(dir, "crane", "ls", "--insecure", img)
	if !strings.Contains(tags, "1.0") || !strings.Contains(tags, "copy") {
		t.Fatalf("tags: %q", tags)
	}
	if got := strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", img+":copy")); got != digest {
		t.Fatalf("copy has digest %s, want %s", got, digest)
	}
	c.run(dir, "crane", "pull", "--insecure", img+":1.0", filepath.Join(dir, "pulled.tar"))
	exported := c.run(dir, "crane", "export", "--insecure", img+":1.0", "-")
	if !strings.Contains(exported, "hello from arca") {
		t.Fatal("the pulled image lacks the layer's file")
	}

	// A multi-platform index of two images.
	c.run(dir, "crane", "append", "--insecure", "-f", layer, "-t", img+":amd64", "--platform", "linux/amd64")
	c.run(dir, "crane", "append", "--insecure", "-f", layer, "-t", img+":arm64", "--platform", "linux/arm64")
	c.run(dir, "crane", "index", "append", "--insecure", "-m", img+":amd64", "-m", img+":arm64", "-t", img+":multi")
	raw := c.run(dir, "crane", "manifest", "--insecure", img+":multi")
	var index struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Platform struct{ Architecture string } `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(raw), &index); err != nil || len(index.Manifests) != 2 {
		t.Fatalf("index: %v: %s", err, raw)
	}
	c.run(dir, "crane", "delete", "--insecure", img+"@"+digest)
	cmd := exec.Command(requireTool(t, "crane"), "manifest", "--insecure", img+"@"+digest)
	cmd.Env = c.env()
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("a deleted manifest is still served: %s", out)
	}
}

// TestSkopeo copies an image into arca and out again, and inspects it.
func TestSkopeo(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"containers","format":"oci","type":"hosted"}`)
	c := newOCIClient(t)
	dir := t.TempDir()
	reg := in.Addr
	layer := filepath.Join(dir, "layer.tar")
	writeTar(t, layer, map[string]string{"skopeo.txt": "copied by skopeo\n"})
	// An OCI layout made by crane is skopeo's source.
	c.run(dir, "crane", "auth", "login", reg, "-u", "admin", "-p", adminPassword)
	c.run(dir, "crane", "append", "--insecure", "-f", layer, "-t", reg+"/containers/seed:1")
	c.run(dir, "crane", "pull", "--insecure", "--format", "oci", reg+"/containers/seed:1", filepath.Join(dir, "layout"))

	c.run(dir, "skopeo", "login", "--tls-verify=false", "-u", "admin", "-p", adminPassword, reg)
	c.run(dir, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+filepath.Join(dir, "layout"),
		"docker://"+reg+"/containers/skopeo/app:2")
	out := c.run(dir, "skopeo", "inspect", "--tls-verify=false", "docker://"+reg+"/containers/skopeo/app:2")
	if !strings.Contains(out, `"Digest"`) {
		t.Fatalf("inspect: %s", out)
	}
	c.run(dir, "skopeo", "copy", "--src-tls-verify=false", "docker://"+reg+"/containers/skopeo/app:2",
		"dir:"+filepath.Join(dir, "out"))
	entries, err := os.ReadDir(filepath.Join(dir, "out"))
	if err != nil || len(entries) < 3 {
		t.Fatalf("copied out: %v, %d files", err, len(entries))
	}
}

// TestORAS pushes and pulls an artifact, attaches an SBOM to it and
// discovers it through the referrers API.
func TestORAS(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"containers","format":"oci","type":"hosted"}`)
	c := newOCIClient(t)
	dir := t.TempDir()
	reg := in.Addr
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("release notes\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"packages":[]}`), 0o644)
	ref := reg + "/containers/artifacts/notes:v1"

	c.run(dir, "oras", "login", "--plain-http", "-u", "admin", "-p", adminPassword, reg)
	c.run(dir, "oras", "push", "--plain-http", ref, "notes.txt:text/plain")
	pulled := t.TempDir()
	c.run(pulled, "oras", "pull", "--plain-http", ref)
	if got, want := sha256File(t, filepath.Join(pulled, "notes.txt")), sha256File(t, filepath.Join(dir, "notes.txt")); got != want {
		t.Fatal("pulled artifact differs")
	}
	c.run(dir, "oras", "attach", "--plain-http", "--artifact-type", "application/vnd.example.sbom", ref,
		"sbom.json:application/json")
	found := c.run(dir, "oras", "discover", "--plain-http", "--format", "json", ref)
	if !strings.Contains(found, "application/vnd.example.sbom") {
		t.Fatalf("discover does not list the SBOM: %s", found)
	}
	// The catalog of a private registry: oras sends its login only after a
	// challenge.
	if repos := c.run(dir, "oras", "repo", "ls", "--plain-http", reg); !strings.Contains(repos, "containers/artifacts/notes") {
		t.Fatalf("oras repo ls does not list the pushed repository: %q", repos)
	}
}

// TestHelm pushes a chart over oci:// and pulls it back.
func TestHelm(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"containers","format":"oci","type":"hosted"}`)
	c := newOCIClient(t)
	dir := t.TempDir()
	reg := in.Addr
	c.run(dir, "helm", "create", "mychart")
	c.run(dir, "helm", "package", "mychart")
	pkg := filepath.Join(dir, "mychart-0.1.0.tgz")
	c.run(dir, "helm", "registry", "login", "--plain-http", "-u", "admin", "-p", adminPassword, reg)
	c.run(dir, "helm", "push", "--plain-http", pkg, "oci://"+reg+"/containers/charts")
	pulled := t.TempDir()
	c.run(pulled, "helm", "pull", "--plain-http", "oci://"+reg+"/containers/charts/mychart", "--version", "0.1.0")
	if got, want := sha256File(t, filepath.Join(pulled, "mychart-0.1.0.tgz")), sha256File(t, pkg); got != want {
		t.Fatal("pulled chart differs from the pushed one")
	}
}

// writeTar writes a tar archive with the given files, as an image layer.
func writeTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)),
			Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOCIGroup serves, with crane, an oci group of a hosted repository
// (first, the write member) and a proxy of a hosted repository on a second
// arca: images of either member pull through the group, the first member
// wins a tag both have, the tag lists merge, pushes land in the write
// member, and a group without one refuses pushes with 405.
func TestOCIGroup(t *testing.T) {
	dir := t.TempDir()
	up := start(t)
	up.createRepo(`{"name":"containers","format":"oci","type":"hosted"}`)
	uc := newOCIClient(t)
	uc.run(dir, "crane", "auth", "login", up.Addr, "-u", "admin", "-p", adminPassword)

	px := start(t)
	px.createRepo(`{"name":"local","format":"oci","type":"hosted"}`)
	px.createRepo(fmt.Sprintf(`{"name":"hub","format":"oci","type":"proxy",
		"proxy":{"url":%q,"namespace":"containers","username":"admin","password":%q}}`, up.URL, adminPassword))
	px.createRepo(`{"name":"registry","format":"oci","type":"group","group":{"members":["local","hub"],"writeMember":"local"}}`)
	px.createRepo(`{"name":"ro","format":"oci","type":"group","group":{"members":["local","hub"]}}`)
	c := newOCIClient(t)
	c.run(dir, "crane", "auth", "login", px.Addr, "-u", "admin", "-p", adminPassword)

	// appendImage makes an image of one file under ref and returns its digest.
	appendImage := func(client *ociClient, ref, file, content string) string {
		t.Helper()
		layer := filepath.Join(t.TempDir(), "layer.tar")
		writeTar(t, layer, map[string]string{file: content})
		client.run(dir, "crane", "append", "--insecure", "-f", layer, "-t", ref)
		return strings.TrimSpace(client.run(dir, "crane", "digest", "--insecure", ref))
	}
	upOnly := appendImage(uc, up.Addr+"/containers/team/app:up-only", "up.txt", "only upstream\n")
	upShared := appendImage(uc, up.Addr+"/containers/team/app:shared", "shared.txt", "the upstream's\n")
	localOnly := appendImage(c, px.Addr+"/local/team/app:local-only", "local.txt", "only local\n")
	localShared := appendImage(c, px.Addr+"/local/team/app:shared", "shared.txt", "the local one\n")
	if upShared == localShared {
		t.Fatal("the two shared images have one digest")
	}

	group := px.Addr + "/registry/team/app"
	// Each member's own image, pulled whole through the group.
	for tag, want := range map[string]string{"up-only": upOnly, "local-only": localOnly} {
		if got := strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", group+":"+tag)); got != want {
			t.Errorf("%s through the group has digest %s, want %s", tag, got, want)
		}
		c.run(dir, "crane", "pull", "--insecure", group+":"+tag, filepath.Join(dir, tag+".tar"))
	}
	if out := c.run(dir, "crane", "export", "--insecure", group+":up-only", "-"); !strings.Contains(out, "only upstream") {
		t.Error("the proxied image pulled through the group lacks its file")
	}
	// By digest, too.
	c.run(dir, "crane", "pull", "--insecure", group+"@"+upOnly, filepath.Join(dir, "by-digest.tar"))
	// The tag both members have: the first member's.
	if got := strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", group+":shared")); got != localShared {
		t.Errorf("shared through the group = %s, want the first member's %s (the proxy's is %s)", got, localShared, upShared)
	}
	if out := c.run(dir, "crane", "export", "--insecure", group+":shared", "-"); !strings.Contains(out, "the local one") {
		t.Error("the shared tag's content is not the first member's")
	}

	// The tag list is the members' union.
	tags := strings.Fields(c.run(dir, "crane", "ls", "--insecure", group))
	if want := []string{"local-only", "shared", "up-only"}; strings.Join(tags, " ") != strings.Join(want, " ") {
		t.Errorf("crane ls through the group = %v, want %v", tags, want)
	}

	// The catalog lists the group's images under its name.
	if cat := strings.Fields(c.run(dir, "crane", "catalog", "--insecure", px.Addr)); !slices.Contains(cat, "registry/team/app") || !slices.Contains(cat, "local/team/app") {
		t.Errorf("catalog = %v", cat)
	}

	// crane push through the group lands in the write member.
	c.run(dir, "crane", "push", "--insecure", filepath.Join(dir, "up-only.tar"), px.Addr+"/registry/team/pushed:1")
	if got := strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", px.Addr+"/local/team/pushed:1")); got != upOnly {
		t.Errorf("the pushed image in the write member has digest %s, want %s", got, upOnly)
	}
	// crane found the layers through the group (the proxy member had them)
	// and uploaded none: the write member still serves the whole image.
	c.run(dir, "crane", "pull", "--insecure", px.Addr+"/local/team/pushed:1", filepath.Join(dir, "pushed.tar"))
	// Every write of the push addressed the group, with the token crane
	// got for it: the upload sessions' Locations name the group too.
	pushed := 0
	for k, n := range accessCounts(t, px) {
		method := strings.Fields(k)[0]
		if strings.Contains(k, "/team/pushed/") && method != "GET" && method != "HEAD" {
			if !strings.HasPrefix(strings.Fields(k)[1], "/v2/registry/") {
				t.Errorf("a request of the push went elsewhere: %s", k)
			}
			if strings.HasPrefix(k, "PUT /v2/registry/team/pushed/manifests/1 201") {
				pushed += n
			}
		}
	}
	if pushed != 1 {
		t.Errorf("%d manifest PUTs through the group answered 201, want 1", pushed)
	}
	if resp := up.do("GET", "/v2/containers/team/pushed/tags/list", nil, false); resp.StatusCode != 404 {
		t.Errorf("the push reached the proxy's upstream: %s", resp.Status)
	}
	// A tag pushed through the group moves in the write member only.
	c.run(dir, "crane", "tag", "--insecure", px.Addr+"/registry/team/app:local-only", "retagged")
	if got := strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", px.Addr+"/local/team/app:retagged")); got != localOnly {
		t.Errorf("retagged in the write member = %s, want %s", got, localOnly)
	}

	// A group without a write member refuses pushes in the registry's form.
	resp := px.do("POST", "/v2/ro/team/app/blobs/uploads/", nil, false)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 405 || !strings.Contains(string(body), `"code":"UNSUPPORTED"`) {
		t.Errorf("POST to the read-only group: %s %s", resp.Status, body)
	}
	cmd := exec.Command(requireTool(t, "crane"), "push", "--insecure", filepath.Join(dir, "local-only.tar"), px.Addr+"/ro/team/other:1")
	cmd.Env = c.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Errorf("crane push to a group without a write member succeeded: %s", out.String())
	} else if !strings.Contains(out.String(), "405") && !strings.Contains(out.String(), "UNSUPPORTED") {
		t.Errorf("crane push to the read-only group failed without the 405: %s", out.String())
	}
	// Reads through it still work.
	if got := strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", px.Addr+"/ro/team/app:up-only")); got != upOnly {
		t.Errorf("up-only through the read-only group = %s", got)
	}
}

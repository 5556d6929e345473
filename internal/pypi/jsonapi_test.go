package pypi_test

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"arca/internal/repo"
)

func TestJSONAPI(t *testing.T) {
	base := index(t, repo.AllowOnce)
	whl := wheelBytes(t, "my.cool-pkg", "1.0")
	if code, body := upload(t, base, "My_Cool.Pkg-1.0-py3-none-any.whl", whl,
		map[string]string{"name": "My_Cool.Pkg", "license": "MIT", "requires_dist": "requests"}); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	if code, body := upload(t, base, "my_cool_pkg-1.0.tar.gz", sdist(t, "My_Cool.Pkg", "1.0"),
		map[string]string{"name": "My_Cool.Pkg"}); code != 200 {
		t.Fatalf("upload sdist: %d %s", code, body)
	}
	if code, body := upload(t, base, "my_cool_pkg-2.0rc1.tar.gz", sdist(t, "My_Cool.Pkg", "2.0rc1"),
		map[string]string{"name": "My_Cool.Pkg", "version": "2.0rc1"}); code != 200 {
		t.Fatalf("upload rc: %d %s", code, body)
	}
	for p, want := range map[string]string{
		"pypi/My_Cool.Pkg/json":         "pypi/my-cool-pkg/json",
		"pypi/My_Cool.Pkg/1.0/json":     "pypi/my-cool-pkg/1.0/json",
		"pypi/my-cool-pkg/2.0-RC1/json": "pypi/my-cool-pkg/2.0rc1/json",
		"pypi/my-cool-pkg/1.0.0/json":   "pypi/my-cool-pkg/1.0/json",
	} {
		resp, _ := do(t, "GET", base+p, "", nil)
		if resp.StatusCode != 301 || resp.Header.Get("Location") != base+want {
			t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, p := range []string{"pypi/nothing/json", "pypi/my-cool-pkg/3.0/json", "pypi/my-cool-pkg/latest/json"} {
		if resp, _ := do(t, "GET", base+p, "", nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}

	type file struct {
		Filename       string            `json:"filename"`
		URL            string            `json:"url"`
		Digests        map[string]string `json:"digests"`
		Size           int64             `json:"size"`
		UploadTime     string            `json:"upload_time_iso_8601"`
		RequiresPython *string           `json:"requires_python"`
		Yanked         bool              `json:"yanked"`
		YankedReason   *string           `json:"yanked_reason"`
		PackageType    string            `json:"packagetype"`
	}
	var doc struct {
		Info     map[string]any    `json:"info"`
		Releases map[string][]file `json:"releases"`
		URLs     []file            `json:"urls"`
	}
	resp, body := do(t, "GET", base+"pypi/my-cool-pkg/json", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("project json: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	// The latest release is the final one, not the release candidate.
	if doc.Info["name"] != "My_Cool.Pkg" || doc.Info["version"] != "1.0" || doc.Info["license"] != "MIT" ||
		doc.Info["summary"] != "a demo" || doc.Info["requires_python"] != ">=3.8" ||
		doc.Info["description"] != "The description." || doc.Info["yanked"] != false {
		t.Fatalf("info: %s", body)
	}
	if rd, _ := doc.Info["requires_dist"].([]any); len(rd) != 1 || rd[0] != "requests" {
		t.Fatalf("requires_dist: %v", doc.Info["requires_dist"])
	}
	if len(doc.Releases) != 2 || len(doc.Releases["1.0"]) != 2 || len(doc.Releases["2.0rc1"]) != 1 || len(doc.URLs) != 2 {
		t.Fatalf("releases: %s", body)
	}
	sha, sum := sha256.Sum256(whl), md5.Sum(whl)
	w := doc.URLs[0]
	if w.Filename != "My_Cool.Pkg-1.0-py3-none-any.whl" || w.URL != base+"packages/my-cool-pkg/1.0/My_Cool.Pkg-1.0-py3-none-any.whl" ||
		w.Digests["sha256"] != hex.EncodeToString(sha[:]) || w.Digests["md5"] != hex.EncodeToString(sum[:]) ||
		w.Size != int64(len(whl)) || w.UploadTime == "" || w.RequiresPython == nil || *w.RequiresPython != ">=3.8" ||
		w.Yanked || w.YankedReason != nil || w.PackageType != "bdist_wheel" || doc.URLs[1].PackageType != "sdist" {
		t.Fatalf("file: %+v", w)
	}
	// The file's URL downloads it.
	if resp, got := do(t, "GET", w.URL, "", nil); resp.StatusCode != 200 || got != string(whl) {
		t.Fatalf("download: %d", resp.StatusCode)
	}

	doc.Releases = nil
	resp, body = do(t, "GET", base+"pypi/my-cool-pkg/2.0rc1/json", "", nil)
	if err := json.Unmarshal([]byte(body), &doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("release json: %d %s", resp.StatusCode, body)
	}
	if doc.Info["version"] != "2.0rc1" || len(doc.URLs) != 1 || doc.URLs[0].Filename != "my_cool_pkg-2.0rc1.tar.gz" || doc.Releases != nil {
		t.Fatalf("release json: %s", body)
	}
}

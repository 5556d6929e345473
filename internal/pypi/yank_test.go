package pypi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"arca/internal/repo"
)

func TestYankAndDelete(t *testing.T) {
	base := index(t, repo.AllowOnce)
	api := strings.TrimSuffix(base, "repository/py/") + "api/v1/repositories/py/pypi/"
	for _, v := range []string{"1.0", "2.0"} {
		if code, body := upload(t, base, "demo-"+v+".tar.gz", sdist(t, "demo", v), map[string]string{"version": v}); code != 200 {
			t.Fatalf("upload %s: %d %s", v, code, body)
		}
	}
	if resp, body := do(t, "POST", api+"Demo/2.0.0/yank", "application/json", strings.NewReader(`{"reason":"broken <build>"}`)); resp.StatusCode != 204 {
		t.Fatalf("yank: %d %s", resp.StatusCode, body)
	}
	_, page := do(t, "GET", base+"simple/demo/", "", nil)
	if !strings.Contains(page, `demo-2.0.tar.gz#sha256=`) || !strings.Contains(page, ` data-yanked="broken &lt;build&gt;">demo-2.0.tar.gz`) ||
		strings.Count(page, "data-yanked") != 1 {
		t.Fatalf("simple page: %s", page)
	}
	_, body := do(t, "GET", base+"simple/demo/", "", nil, "Accept", "application/vnd.pypi.simple.v1+json")
	if !strings.Contains(body, `"yanked":"broken \u003cbuild\u003e"`) {
		t.Fatalf("simple JSON: %s", body)
	}
	var doc struct {
		Info     map[string]any `json:"info"`
		Releases map[string][]struct {
			Yanked       bool    `json:"yanked"`
			YankedReason *string `json:"yanked_reason"`
		} `json:"releases"`
	}
	_, body = do(t, "GET", base+"pypi/demo/json", "", nil)
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info["version"] != "1.0" || !doc.Releases["2.0"][0].Yanked || *doc.Releases["2.0"][0].YankedReason != "broken <build>" ||
		doc.Releases["1.0"][0].Yanked {
		t.Fatalf("JSON API after yank: %s", body)
	}
	_, body = do(t, "GET", base+"pypi/demo/2.0/json", "", nil)
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Info["yanked"] != true || doc.Info["yanked_reason"] != "broken <build>" {
		t.Fatalf("release JSON after yank: %s", body)
	}
	// Unyank.
	if resp, body := do(t, "DELETE", api+"demo/2.0/yank", "", nil); resp.StatusCode != 204 {
		t.Fatalf("unyank: %d %s", resp.StatusCode, body)
	}
	if _, page := do(t, "GET", base+"simple/demo/", "", nil); strings.Contains(page, "data-yanked") {
		t.Fatalf("simple page after unyank: %s", page)
	}
	// Yank without a body.
	if resp, body := do(t, "POST", api+"demo/1.0/yank", "", nil); resp.StatusCode != 204 {
		t.Fatalf("yank without body: %d %s", resp.StatusCode, body)
	}
	if _, page := do(t, "GET", base+"simple/demo/", "", nil); !strings.Contains(page, ` data-yanked="">demo-1.0.tar.gz`) {
		t.Fatalf("simple page: %s", page)
	}
	for _, c := range []struct{ method, path string }{
		{"POST", "demo/3.0/yank"}, {"POST", "nothing/1.0/yank"}, {"DELETE", "demo/3.0"}, {"DELETE", "demo/not-a-version"},
	} {
		if resp, body := do(t, c.method, api+c.path, "", nil); resp.StatusCode != 404 {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	// Delete 2.0: its file is gone, 1.0 stays.
	if resp, body := do(t, "DELETE", api+"demo/2.0", "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", base+"packages/demo/2.0/demo-2.0.tar.gz", "", nil); resp.StatusCode != 404 {
		t.Fatalf("deleted file: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", base+"pypi/demo/2.0/json", "", nil); resp.StatusCode != 404 {
		t.Fatalf("deleted release JSON: %d", resp.StatusCode)
	}
	if _, page := do(t, "GET", base+"simple/demo/", "", nil); strings.Contains(page, "demo-2.0") || !strings.Contains(page, "demo-1.0") {
		t.Fatalf("simple page after delete: %s", page)
	}
	// The file name may be uploaded again once deleted.
	if code, body := upload(t, base, "demo-2.0.tar.gz", sdist(t, "demo", "2.0", "again"), map[string]string{"version": "2.0"}); code != 200 {
		t.Fatalf("upload after delete: %d %s", code, body)
	}
	// Delete everything: the project is gone.
	for _, v := range []string{"1.0", "2.0"} {
		if resp, body := do(t, "DELETE", api+"demo/"+v, "", nil); resp.StatusCode != 204 {
			t.Fatalf("delete %s: %d %s", v, resp.StatusCode, body)
		}
	}
	if resp, _ := do(t, "GET", base+"simple/demo/", "", nil); resp.StatusCode != 404 {
		t.Fatalf("deleted project: %d", resp.StatusCode)
	}
}

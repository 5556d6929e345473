package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// traversals are 50 spellings of a path that tries to leave its repository
// or smuggle a forbidden byte. Each is appended to /repository/files/.
var traversals = []string{
	"../x", "../../etc/passwd", "a/../../x", "a/..", "./x", "a/./b", ".", "..",
	"%2e%2e/x", "%2E%2E/x", "%2e./x", ".%2e/x", "a/%2e%2e/%2e%2e/x", "%2e/x",
	"a%2f..%2fb", "a%2F..%2Fb", "..%2fx", "%2f..%2fx", "a%2f%2e%2e%2fx",
	"..%5cx", "%5c..%5cx", "a%5c..%5cb", "..%5c..%5cwindows", "a%5cb",
	"%252e%252e/x", "%252E%252E/x", "%25252e%25252e/x", "a%252f..%252fb", "%252e%252e%252fx",
	"..%255cx", "a%00b", "a%00", "%00/x", "a%2500b", "a%0ab", "a%0db", "a%0d%0aSet-Cookie:x",
	"a%09b", "a%1fb", "a%7fb", "a//b", "a///b", "a/b//c", "%c0%ae%c0%ae/x",
	"%c0%afx", "..;/x", "a/..;/..;/x", "%2e%2e%3b/x", "..%00/x", "%2e%2e%5c%2e%2e/x",
}

// TestPathTraversalRefused sends every spelling with curl --path-as-is, as
// GET and PUT, and expects 400 with nothing written outside the data
// folder.
func TestPathTraversalRefused(t *testing.T) {
	if len(traversals) < 50 {
		t.Fatalf("only %d spellings", len(traversals))
	}
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted","writePolicy":"allow"}`)
	parent := filepath.Dir(in.Data)
	secret := filepath.Join(parent, "x")
	os.WriteFile(secret, []byte("outside the data folder"), 0o644)
	before := listTree(t, parent, in.Data)
	body := filepath.Join(t.TempDir(), "payload")
	os.WriteFile(body, []byte("payload"), 0o644)

	for _, p := range traversals {
		u := in.URL + "/repository/files/" + p
		if got := curlStatus(t, "--path-as-is", "-u", admin(), u); got != "400" {
			t.Errorf("GET %s: %s, want 400", p, got)
		}
		// Not -T: curl appends the file name to a URL ending in "." or "..".
		if got := curlStatus(t, "--path-as-is", "-u", admin(), "-X", "PUT", "--data-binary", "@"+body, u); got != "400" {
			t.Errorf("PUT %s: %s, want 400", p, got)
		}
	}
	after := listTree(t, parent, in.Data)
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("files changed outside the data folder:\nbefore %v\nafter  %v", before, after)
	}
	if n := blobFiles(t, in.Data); n != 0 {
		t.Fatalf("%d blobs stored by refused requests", n)
	}
}

// listTree lists the files under root, skipping the data folder.
func listTree(t *testing.T, root, skip string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if p == skip {
			return filepath.SkipDir
		}
		out = append(out, p)
		return nil
	})
	sort.Strings(out)
	return out
}

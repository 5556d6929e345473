package pypi_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"

	"arca/internal/repo"
)

// sdist is a minimal valid sdist of project and version; extra, when
// given, is put in a file of its own so that two sdists can differ.
func sdist(t *testing.T, project, version string, extra ...string) []byte {
	t.Helper()
	top := project + "-" + version
	files := map[string]string{top + "/PKG-INFO": "Metadata-Version: 2.1\nName: " + project +
		"\nVersion: " + version + "\n"}
	if len(extra) > 0 {
		files[top+"/extra.txt"] = extra[0]
	}
	return sdistTarGz(t, files)
}

// sdistTarGz is a crafted .tar.gz sdist holding the given files.
func sdistTarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content)) //nolint:errcheck // a bytes.Buffer
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sdistZip is a crafted .zip sdist holding the given files.
func sdistZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content)) //nolint:errcheck // a bytes.Buffer
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSdistPKGInfo(t *testing.T) {
	base := index(t, repo.AllowOnce)
	pkgInfo := "Metadata-Version: 2.1\nName: My_Cool.Pkg\nVersion: 1.0\nSummary: from PKG-INFO\n" +
		"License: BSD\nRequires-Dist: attrs\nRequires-Python: >=3.9\n\nThe sdist's description.\n"
	tgz := sdistTarGz(t, map[string]string{
		"my_cool_pkg-1.0/setup.py":           "from setuptools import setup\nsetup()\n",
		"my_cool_pkg-1.0/src/x/PKG-INFO":     "Name: elsewhere\nVersion: 9\n",
		"my_cool_pkg-1.0/PKG-INFO":           pkgInfo,
		"my_cool_pkg-1.0/my_cool_pkg.egg/xx": "",
	})
	// The form has no summary, license or requires_dist: PKG-INFO fills them.
	if code, body := upload(t, base, "my_cool_pkg-1.0.tar.gz", tgz,
		map[string]string{"name": "my-cool-pkg", "summary": "", "requires_python": ""}); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	_, body := do(t, "GET", base+"pypi/my-cool-pkg/1.0/json", "", nil)
	var doc struct {
		Info map[string]any `json:"info"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info["summary"] != "from PKG-INFO" || doc.Info["license"] != "BSD" || doc.Info["requires_python"] != ">=3.9" ||
		doc.Info["description"] != "The sdist's description." {
		t.Fatalf("info from PKG-INFO: %s", body)
	}
	if rd, _ := doc.Info["requires_dist"].([]any); len(rd) != 1 || rd[0] != "attrs" {
		t.Fatalf("requires_dist: %s", body)
	}

	// A .zip sdist, with "./" names, the form's summary winning.
	zipped := sdistZip(t, map[string]string{"./demo-2.0/PKG-INFO": "Name: Demo\nVersion: 2.0\nSummary: zipped\nLicense: MIT\n"})
	if code, body := upload(t, base, "demo-2.0.zip", zipped, map[string]string{"version": "2.0"}); code != 200 {
		t.Fatalf("upload zip: %d %s", code, body)
	}
	_, body = do(t, "GET", base+"pypi/demo/2.0/json", "", nil)
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info["summary"] != "a demo" || doc.Info["license"] != "MIT" {
		t.Fatalf("info from a zip's PKG-INFO: %s", body)
	}

	// PKG-INFO that names another project or version: 400 with why.
	for name, c := range map[string]struct {
		filename string
		content  []byte
		want     string
	}{
		"other project":      {"demo-3.0.tar.gz", sdistTarGz(t, map[string]string{"demo-3.0/PKG-INFO": "Name: other\nVersion: 3.0\n"}), "PKG-INFO names project"},
		"other version":      {"demo-3.0.tar.gz", sdistTarGz(t, map[string]string{"demo-3.0/PKG-INFO": "Name: demo\nVersion: 3.1\n"}), "PKG-INFO names version"},
		"zip, other version": {"demo-3.0.zip", sdistZip(t, map[string]string{"demo-3.0/PKG-INFO": "Name: demo\nVersion: 4\n"}), "PKG-INFO names version"},
		"too large": {"demo-3.0.tar.gz", sdistTarGz(t, map[string]string{"demo-3.0/PKG-INFO": "Name: demo\nVersion: 3.0\n\n" +
			strings.Repeat("x", 16<<20)}), "too large"},
	} {
		if code, body := upload(t, base, c.filename, c.content, map[string]string{"version": "3.0"}); code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	// An sdist without PKG-INFO, or no archive at all, is refused.
	for name, content := range map[string][]byte{
		"no PKG-INFO": sdistTarGz(t, map[string]string{"demo-4.0/setup.py": ""}),
		"no archive":  []byte("hi\n"),
	} {
		code, body := upload(t, base, "demo-4.0.tar.gz", content, map[string]string{"version": "4.0"})
		if code != 400 || !strings.Contains(body, "is not an sdist") {
			t.Errorf("%s: %d %s, want 400", name, code, body)
		}
	}
}

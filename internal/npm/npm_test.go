package npm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"arca/internal/blob"
)

func TestParsePath(t *testing.T) {
	for _, c := range []struct {
		path string
		want target
		ok   bool
	}{
		{"left-pad", target{name: "left-pad"}, true},
		{"left-pad/1.0.0", target{name: "left-pad", rest: "1.0.0"}, true},
		{"left-pad/latest", target{name: "left-pad", rest: "latest"}, true},
		{"left-pad/-/left-pad-1.0.0.tgz", target{name: "left-pad", rest: "-", file: "left-pad-1.0.0.tgz"}, true},
		{"left-pad/-rev/3-arca", target{name: "left-pad", rev: "3-arca"}, true},
		{"left-pad/-/left-pad-1.0.0.tgz/-rev/3-arca", target{name: "left-pad", rest: "-", file: "left-pad-1.0.0.tgz", rev: "3-arca"}, true},
		{"@scope/pkg", target{name: "@scope/pkg"}, true},
		{"@scope/pkg/2.0.0", target{name: "@scope/pkg", rest: "2.0.0"}, true},
		{"@scope/pkg/-/pkg-2.0.0.tgz", target{name: "@scope/pkg", rest: "-", file: "pkg-2.0.0.tgz"}, true},
		{"", target{}, false},
		{"@scope", target{}, false},
		{"a/b/c", target{}, false},
		{"a/-", target{}, false},
	} {
		got, ok := parsePath(c.path)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parsePath(%q) = %+v, %v; want %+v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, good := range []string{"a", "left-pad", "@scope/pkg", "lodash.merge", "a_b", "~x"} {
		if err := checkName(good); err != nil {
			t.Errorf("checkName(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "Upper", ".hidden", "_under", "has space", "@scope/", "@/x",
		"a/b", "node_modules", "favicon.ico", strings.Repeat("x", 215), "é"} {
		if checkName(bad) == nil {
			t.Errorf("checkName(%q) accepted", bad)
		}
	}
}

func TestClaimsEncodedSlash(t *testing.T) {
	f := &Format{}
	for path, want := range map[string]bool{
		"/@scope%2fpkg":                     true,
		"/@scope%2Fpkg/1.0.0":               true,
		"/-/package/@scope%2fpkg/dist-tags": true,
		"/pkg%2fother":                      false,
		"/@scope/pkg%2fx":                   false,
		"/@scope%2fa%2fb":                   false,
	} {
		if got := f.ClaimsEncodedSlash(path); got != want {
			t.Errorf("ClaimsEncodedSlash(%q) = %v, want %v", path, got, want)
		}
	}
}

// tarball gzips a tar of the given files.
func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestParseBodyStreamsAttachment(t *testing.T) {
	tgz := tarball(t, map[string]string{"package/package.json": `{"name":"x","version":"1.0.0"}`})
	data := base64.StdEncoding.EncodeToString(tgz)
	// An escaped slash, as some JSON encoders write it, and fields after
	// _attachments.
	escaped := strings.ReplaceAll(data, "/", `\/`)
	body := `{"name":"x", "versions":{"1.0.0":{"name":"x"}},
		"_attachments": {"x-1.0.0.tgz": {"content_type":"application/octet-stream","data":"` + escaped +
		`","length":` + strconv.Itoa(len(tgz)) + `}}, "dist-tags":{"latest":"1.0.0"}}`
	var got []byte
	var file string
	fields, n, err := parseBody(strings.NewReader(body), func(f string, _ map[string]json.RawMessage, r io.Reader) error {
		file = f
		var err error
		got, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || file != "x-1.0.0.tgz" || !bytes.Equal(got, tgz) {
		t.Errorf("attachment: n=%d file=%q equal=%v", n, file, bytes.Equal(got, tgz))
	}
	for _, k := range []string{"name", "versions", "dist-tags"} {
		if fields[k] == nil {
			t.Errorf("field %s missing", k)
		}
	}
	var pj struct{ Name, Version string }
	if !readPackageJSON(bytes.NewReader(got), &pj) || pj.Name != "x" || pj.Version != "1.0.0" {
		t.Errorf("package.json: %+v", pj)
	}
}

func TestParseBodyWithoutAttachments(t *testing.T) {
	fields, n, err := parseBody(strings.NewReader(`{"name":"x","versions":{}}`), nil)
	if err != nil || n != 0 || len(fields) != 2 {
		t.Errorf("parseBody: %v, %d, %v", fields, n, err)
	}
	fields, n, err = parseBody(strings.NewReader(`{"name":"x","_attachments":{}}`), nil)
	if err != nil || n != 0 || len(fields) != 1 {
		t.Errorf("parseBody, empty attachments: %v, %d, %v", fields, n, err)
	}
}

func TestParseBodyMalformed(t *testing.T) {
	for _, body := range []string{
		``, `[]`, `{"a":`, `{"_attachments":{"f":{"data":"abc`, `{"_attachments":{"f":{"data":"a\nb"}}}`,
		`{"_attachments":{"f":{"data":"QUJD"}}`,
	} {
		_, _, err := parseBody(strings.NewReader(body), func(f string, _ map[string]json.RawMessage, r io.Reader) error {
			_, err := io.ReadAll(r)
			return err
		})
		if err == nil {
			t.Errorf("parseBody(%q) accepted", body)
		}
	}
}

func TestCheckDigests(t *testing.T) {
	info := blob.Info{Digests: blob.Digests{SHA512: strings.Repeat("ab", 64), SHA1: strings.Repeat("cd", 20)}}
	good := "sha512-" + hexToBase64(info.SHA512)
	for _, c := range []struct {
		dist string
		ok   bool
	}{
		{`{"integrity":"` + good + `","shasum":"` + info.SHA1 + `"}`, true},
		{`{"integrity":"` + good + `"}`, true},
		{`{"shasum":"` + strings.ToUpper(info.SHA1) + `"}`, true},
		{`{"integrity":"sha512-AAAA","shasum":"` + info.SHA1 + `"}`, false},
		{`{"integrity":"` + good + `","shasum":"00"}`, false},
		{`{}`, false},
	} {
		err := checkDigests(manifest{"dist": []byte(c.dist)}, info)
		if (err == nil) != c.ok {
			t.Errorf("checkDigests(%s) = %v, want ok=%v", c.dist, err, c.ok)
		}
	}
}

func TestFixTags(t *testing.T) {
	d := &document{Name: "x", DistTags: map[string]string{"latest": "2.0.0", "beta": "3.0.0-1"},
		Versions: map[string]manifest{"1.0.0": {}, "1.10.0": {}, "1.9.0": {}}}
	d.fixTags()
	if len(d.DistTags) != 1 || d.DistTags["latest"] != "1.10.0" {
		t.Errorf("tags: %v", d.DistTags)
	}
}

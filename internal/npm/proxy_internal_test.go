package npm

import (
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"arca/internal/proxy"
	"arca/internal/repo"
)

func TestDistExpect(t *testing.T) {
	data := []byte("tarball bytes")
	s512, s1 := sha512.Sum512(data), sha1.Sum(data)
	sri512 := "sha512-" + base64.StdEncoding.EncodeToString(s512[:])
	sri1 := "sha1-" + base64.StdEncoding.EncodeToString(s1[:])
	hex512, hex1 := hex.EncodeToString(s512[:]), hex.EncodeToString(s1[:])
	for _, c := range []struct {
		name             string
		dist             string
		sha512, sha1     string
		wantUpstreamFail bool
	}{
		{"integrity", `{"integrity":"` + sri512 + `"}`, hex512, "", false},
		{"shasum", `{"shasum":"` + hex1 + `"}`, "", hex1, false},
		{"both", `{"integrity":"` + sri512 + `","shasum":"` + hex1 + `"}`, hex512, hex1, false},
		{"sri list with options", `{"integrity":"` + sri1 + " " + sri512 + `?opt"}`, hex512, hex1, false},
		{"unknown algorithm ignored", `{"integrity":"sha384-abc"}`, "", "", false},
		{"nothing", `{}`, "", "", false},
		{"malformed integrity", `{"integrity":"sha512-!!"}`, "", "", true},
		{"short integrity", `{"integrity":"sha512-` + base64.StdEncoding.EncodeToString(s1[:]) + `"}`, "", "", true},
		{"malformed shasum", `{"shasum":"xyz"}`, "", "", true},
		{"disagreeing digests", `{"integrity":"` + sri1 + `","shasum":"` + hex.EncodeToString(make([]byte, 20)) + `"}`, "", "", true},
	} {
		got, err := distExpect(manifest{"dist": json.RawMessage(c.dist)})
		if c.wantUpstreamFail {
			if !errors.Is(err, proxy.ErrUpstream) {
				t.Errorf("%s: %v, want an upstream error", c.name, err)
			}
			continue
		}
		if err != nil || got.SHA512 != c.sha512 || got.SHA1 != c.sha1 || got.Size != -1 {
			t.Errorf("%s: %+v %v", c.name, got, err)
		}
	}
}

func TestDecodeUpstream(t *testing.T) {
	// An unpublished package: "time" holds an object, there are no
	// versions; it decodes, and the proxy answers 404 for it.
	p, err := decodeUpstream([]byte(`{"name":"gone","time":{"modified":"2020-01-01T00:00:00.000Z",
		"unpublished":{"time":"2020-01-01T00:00:00.000Z","versions":["1.0.0"]}}}`), "gone")
	if err != nil || len(p.versions) != 0 || p.modified != "2020-01-01T00:00:00.000Z" {
		t.Fatalf("unpublished: %+v %v", p, err)
	}
	for _, bad := range []string{`[]`, `not json`, `{"versions":[1]}`} {
		if _, err := decodeUpstream([]byte(bad), "x"); !errors.Is(err, proxy.ErrUpstream) {
			t.Errorf("%s: %v, want an upstream error", bad, err)
		}
	}

	p, err = decodeUpstream([]byte(`{"_id":"@s/a","name":"@s/a","custom":{"kept":true},
		"dist-tags":{"latest":"1.0.0"},
		"versions":{"1.0.0":{"name":"@s/a","version":"1.0.0","readme":"long","scripts":{"install":"x"},
			"dist":{"tarball":"https://upstream.example/@s/a/-/a-1.0.0.tgz","shasum":"00"}}}}`), "@s/a")
	if err != nil {
		t.Fatal(err)
	}
	if v, _, ok := p.version("latest"); !ok || v != "1.0.0" {
		t.Errorf("latest resolves to %q %t", v, ok)
	}
	if v, _, ok := p.byFile("a-1.0.0.tgz"); !ok || v != "1.0.0" {
		t.Errorf("byFile: %q %t", v, ok)
	}
	full, err := p.rewrite("http://arca/repository/p/", false)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Custom   map[string]bool `json:"custom"`
		Versions map[string]struct {
			Readme string `json:"readme"`
			Dist   struct {
				Tarball, Shasum string
			} `json:"dist"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(full, &doc); err != nil {
		t.Fatal(err)
	}
	v := doc.Versions["1.0.0"]
	if !doc.Custom["kept"] || v.Readme != "long" || v.Dist.Tarball != "http://arca/repository/p/@s/a/-/a-1.0.0.tgz" || v.Dist.Shasum != "00" {
		t.Errorf("full rewrite: %s", full)
	}
	small, err := p.rewrite("http://arca/repository/p/", true)
	if err != nil {
		t.Fatal(err)
	}
	var abbr map[string]map[string]map[string]any
	json.Unmarshal(small, &abbr) //nolint:errcheck // checked below
	if m := abbr["versions"]["1.0.0"]; m == nil || m["readme"] != nil || m["hasInstallScript"] != true {
		t.Errorf("abbreviated rewrite: %s", small)
	}

	// Tarball links are resolved against the upstream, and only http(s)
	// is followed.
	settings := repo.ProxySettings{URL: "http://up.example/repository/js/"}
	for link, want := range map[string]string{
		"":                      "",
		"a/-/a-1.0.0.tgz":       "http://up.example/repository/js/a/-/a-1.0.0.tgz",
		"/files/a-1.0.0.tgz":    "http://up.example/files/a-1.0.0.tgz",
		"https://cdn/a-1.0.tgz": "https://cdn/a-1.0.tgz",
	} {
		dist, _ := json.Marshal(map[string]string{"tarball": link})
		got, err := upstreamTarballURL(settings, manifest{"dist": dist})
		if err != nil || got != want {
			t.Errorf("tarball %q: %q %v, want %q", link, got, err, want)
		}
	}
	dist, _ := json.Marshal(map[string]string{"tarball": "file:///etc/passwd"})
	if _, err := upstreamTarballURL(settings, manifest{"dist": dist}); !errors.Is(err, proxy.ErrUpstream) {
		t.Errorf("file: link: %v, want an upstream error", err)
	}
}

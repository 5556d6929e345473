package pypi

import "testing"

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"My_Cool.Pkg": "my-cool-pkg", "a": "a", "A--B__c..D": "a-b-c-d", "foo.-_bar": "foo-bar",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{"a": true, "a-b": true, "My_Cool.Pkg": true, "-a": false, "a-": false, "": false, "a b": false, "ä": false} {
		if got := ValidProject(in); got != want {
			t.Errorf("ValidProject(%q) = %t", in, got)
		}
	}
}

func TestVersions(t *testing.T) {
	for in, want := range map[string]string{
		"1":                "1",
		"1.0":              "1.0",
		"01.002":           "1.2",
		"v1.0":             "1.0",
		"1!2.0":            "1!2.0",
		"0!2.0":            "2.0",
		"1.0a1":            "1.0a1",
		"1.0-ALPHA.1":      "1.0a1",
		"1.0beta":          "1.0b0",
		"1.0c2":            "1.0rc2",
		"1.0pre3":          "1.0rc3",
		"1.0preview3":      "1.0rc3",
		"1.0RC1":           "1.0rc1",
		"1.0-1":            "1.0.post1",
		"1.0.post":         "1.0.post0",
		"1.0-r4":           "1.0.post4",
		"1.0rev":           "1.0.post0",
		"1.0.dev":          "1.0.dev0",
		"1.0_dev_7":        "1.0.dev7",
		"1.0a1.post2.dev3": "1.0a1.post2.dev3",
		"1.0+Ubuntu-1":     "1.0+ubuntu.1",
		"1.0+abc.007":      "1.0+abc.7",
		" 1.0 ":            "1.0",
		"2026.12.3":        "2026.12.3",
	} {
		got, err := NormalizeVersion(in)
		if err != nil || got != want {
			t.Errorf("NormalizeVersion(%q) = %q, %v, want %q", in, got, err, want)
		}
		if !ValidVersion(in) {
			t.Errorf("ValidVersion(%q) = false", in)
		}
	}
	for _, in := range []string{"", "a", "1.", ".1", "1..0", "1.0-", "1.0+", "1.0+a..b", "1.0alpha-beta", "1.0 1", "1.0/1", "1,0", "latest", "1.0+_a", "1.0.x"} {
		if ValidVersion(in) {
			t.Errorf("ValidVersion(%q) = true", in)
		}
		if _, err := NormalizeVersion(in); err == nil {
			t.Errorf("NormalizeVersion(%q) succeeded", in)
		}
	}
}

func TestParseFilename(t *testing.T) {
	for in, want := range map[string]Dist{
		"My_Cool.Pkg-1.0-py3-none-any.whl":                                       {"My_Cool.Pkg", "1.0", "bdist_wheel"},
		"demo-0.1.0-1-py3-none-any.whl":                                          {"demo", "0.1.0", "bdist_wheel"},
		"numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": {"numpy", "2.0.0", "bdist_wheel"},
		"demo-0.1.0.tar.gz":                                                      {"demo", "0.1.0", "sdist"},
		"my-pkg-1.0rc1.tar.gz":                                                   {"my-pkg", "1.0rc1", "sdist"},
		"my_cool.pkg-1.0.zip":                                                    {"my_cool.pkg", "1.0", "sdist"},
	} {
		got, err := ParseFilename(in)
		if err != nil || got != want {
			t.Errorf("ParseFilename(%q) = %+v, %v, want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "demo.whl", "demo-1.0.whl", "demo-1.0-py3-none.whl", "demo-1.0-x-py3-none-any.whl",
		"demo-1.0-1-2-py3-none-any.whl", "demo-x.y-py3-none-any.whl", "demo-1.0.tar.bz2", "demo.tar.gz", "-1.0.tar.gz",
		"../demo-1.0.tar.gz", "a/demo-1.0.tar.gz", ".demo-1.0.zip", "de mo-1.0.zip", "demo-1.0--py3-none-any.whl"} {
		if d, err := ParseFilename(in); err == nil {
			t.Errorf("ParseFilename(%q) = %+v, want an error", in, d)
		}
	}
}

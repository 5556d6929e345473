package pypi

import (
	"fmt"
	"regexp"
	"strings"
)

// validProject is a valid project name (PEP 508 / core metadata "Name").
var validProject = regexp.MustCompile(`(?i)^([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$`)

var separators = regexp.MustCompile(`[-_.]+`)

// Normalize is a project name normalized as PEP 503 says: lower case, each
// run of "-", "_" and "." one "-".
func Normalize(name string) string {
	return separators.ReplaceAllString(strings.ToLower(name), "-")
}

// ValidProject reports whether name is a valid project name.
func ValidProject(name string) bool {
	return validProject.MatchString(name)
}

// versionPattern is PEP 440's permissive version syntax, as the packaging
// library spells it, case-insensitive.
var versionPattern = regexp.MustCompile(`(?i)^\s*v?` +
	`(?:(?P<epoch>[0-9]+)!)?` +
	`(?P<release>[0-9]+(?:\.[0-9]+)*)` +
	`(?P<pre>[-_.]?(?P<pre_l>alpha|beta|preview|pre|a|b|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?` +
	`(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?` +
	`(?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?` +
	`(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$`)

// ValidVersion reports whether v is a valid PEP 440 version.
func ValidVersion(v string) bool {
	return versionPattern.MatchString(v)
}

// NormalizeVersion returns v in PEP 440's normal form ("1.0-RC.1" is
// "1.0rc1", "v2-r" is "2.post0"), or an error when v is not a PEP 440
// version. Release numbers keep their trailing zeros: "1.0" and "1.0.0"
// stay different spellings.
func NormalizeVersion(v string) (string, error) {
	m := versionPattern.FindStringSubmatch(v)
	if m == nil {
		return "", fmt.Errorf("%q is not a valid PEP 440 version", v)
	}
	g := func(name string) string { return m[versionPattern.SubexpIndex(name)] }
	var b strings.Builder
	if e := number(g("epoch")); e != "" && e != "0" {
		b.WriteString(e + "!")
	}
	for i, part := range strings.Split(g("release"), ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(number(part))
	}
	if g("pre") != "" {
		l := strings.ToLower(g("pre_l"))
		switch l {
		case "alpha":
			l = "a"
		case "beta":
			l = "b"
		case "c", "pre", "preview":
			l = "rc"
		}
		b.WriteString(l + numberOr0(g("pre_n")))
	}
	if g("post") != "" {
		b.WriteString(".post" + numberOr0(g("post_n1")+g("post_n2")))
	}
	if g("dev") != "" {
		b.WriteString(".dev" + numberOr0(g("dev_n")))
	}
	if l := g("local"); l != "" {
		parts := separators.Split(strings.ToLower(l), -1)
		for i, p := range parts {
			if strings.Trim(p, "0123456789") == "" {
				parts[i] = number(p)
			}
		}
		b.WriteString("+" + strings.Join(parts, "."))
	}
	return b.String(), nil
}

// number drops a decimal number's leading zeros.
func number(s string) string {
	if s == "" {
		return ""
	}
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

func numberOr0(s string) string {
	if s == "" {
		return "0"
	}
	return number(s)
}

// Dist is what a distribution's file name says.
type Dist struct {
	// Name is the project name as spelled in the file name.
	Name    string
	Version string
	// Kind is "bdist_wheel" or "sdist", as twine's filetype field says.
	Kind string
}

// sdistExts are the source distribution extensions accepted.
var sdistExts = []string{".tar.gz", ".zip"}

// ParseFilename parses a wheel name (name-version[-build]-python-abi-
// platform.whl, per the binary distribution format) or an sdist name
// (name-version.tar.gz or .zip). Names need not be normalized.
func ParseFilename(filename string) (Dist, error) {
	bad := func(why string) (Dist, error) {
		return Dist{}, fmt.Errorf("invalid distribution file name %q: %s", filename, why)
	}
	if filename == "" || strings.ContainsAny(filename, "/\\") || strings.HasPrefix(filename, ".") {
		return bad("not a plain file name")
	}
	if base, ok := strings.CutSuffix(filename, ".whl"); ok {
		parts := strings.Split(base, "-")
		if len(parts) != 5 && len(parts) != 6 {
			return bad("a wheel name has 5 or 6 dash-separated parts")
		}
		for _, p := range parts {
			if p == "" {
				return bad("empty part")
			}
		}
		if len(parts) == 6 && (parts[2][0] < '0' || parts[2][0] > '9') {
			return bad("a build tag starts with a digit")
		}
		d := Dist{Name: parts[0], Version: parts[1], Kind: "bdist_wheel"}
		return checkDist(d, bad)
	}
	for _, ext := range sdistExts {
		if base, ok := strings.CutSuffix(filename, ext); ok {
			i := strings.LastIndexByte(base, '-')
			if i <= 0 {
				return bad("an sdist name is name-version" + ext)
			}
			d := Dist{Name: base[:i], Version: base[i+1:], Kind: "sdist"}
			return checkDist(d, bad)
		}
	}
	return bad("not a wheel (.whl) or an sdist (.tar.gz, .zip)")
}

func checkDist(d Dist, bad func(string) (Dist, error)) (Dist, error) {
	if !ValidProject(d.Name) {
		return bad("invalid project name " + d.Name)
	}
	if !ValidVersion(d.Version) {
		return bad("invalid PEP 440 version " + d.Version)
	}
	return d, nil
}

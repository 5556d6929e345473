package pypi

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"arca/internal/repo"
)

// versionKey is a PEP 440 version in a form that sorts as PEP 440 says.
type versionKey struct {
	epoch   int64
	release []int64
	// pre is the pre-release phase (a=0, b=1, rc=2) and number; a final
	// release sorts after every pre-release, a dev-only release before.
	prePhase, preN int64
	post           int64 // -1 when absent
	dev            int64 // MaxInt64 when absent
	local          string
}

func num(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if s == "" {
			return 0
		}
		return math.MaxInt64
	}
	return n
}

// parseVersionKey returns the key of a version, false when it is not PEP
// 440.
func parseVersionKey(v string) (versionKey, bool) {
	m := versionPattern.FindStringSubmatch(v)
	if m == nil {
		return versionKey{}, false
	}
	g := func(name string) string { return m[versionPattern.SubexpIndex(name)] }
	k := versionKey{epoch: num(g("epoch")), post: -1, dev: math.MaxInt64, local: strings.ToLower(g("local"))}
	for _, part := range strings.Split(g("release"), ".") {
		k.release = append(k.release, num(part))
	}
	for len(k.release) > 1 && k.release[len(k.release)-1] == 0 {
		k.release = k.release[:len(k.release)-1]
	}
	switch {
	case g("pre") != "":
		switch strings.ToLower(g("pre_l")) {
		case "a", "alpha":
			k.prePhase = 0
		case "b", "beta":
			k.prePhase = 1
		default:
			k.prePhase = 2
		}
		k.preN = num(g("pre_n"))
	case g("post") == "" && g("dev") != "":
		k.prePhase = -1
	default:
		k.prePhase = 3
	}
	if g("post") != "" {
		k.post = num(g("post_n1") + g("post_n2"))
	}
	if g("dev") != "" {
		k.dev = num(g("dev_n"))
	}
	return k, true
}

// compareVersions orders two PEP 440 versions; versions that do not parse
// sort first, by their text.
func compareVersions(a, b string) int {
	ka, oka := parseVersionKey(a)
	kb, okb := parseVersionKey(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	if c := cmp.Compare(ka.epoch, kb.epoch); c != 0 {
		return c
	}
	if c := slices.Compare(ka.release, kb.release); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.prePhase, kb.prePhase); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.preN, kb.preN); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.post, kb.post); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.dev, kb.dev); c != 0 {
		return c
	}
	return strings.Compare(ka.local, kb.local)
}

// isPreRelease reports whether a version is a pre- or dev release.
func isPreRelease(v string) bool {
	k, ok := parseVersionKey(v)
	return ok && (k.prePhase < 3 || k.dev != math.MaxInt64)
}

// ReleaseVersion returns the stored version of a normalized project that
// is the same PEP 440 version as v ("2.0.0" finds "2.0"), or v normalized
// when none is.
func ReleaseVersion(files []repo.PyPIFile, v string) (string, error) {
	norm, err := NormalizeVersion(v)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if f.Version == norm {
			return norm, nil
		}
	}
	for _, f := range files {
		if compareVersions(f.Version, norm) == 0 {
			return f.Version, nil
		}
	}
	return norm, nil
}

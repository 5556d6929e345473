package oci

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"arca/internal/blob"
)

// kind is what a path under an image addresses.
type kind int

const (
	kindNone        kind = iota // no image: /v2/, /v2/_catalog, a bad path
	kindManifest                // <name>/manifests/<reference>
	kindBlob                    // <name>/blobs/<digest>
	kindUploadStart             // <name>/blobs/uploads/
	kindUpload                  // <name>/blobs/uploads/<id>
	kindTags                    // <name>/tags/list
	kindReferrers               // <name>/referrers/<digest>
)

// target is a parsed path relative to the repository.
type target struct {
	kind  kind
	image string
	// ref is the manifest reference, blob or subject digest, or upload id.
	ref string
}

// namePattern is the distribution-spec grammar of a repository name, which
// in arca is the image name inside an arca repository.
var namePattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// tagPattern is the distribution-spec grammar of a tag.
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// maxNameLength bounds "<repository>/<image>", as the clients' references
// do.
const maxNameLength = 255

// parsePath splits a path relative to the repository into the image name
// and what it addresses. The name may contain slashes, so the endpoint is
// read from the end. It does not validate the name.
func parsePath(p string) (target, bool) {
	segs := strings.Split(p, "/")
	n := len(segs)
	join := func(k int) string { return strings.Join(segs[:n-k], "/") }
	switch {
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			return target{kind: kindUploadStart, image: join(3)}, true
		}
		return target{kind: kindUpload, image: join(3), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return target{kind: kindUploadStart, image: join(2)}, true
	case n >= 3 && segs[n-2] == "manifests":
		return target{kind: kindManifest, image: join(2), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "blobs":
		return target{kind: kindBlob, image: join(2), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return target{kind: kindTags, image: join(2)}, true
	case n >= 3 && segs[n-2] == "referrers":
		return target{kind: kindReferrers, image: join(2), ref: segs[n-1]}, true
	}
	return target{}, false
}

// checkName validates an image name of repository repoName.
func checkName(repoName, image string) error {
	if image == "" || !namePattern.MatchString(image) {
		return ociErr(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q", image)
	}
	if len(repoName)+1+len(image) > maxNameLength {
		return ociErr(http.StatusBadRequest, codeNameInvalid,
			"repository name %s/%s is longer than %d characters", repoName, image, maxNameLength)
	}
	return nil
}

// digest is a parsed content digest.
type digest struct {
	alg blob.Algorithm
	hex string
}

func (d digest) String() string { return string(d.alg) + ":" + d.hex }

// expect is what the blob store must check for bytes with this digest.
func (d digest) expect() blob.Expect {
	want := blob.NoExpectation
	switch d.alg {
	case blob.SHA256:
		want.SHA256 = d.hex
	case blob.SHA512:
		want.SHA512 = d.hex
	}
	return want
}

// digestGrammar is the image-spec's digest grammar; only sha256 and sha512
// are supported among the digests it allows.
var digestGrammar = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// parseDigest reads a digest of a supported algorithm. supported is false
// for a well-formed digest of another algorithm.
func parseDigest(s string) (d digest, supported bool, err error) {
	if !digestGrammar.MatchString(s) {
		return d, false, fmt.Errorf("invalid digest %q", s)
	}
	alg, hex, _ := strings.Cut(s, ":")
	switch blob.Algorithm(alg) {
	case blob.SHA256, blob.SHA512:
	default:
		return digest{alg: blob.Algorithm(alg), hex: hex}, false, nil
	}
	if !blob.ValidHex(blob.Algorithm(alg), hex) {
		return d, false, fmt.Errorf("invalid %s digest %q", alg, s)
	}
	return digest{alg: blob.Algorithm(alg), hex: hex}, true, nil
}

// digestOf parses a digest that must be supported, as an OCI error.
func digestOf(s string) (digest, error) {
	d, ok, err := parseDigest(s)
	switch {
	case err != nil:
		return d, ociErr(http.StatusBadRequest, codeDigestInvalid, "%s", err.Error())
	case !ok:
		return d, ociErr(http.StatusBadRequest, codeDigestInvalid,
			"digest algorithm %q is not supported: use sha256 or sha512", d.alg)
	}
	return d, nil
}

// describe recovers the repository and target of a request from its
// original URI, for error writing, which sees only the *http.Request.
func describe(r *http.Request) (repoName string, t target) {
	p := r.URL.Path
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			p = u.Path
		}
	}
	for _, prefix := range []string{Prefix, "/repository/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			repoName, rest, _ = strings.Cut(rest, "/")
			t, _ = parsePath(rest)
			return repoName, t
		}
	}
	return "", target{}
}

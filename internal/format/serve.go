package format

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"arca/internal/blob"
	"arca/internal/repo"
)

// ServeAsset answers GET and HEAD of a stored asset: its checksums
// (X-Checksum-Sha256, -Sha1, -Md5), the SHA-256 as ETag, and through
// http.ServeContent Range (206, 416) and conditional requests (304). The
// body is copied with io.Copy, so a file reaches sendfile. A Content-Type
// the caller set first wins over the stored one. A GET is noted as a
// download for cleanup policies.
func ServeAsset(w http.ResponseWriter, r *Request, repos *repo.Service, a repo.Asset) error {
	body, err := repos.Open(r.Context(), a)
	if err != nil {
		return err
	}
	defer body.Close()
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", a.ContentType)
	}
	h.Set("ETag", `"`+a.Blob.SHA256+`"`)
	h.Set("X-Checksum-Sha256", a.Blob.SHA256)
	h.Set("X-Checksum-Sha1", a.Blob.SHA1)
	h.Set("X-Checksum-Md5", a.Blob.MD5)
	http.ServeContent(w, r.Request, path.Base(a.Path), a.UpdatedAt, body)
	if r.Method == http.MethodGet {
		repos.Downloaded(a)
	}
	return nil
}

// digestHeaders are the upload headers in which a client may announce the
// digests of the body it sends.
var digestHeaders = map[string]blob.Algorithm{
	"X-Checksum-Sha256": blob.SHA256,
	"X-Checksum-Sha1":   blob.SHA1,
	"X-Checksum-Md5":    blob.MD5,
}

// AnnouncedDigests reads the X-Checksum-* headers of an upload into an
// expectation to check the body against; a malformed digest wraps
// repo.ErrInvalid. The size is left unchecked.
func AnnouncedDigests(h http.Header) (blob.Expect, error) {
	want := blob.NoExpectation
	for name, alg := range digestHeaders {
		v := strings.ToLower(strings.TrimSpace(h.Get(name)))
		if v == "" {
			continue
		}
		if !blob.ValidHex(alg, v) {
			return want, fmt.Errorf("%w: %s is not a %s hex digest", repo.ErrInvalid, name, alg)
		}
		switch alg {
		case blob.SHA256:
			want.SHA256 = v
		case blob.SHA1:
			want.SHA1 = v
		case blob.MD5:
			want.MD5 = v
		}
	}
	return want, nil
}

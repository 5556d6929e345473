package format

import (
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"

	"arca/internal/blob"
	"arca/internal/proxy"
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

// ServeProxied answers GET and HEAD of what a proxy repository's cache
// returned: a cached asset as ServeAsset does, or a download in flight,
// streamed as it arrives. If the download fails midway the response is
// aborted, so that the client sees a broken transfer rather than a short
// file.
func ServeProxied(w http.ResponseWriter, r *Request, repos *repo.Service, resp proxy.Response) error {
	if resp.Asset != nil {
		return ServeAsset(w, r, repos, *resp.Asset)
	}
	defer resp.Body.Close()
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", resp.ContentType)
	}
	if resp.Size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.Size, 10))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, resp.Body); err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

package oci

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/repo"
)

// getBlob serves a blob linked to the image, with Range support; HEAD
// answers its headers only.
func (f *Format) getBlob(w http.ResponseWriter, r *format.Request, t target) error {
	d, err := digestOf(t.ref)
	if err != nil {
		return err
	}
	info, err := f.repos.OCIBlob(r.Context(), r.Repo, t.image, d.alg, d.hex)
	if errorIs(err, repo.ErrNotFound) {
		return ociErr(http.StatusNotFound, codeBlobUnknown, "blob %s is unknown to %s", d, t.image)
	}
	if err != nil {
		return err
	}
	body, err := f.repos.OpenBlob(r.Context(), info.SHA256)
	if err != nil {
		return err
	}
	defer body.Close()
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	// ServeContent answers Range (206, 416), If-None-Match (304) and HEAD,
	// and copies with io.Copy so that a file reaches sendfile.
	http.ServeContent(w, r.Request, "", time.Time{}, body)
	return nil
}

// deleteBlob removes the image's link to a blob; the bytes stay while
// anything else uses them, and garbage collection frees them after.
func (f *Format) deleteBlob(w http.ResponseWriter, r *format.Request, t target) error {
	d, err := digestOf(t.ref)
	if err != nil {
		return err
	}
	unknown := ociErr(http.StatusNotFound, codeBlobUnknown, "blob %s is unknown to %s", d, t.image)
	info, err := f.repos.FindBlob(r.Context(), d.alg, d.hex)
	if errorIs(err, repo.ErrNotFound) {
		return unknown
	}
	if err != nil {
		return err
	}
	err = f.repos.DeleteOCIBlob(r.Context(), r.Repo, t.image, info.SHA256)
	if errorIs(err, repo.ErrNotFound) {
		return unknown
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// startUpload answers POST <name>/blobs/uploads/: a cross-repository mount
// (?mount=), a monolithic upload (?digest= with the body), or the start of
// a resumable session (202 with its Location).
func (f *Format) startUpload(w http.ResponseWriter, r *format.Request, t target) error {
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := digestOf(m)
		if err != nil {
			return err
		}
		mounted, err := f.mount(w, r, t.image, d, q.Get("from"))
		if err != nil {
			return err
		}
		if mounted {
			return created(w, r, t.image, d)
		}
		// Not mountable: a normal session, as the spec asks.
	}
	if dg := q.Get("digest"); dg != "" {
		d, err := digestOf(dg)
		if err != nil {
			return err
		}
		if _, err := f.repos.PutOCIBlob(r.Context(), r.Repo, t.image, r.Body, d.expect()); err != nil {
			return blobErr(err, d)
		}
		return created(w, r, t.image, d)
	}
	f.expireUploads(r.Context())
	id, err := f.repos.StartOCIUpload(r.Context(), r.Repo, t.image)
	if err != nil {
		return err
	}
	return progress(w, r, t.image, id, 0, http.StatusAccepted)
}

// mount links the blob d to the image from an image the caller may read:
// from, as "<repository>/<image>" or an image of this repository, or, when
// from is empty, any image holding the blob. It reports false when none
// can lend it. When the user may read a source but their registry token
// does not cover it, it fails with a 401 whose challenge adds the source's
// scope, as Distribution does, so that the client fetches a token for both.
func (f *Format) mount(w http.ResponseWriter, r *format.Request, image string, d digest, from string) (bool, error) {
	ctx := r.Context()
	info, err := f.repos.FindBlob(ctx, d.alg, d.hex)
	if errorIs(err, repo.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	type source struct {
		repo  *repo.Repository
		image string
		// via is the group the client named the source by, "" for none.
		via string
	}
	var sources []source
	if from != "" {
		if first, rest, ok := strings.Cut(from, "/"); ok {
			src, err := f.repos.Get(ctx, first)
			switch {
			case err != nil || src.Format != f.ID():
			case src.Type == repo.Group:
				// A group holds nothing itself: its members lend the blob,
				// each read as through the group.
				members, err := f.catalogMembers(ctx, r.User, src, 0)
				if err != nil {
					return false, err
				}
				for _, m := range members {
					sources = append(sources, source{m, rest, src.Name})
				}
			default:
				sources = append(sources, source{src, rest, ""})
			}
		}
		sources = append(sources, source{r.Repo, from, ""})
	} else {
		holders, err := f.repos.OCIBlobHolders(ctx, info.SHA256, 100)
		if err != nil {
			return false, err
		}
		for _, h := range holders {
			if src, err := f.repos.Get(ctx, h.Repository); err == nil {
				sources = append(sources, source{src, h.Image, ""})
			}
		}
	}
	var upgrade []string
	for _, s := range sources {
		if checkName(s.repo.Name, s.image) != nil {
			continue
		}
		target := auth.Target{Repository: s.repo.Name, AnonymousRead: s.repo.AnonymousRead, Via: s.via}
		if err := auth.Authorize(r.User, target, auth.Read); err != nil {
			if errorIs(err, auth.ErrUnauthenticated) && r.User != nil && (r.User.Admin || r.User.Can(s.repo.Name, auth.Read)) {
				// The user may read the source but the registry token does
				// not say so: the client should ask for a token that does.
				upgrade = append(upgrade, "repository:"+cmp.Or(s.via, s.repo.Name)+"/"+s.image+":pull")
			}
			continue
		}
		_, err := f.repos.MountOCIBlob(ctx, r.Repo, image, info.SHA256, s.repo, s.image)
		if errorIs(err, repo.ErrNotFound) {
			continue
		}
		return err == nil, err
	}
	if len(upgrade) > 0 {
		w.Header().Set(extraScopeHeader, upgrade[0])
		return false, fmt.Errorf("%w: the token does not grant pull on %s", auth.ErrUnauthenticated,
			strings.TrimPrefix(strings.TrimSuffix(upgrade[0], ":pull"), "repository:"))
	}
	return false, nil
}

// uploadStatus answers GET on an upload session: 204 with its progress.
func (f *Format) uploadStatus(w http.ResponseWriter, r *format.Request, t target) error {
	size, err := f.repos.OCIUploadSize(r.Context(), r.Repo, t.image, t.ref)
	if err != nil {
		return uploadErr(err, t.ref)
	}
	return progress(w, r, t.image, t.ref, size, http.StatusNoContent)
}

// appendUpload answers PATCH: the body is the next chunk, at the offset of
// Content-Range when given (416 when it does not continue the session),
// else at the end (a streamed upload).
func (f *Format) appendUpload(w http.ResponseWriter, r *format.Request, t target) error {
	unlock := f.lockSession(t.ref)
	defer unlock()
	size, err := f.appendChunk(w, r, t)
	if err != nil {
		return err
	}
	return progress(w, r, t.image, t.ref, size, http.StatusAccepted)
}

// appendChunk appends the request's body to the session and returns its
// new size.
func (f *Format) appendChunk(w http.ResponseWriter, r *format.Request, t target) (int64, error) {
	offset := int64(-1)
	var body io.Reader = r.Body
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, ok := parseContentRange(cr)
		if !ok {
			return 0, f.rangeErr(w, r, t, "Content-Range %q is not <start>-<end>", cr)
		}
		n := end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != n {
			return 0, f.rangeErr(w, r, t, "Content-Range %q announces %d bytes, Content-Length %d", cr, n, r.ContentLength)
		}
		offset, body = start, io.LimitReader(r.Body, n)
	}
	size, err := f.repos.AppendOCIUpload(r.Context(), r.Repo, t.image, t.ref, offset, body)
	if errorIs(err, blob.ErrOffset) {
		return 0, f.rangeErr(w, r, t, "the chunk starts at %d, the upload holds %d bytes", offset, size)
	}
	if err != nil {
		return 0, uploadErr(err, t.ref)
	}
	return size, nil
}

// rangeErr is the 416 of a chunk that does not continue the session. Its
// headers tell the client where the session stands, so that it can resume.
func (f *Format) rangeErr(w http.ResponseWriter, r *format.Request, t target, msg string, args ...any) error {
	if size, err := f.repos.OCIUploadSize(r.Context(), r.Repo, t.image, t.ref); err == nil {
		h := w.Header()
		h.Set("Location", absolute(r, imageURL(r, t.image)+"/blobs/uploads/"+t.ref))
		h.Set("Docker-Upload-UUID", t.ref)
		h.Set("Range", "0-"+strconv.FormatInt(endOfRange(size), 10))
	}
	return ociErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, msg, args...)
}

// finishUpload answers PUT ?digest= on a session: an optional last chunk,
// then the commit, checked against the digest.
func (f *Format) finishUpload(w http.ResponseWriter, r *format.Request, t target) error {
	dg := r.URL.Query().Get("digest")
	if dg == "" {
		return ociErr(http.StatusBadRequest, codeDigestInvalid, "the digest parameter is missing")
	}
	d, err := digestOf(dg)
	if err != nil {
		return err
	}
	unlock := f.lockSession(t.ref)
	defer unlock()
	if r.ContentLength != 0 {
		if _, err := f.appendChunk(w, r, t); err != nil {
			return err
		}
	}
	if _, err := f.repos.CommitOCIUpload(r.Context(), r.Repo, t.image, t.ref, d.expect()); err != nil {
		return uploadErr(blobErr(err, d), t.ref)
	}
	return created(w, r, t.image, d)
}

// cancelUpload answers DELETE on a session.
func (f *Format) cancelUpload(w http.ResponseWriter, r *format.Request, t target) error {
	unlock := f.lockSession(t.ref)
	defer unlock()
	if err := f.repos.CancelOCIUpload(r.Context(), r.Repo, t.image, t.ref); err != nil {
		return uploadErr(err, t.ref)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// created answers a blob now linked to the image.
func created(w http.ResponseWriter, r *format.Request, image string, d digest) error {
	h := w.Header()
	h.Set("Location", absolute(r, imageURL(r, image)+"/blobs/"+d.String()))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// progress answers where an upload session stands.
func progress(w http.ResponseWriter, r *format.Request, image, id string, size int64, status int) error {
	h := w.Header()
	h.Set("Location", absolute(r, imageURL(r, image)+"/blobs/uploads/"+id))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Range", "0-"+strconv.FormatInt(endOfRange(size), 10))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

// endOfRange is the last byte of a session of size bytes as the Range
// header writes it, 0 for an empty session as registries have always
// answered.
func endOfRange(size int64) int64 { return max(size-1, 0) }

// parseContentRange reads "<start>-<end>", inclusive, as the spec writes
// it; a "bytes " or "bytes=" unit is tolerated.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "bytes="), "bytes ")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// blobErr turns a digest mismatch into DIGEST_INVALID.
func blobErr(err error, d digest) error {
	if errorIs(err, blob.ErrDigestMismatch) {
		return ociErr(http.StatusBadRequest, codeDigestInvalid, "the content does not match %s: %v", d, err)
	}
	return err
}

// uploadErr turns an unknown session into BLOB_UPLOAD_UNKNOWN.
func uploadErr(err error, id string) error {
	if errorIs(err, repo.ErrNotFound) {
		return ociErr(http.StatusNotFound, codeBlobUploadUnknown, "upload %s is unknown", id)
	}
	return err
}

// lockSession serializes the requests on one upload session.
func (f *Format) lockSession(id string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(id))
	mu := &f.sessions[h.Sum32()%uint32(len(f.sessions))]
	mu.Lock()
	var once sync.Once
	return func() { once.Do(mu.Unlock) }
}

// expireUploads drops, at most hourly, the records of upload sessions
// nobody finished or cancelled.
func (f *Format) expireUploads(ctx context.Context) {
	now := time.Now()
	last := f.lastExpiry.Load()
	if now.Unix()-last < 3600 || !f.lastExpiry.CompareAndSwap(last, now.Unix()) {
		return
	}
	f.repos.ExpireOCIUploads(ctx, now.Add(-uploadRecordTTL)) //nolint:errcheck // best effort, retried later
}

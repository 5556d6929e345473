package oci

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"arca/internal/format"
)

// The distribution-spec's error codes.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	// codePaginationInvalid is Distribution's, for a bad "n".
	codePaginationInvalid = "PAGINATION_NUMBER_INVALID"
)

// extraScopeHeader is how a handler that fails with a 401 tells WriteError
// the scopes its challenge must add to the request's own. It is removed
// before the response is written.
const extraScopeHeader = "X-Arca-Oci-Extra-Scope"

// specCodes are the codes WriteError passes through unchanged.
var specCodes = map[string]bool{
	codeBlobUnknown: true, codeBlobUploadInvalid: true, codeBlobUploadUnknown: true,
	codeDigestInvalid: true, codeManifestBlobUnknown: true, codeManifestInvalid: true,
	codeManifestUnknown: true, codeNameInvalid: true, codeNameUnknown: true,
	codeSizeInvalid: true, codeUnauthorized: true, codeDenied: true, codeUnsupported: true,
	codeTooManyRequests: true, codePaginationInvalid: true,
}

// ociErr is a handler's error with its distribution-spec code.
func ociErr(status int, code, msg string, args ...any) *format.Error {
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	return &format.Error{Status: status, Code: code, Message: msg}
}

// errorItem is one entry of the spec's error document.
type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// WriteError writes the distribution-spec's error document,
// {"errors":[{"code":"...","message":"..."}]}, translating the edge's
// generic codes into the spec's for the endpoint addressed. On a 401 it
// sets the Bearer challenge that sends clients to the token endpoint.
func (f *Format) WriteError(w http.ResponseWriter, r *http.Request, p format.Problem) {
	repoName, t := describe(r)
	h := w.Header()
	h.Set(apiVersionHeader, apiVersion)
	// A handler may have asked for more scopes (see mount); the note is
	// never sent.
	extra := h.Values(extraScopeHeader)
	h.Del(extraScopeHeader)
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", challenge(r, repoName, t, extra...))
	}
	// Headers of a success that did not happen must not reach the client.
	for _, k := range []string{"Docker-Content-Digest", "OCI-Subject", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified"} {
		h.Del(k)
	}
	code := specCode(p, t)
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	if r.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(struct { //nolint:errcheck // the client went away
		Errors []errorItem `json:"errors"`
	}{[]errorItem{{Code: code, Message: p.Message}}})
}

// specCode translates the edge's generic code into the spec's.
func specCode(p format.Problem, t target) string {
	if specCodes[p.Code] {
		return p.Code
	}
	switch p.Code {
	case "NOT_FOUND":
		switch t.kind {
		case kindManifest:
			return codeManifestUnknown
		case kindBlob:
			return codeBlobUnknown
		case kindUpload, kindUploadStart:
			return codeBlobUploadUnknown
		}
		return codeNameUnknown
	case "INVALID":
		switch t.kind {
		case kindManifest:
			return codeManifestInvalid
		case kindBlob, kindReferrers:
			return codeDigestInvalid
		case kindUpload, kindUploadStart:
			return codeBlobUploadInvalid
		}
		return codeNameInvalid
	case "CONFLICT":
		return codeDenied
	case "TOO_LARGE":
		return codeSizeInvalid
	case "RANGE_INVALID":
		return codeBlobUploadInvalid
	}
	switch p.Status {
	case http.StatusTooManyRequests:
		return codeTooManyRequests
	case http.StatusMethodNotAllowed:
		return codeUnsupported
	}
	return "UNKNOWN"
}

// challenge is the Bearer challenge of a 401: the realm is the token
// endpoint, the service the server's host, and the scope what the request
// needed, followed by extra scopes.
func challenge(r *http.Request, repoName string, t target, extra ...string) string {
	base := format.BaseURL(r.Context())
	if base == "" {
		base = "http://" + r.Host
	}
	service := r.Host
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		service = u.Host
	}
	var scopes []string
	switch {
	case t.kind != kindNone && repoName != "" && namePattern.MatchString(t.image):
		scopes = append(scopes, "repository:"+repoName+"/"+t.image+":"+scopeActions(r.Method))
	case repoName == "_catalog":
		scopes = append(scopes, "registry:catalog:*")
	}
	scopes = append(scopes, extra...)
	c := `Bearer realm="` + base + `/v2/token",service="` + service + `"`
	if len(scopes) > 0 {
		// Several scopes are separated by spaces, as Distribution writes them.
		c += `,scope="` + strings.Join(scopes, " ") + `"`
	}
	return c
}

// scopeActions are the token actions a request method needs.
func scopeActions(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "pull"
	case http.MethodDelete:
		return "delete"
	}
	return "pull,push"
}

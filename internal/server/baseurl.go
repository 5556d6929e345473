package server

import (
	"net/http"
	"net/netip"
	"strings"
)

// BaseURL is the one function every absolute URL arca writes starts from
// (npm tarball links, PyPI file links, the OCI token realm, redirects). It
// has no trailing slash. The configured base URL wins; then the
// X-Forwarded-Proto and X-Forwarded-Host headers, but only from a trusted
// proxy; then the request's own scheme and Host.
func (s *Server) BaseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return strings.TrimRight(s.opts.BaseURL, "/")
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if s.fromTrustedProxy(r) {
		if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); validHost(h) {
			host = h
		}
	}
	return scheme + "://" + host
}

// fromTrustedProxy reports whether the request's peer is a trusted proxy.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	if len(s.opts.TrustedProxies) == 0 {
		return false
	}
	hostPort, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := hostPort.Addr().Unmap()
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// firstValue returns the first entry of a comma-separated header, as added
// by the proxy nearest the client.
func firstValue(h string) string {
	v, _, _ := strings.Cut(h, ",")
	return strings.TrimSpace(v)
}

// validHost accepts host or host:port made of characters a Host header may
// hold (RFC 3986's reg-name and IP-literal, and a numeric port), so that a
// forwarded value cannot inject a path, a scheme, markup or anything else
// into the links built from it.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := range len(h) {
		if !validHostByte(h[i]) {
			return false
		}
	}
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host, port = h[:i], h[i+1:]
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil && a.Is6()
	}
	return host != "" && !strings.ContainsAny(host, ":[]")
}

// validHostByte reports whether c may appear in a Host value: unreserved,
// sub-delims (but not the ',' that separates forwarded values), ':' and
// the brackets of an IP-literal.
func validHostByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+;=:[]", c) >= 0
}

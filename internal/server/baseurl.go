package server

import (
	"net"
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
// hold, so that a forwarded value cannot inject a path or a scheme.
func validHost(h string) bool {
	if h == "" || len(h) > 255 || strings.ContainsAny(h, "/\\@?# \t") {
		return false
	}
	host := h
	if hp, _, err := net.SplitHostPort(h); err == nil {
		host = hp
	}
	return host != ""
}

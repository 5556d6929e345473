package server

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"testing"
)

func TestBaseURL(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	type testCase struct {
		name    string
		opts    Options
		remote  string
		host    string
		tls     bool
		headers map[string]string
		want    string
	}
	tests := []testCase{
		{name: "request host", remote: "192.0.2.1:4000", host: "arca.local:8080",
			want: "http://arca.local:8080"},
		{name: "tls", remote: "192.0.2.1:4000", host: "arca.local", tls: true,
			want: "https://arca.local"},
		{name: "configured wins", opts: Options{BaseURL: "https://repo.example.com/arca/", TrustedProxies: trusted},
			remote: "10.1.1.1:4000", host: "arca.local", tls: true,
			headers: map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": "proxy.example"},
			want:    "https://repo.example.com/arca"},
		{name: "forwarded ignored from untrusted peer", opts: Options{TrustedProxies: trusted},
			remote: "192.0.2.1:4000", host: "arca.local",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			want:    "http://arca.local"},
		{name: "forwarded ignored without trusted proxies",
			remote: "10.1.1.1:4000", host: "arca.local",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			want:    "http://arca.local"},
		{name: "forwarded honoured from trusted CIDR", opts: Options{TrustedProxies: trusted},
			remote: "10.1.2.3:4000", host: "arca.internal:8080",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "repo.example.com"},
			want:    "https://repo.example.com"},
		{name: "trusted IPv6 peer", opts: Options{TrustedProxies: trusted},
			remote: "[::1]:4000", host: "arca.internal",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "repo.example.com:8443"},
			want:    "https://repo.example.com:8443"},
		{name: "trusted IPv4-mapped peer", opts: Options{TrustedProxies: trusted},
			remote: "[::ffff:10.9.9.9]:4000", host: "arca.internal",
			headers: map[string]string{"X-Forwarded-Host": "repo.example.com"},
			want:    "http://repo.example.com"},
		{name: "unparsable peer is untrusted", opts: Options{TrustedProxies: trusted},
			remote: "@unix", host: "arca.internal",
			headers: map[string]string{"X-Forwarded-Host": "repo.example.com"},
			want:    "http://arca.internal"},
		{name: "first of several forwarded values", opts: Options{TrustedProxies: trusted},
			remote: "10.0.0.1:1", host: "arca.internal",
			headers: map[string]string{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "a.example, b.example"},
			want:    "https://a.example"},
		{name: "forwarded proto http over tls", opts: Options{TrustedProxies: trusted},
			remote: "10.0.0.1:1", host: "arca.internal", tls: true,
			headers: map[string]string{"X-Forwarded-Proto": "http"},
			want:    "http://arca.internal"},
		{name: "bogus forwarded proto ignored", opts: Options{TrustedProxies: trusted},
			remote: "10.0.0.1:1", host: "arca.internal",
			headers: map[string]string{"X-Forwarded-Proto": "javascript"},
			want:    "http://arca.internal"},
		{name: "forwarded IPv6 literal host", opts: Options{TrustedProxies: trusted},
			remote: "10.0.0.1:1", host: "arca.internal",
			headers: map[string]string{"X-Forwarded-Host": "[2001:db8::1]:8443"},
			want:    "http://[2001:db8::1]:8443"},
	}
	for _, bad := range []struct{ name, host string }{
		{"bad forwarded host with path", "evil.example/x"},
		{"bad forwarded host with user", "user@evil.example"},
		{"bad forwarded host with space", "evil example"},
		{"bad forwarded host with query", "evil.example?x"},
		{"bad forwarded host with backslash", `evil.example\x`},
		{"bad forwarded host with markup", `evil.example"><script>`},
		{"bad forwarded host with scheme", "https://evil.example"},
		{"bad forwarded host port not numeric", "evil.example:http"},
		{"bad forwarded host port only", ":8080"},
		{"bad forwarded host bare IPv6", "2001:db8::1"},
		{"bad forwarded host bracketed name", "[evil.example]"},
		{"bad forwarded host empty first value", " , evil.example"},
	} {
		tests = append(tests, testCase{name: bad.name, opts: Options{TrustedProxies: trusted}, remote: "10.0.0.1:1", host: "arca.internal",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": bad.host},
			want:    "https://arca.internal"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{opts: tt.opts}
			r, err := http.NewRequest(http.MethodGet, "/repository/x/", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.RemoteAddr = tt.remote
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := s.BaseURL(r); got != tt.want {
				t.Errorf("BaseURL = %q, want %q", got, tt.want)
			}
		})
	}
}

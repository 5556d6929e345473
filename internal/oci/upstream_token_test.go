package oci

import "testing"

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		values []string
		want   challengeParams
		ok     bool
	}{
		{[]string{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/alpine:pull,push"`},
			challengeParams{"https://auth.example/token", "registry.example", "repository:library/alpine:pull,push"}, true},
		// Other schemes first, spaces after commas, unquoted values,
		// an escaped quote.
		{[]string{`Basic realm="x"`, `bearer realm=/token, service = "a \"b\""`},
			challengeParams{realm: "/token", service: `a "b"`}, true},
		{[]string{`Basic realm="registry"`}, challengeParams{}, false},
		{[]string{`Bearer service="no realm"`}, challengeParams{}, false},
	}
	for _, tt := range tests {
		got, ok := parseChallenge(tt.values)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseChallenge(%q) = %+v, %v; want %+v, %v", tt.values, got, ok, tt.want, tt.ok)
		}
	}
}

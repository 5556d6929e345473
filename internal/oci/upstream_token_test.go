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

// FuzzParseChallenge feeds arbitrary WWW-Authenticate values, which come
// from an upstream registry, to the challenge parser: it must not panic or
// loop, and a challenge it accepts has a realm.
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{`Bearer realm="https://a/token",service="s",scope="repository:x:pull"`,
		`Bearer realm=`, `Bearer realm="unterminated`, `bearer ,,,realm=x,`, `Bearer realm="a\"`, `Bearer =x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := parseChallenge([]string{v})
		if ok && got.realm == "" {
			t.Fatalf("accepted %q without a realm", v)
		}
	})
}

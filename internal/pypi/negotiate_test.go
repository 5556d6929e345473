package pypi

import "testing"

func TestNegotiate(t *testing.T) {
	for accept, want := range map[string]string{
		"": typeText,
		"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01": typeJSON,
		"text/html":                                                  typeText,
		"application/vnd.pypi.simple.v1+html":                        typeHTML,
		"application/vnd.pypi.simple.latest+json":                    typeJSON,
		"application/vnd.pypi.simple.latest+html":                    typeHTML,
		"application/vnd.pypi.simple.v1+json;q=0.2, text/html;q=0.5": typeText,
		"application/vnd.pypi.simple.v1+json;q=0, text/html;q=0.5":   typeText,
		"*/*":              typeText,
		"application/json": typeText,
		"application/vnd.pypi.simple.v1+json;q=oops": typeText,
		"Application/Vnd.Pypi.Simple.V1+JSON":        typeJSON,
	} {
		got, isJSON := negotiate(accept)
		if got != want || isJSON != (want == typeJSON) {
			t.Errorf("negotiate(%q) = %s, %t, want %s", accept, got, isJSON, want)
		}
	}
}

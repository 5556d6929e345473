package pypi

import (
	"strings"
	"testing"
)

func TestParseCoreMetadata(t *testing.T) {
	m, err := parseCoreMetadata([]byte("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n" +
		"Summary: a\n  continued\nRequires-Dist: a\nRequires-Dist: b; extra == 'x'\nRequires-Python: >=3.8\n\nLong\ndescription.\n"))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string][]string{"summary": {"from the form"}}
	m.fillFields(fields)
	if m.get("Name") != "demo" || m.get("Version") != "1.0" || fields["summary"][0] != "from the form" ||
		strings.Join(fields["requires_dist"], "|") != "a|b; extra == 'x'" || fields["requires_python"][0] != ">=3.8" ||
		fields["description"][0] != "Long\ndescription." {
		t.Fatalf("fields %v", fields)
	}
	// Headers only, no body.
	if m, err := parseCoreMetadata([]byte("Name: x\nVersion: 2")); err != nil || m.get("Version") != "2" {
		t.Fatalf("no body: %v %v", m, err)
	}
	if _, err := parseCoreMetadata([]byte("not a header line\n")); err == nil {
		t.Fatal("garbage parsed")
	}
}

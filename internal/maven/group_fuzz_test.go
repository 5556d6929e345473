package maven

import (
	"encoding/xml"
	"slices"
	"strings"
	"testing"
)

// FuzzMergeDocs merges two members' documents as a group does, whatever
// the members (a proxy's upstream) sent: the merge must not panic, must
// encode to a document that parses, and must hold every version of both,
// in Maven's order, with latest the last of them.
func FuzzMergeDocs(f *testing.F) {
	f.Add(`<metadata><groupId>g</groupId><artifactId>a</artifactId><versioning><versions><version>1.0</version><version>1.0-SNAPSHOT</version></versions><lastUpdated>20260101000000</lastUpdated></versioning></metadata>`,
		`<metadata><versioning><versions><version>0.9</version><version>1.0</version><version>2.0-rc1</version></versions></versioning></metadata>`)
	f.Add(`<metadata><plugins><plugin><name>p</name><prefix>x</prefix><artifactId>x-maven-plugin</artifactId></plugin></plugins></metadata>`,
		`<metadata/>`)
	f.Add(`<metadata><versioning><versions><version> </version><version>1..0</version></versions></versioning></metadata>`, `<x/>`)
	f.Fuzz(func(t *testing.T, a, b string) {
		var docs []memberDoc
		var want []string
		for _, s := range []string{a, b} {
			var m Metadata
			if xml.Unmarshal([]byte(s), &m) != nil {
				return
			}
			docs = append(docs, memberDoc{body: []byte(s), doc: m})
			if m.Versioning != nil && m.Versioning.Versions != nil {
				for _, v := range m.Versioning.Versions.List {
					if v = strings.TrimSpace(v); v != "" && !slices.Contains(want, v) {
						want = append(want, v)
					}
				}
			}
		}
		body, err := mergeDocs(docs)
		if err != nil {
			// Encoding fails only for text XML cannot carry.
			return
		}
		var got Metadata
		if err := xml.Unmarshal(body, &got); err != nil {
			t.Fatalf("merged document does not parse: %v\n%s", err, body)
		}
		var versions []string
		if got.Versioning != nil && got.Versioning.Versions != nil {
			versions = got.Versioning.Versions.List
		}
		if len(versions) != len(want) {
			t.Fatalf("merged versions %q, want those of both members %q", versions, want)
		}
		sorted := slices.Clone(versions)
		SortVersions(sorted)
		if !slices.Equal(sorted, versions) {
			t.Errorf("merged versions %q are not in Maven's order", versions)
		}
		if len(versions) > 0 && got.Versioning.Latest != versions[len(versions)-1] {
			t.Errorf("latest %q, want the last version %q", got.Versioning.Latest, versions[len(versions)-1])
		}
	})
}

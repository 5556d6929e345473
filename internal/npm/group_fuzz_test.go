package npm

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzMergeMemberDocs merges two members' packuments as a group does,
// whatever a member (a proxy's upstream) sent: no panic, and when both
// parse, the merge renders, in full and abbreviated form, to JSON whose
// versions are those of both members, each tarball at the group.
func FuzzMergeMemberDocs(f *testing.F) {
	f.Add(`{"name":"p","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"p","version":"1.0.0","dist":{"tarball":"http://a/p/-/p-1.0.0.tgz"}}},"time":{"1.0.0":"2026-01-01T00:00:00Z","created":"2026-01-01T00:00:00Z"}}`,
		`{"name":"p","dist-tags":{"latest":"2.0.0","next":"2.0.0"},"versions":{"2.0.0":{"name":"p","version":"2.0.0"},"1.0.0":{}},"time":{"unpublished":{"time":"x"}}}`)
	f.Add(`{"versions":null,"dist-tags":[]}`, `{"time":"x","_rev":"1-a"}`)
	const group = "http://arca.test/repository/grp/"
	f.Fuzz(func(t *testing.T, a, b string) {
		merged := newMergedDoc("p")
		want := map[string]bool{}
		for _, s := range []string{a, b} {
			d, err := parseMemberDoc([]byte(s), "p")
			if err != nil {
				return
			}
			for v := range d.versions {
				want[v] = true
			}
			merged.add(d)
		}
		for _, abbreviated := range []bool{false, true} {
			body, err := merged.render(group, abbreviated, false)
			if err != nil {
				continue // a member's manifest that does not re-encode
			}
			// Keys read exactly, as npm does (Go's struct decoding would
			// take "Versions" too).
			var top map[string]json.RawMessage
			if err := json.Unmarshal(body, &top); err != nil {
				t.Fatalf("merged packument is not JSON: %v\n%s", err, body)
			}
			var doc struct {
				Versions map[string]map[string]json.RawMessage
			}
			if err := json.Unmarshal(top["versions"], &doc.Versions); err != nil {
				t.Fatalf("merged versions are not an object: %v\n%s", err, body)
			}
			if len(doc.Versions) != len(want) {
				t.Errorf("merged versions %d, want %d: %s", len(doc.Versions), len(want), body)
			}
			for v, m := range doc.Versions {
				if !want[v] {
					t.Errorf("version %q comes from no member", v)
				}
				var dist map[string]json.RawMessage
				var tarball string
				if json.Unmarshal(m["dist"], &dist) != nil || json.Unmarshal(dist["tarball"], &tarball) != nil ||
					!strings.HasPrefix(tarball, group) {
					t.Errorf("tarball of %q at %s, not at the group", v, m["dist"])
				}
			}
		}
	})
}

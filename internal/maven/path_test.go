package maven

import (
	"errors"
	"testing"

	"arca/internal/blob"
	"arca/internal/repo"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want Coordinates
	}{
		{"org/example/lib/1.0/lib-1.0.jar",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0", FileVersion: "1.0", Extension: "jar"}},
		{"org/example/lib/1.0/lib-1.0.pom",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0", FileVersion: "1.0", Extension: "pom"}},
		{"org/example/lib/1.0/lib-1.0-sources.jar",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0", FileVersion: "1.0", Classifier: "sources", Extension: "jar"}},
		{"org/example/lib/1.0/lib-1.0-jdk8-tests.jar",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0", FileVersion: "1.0", Classifier: "jdk8-tests", Extension: "jar"}},
		{"org/example/dist/2.3.1/dist-2.3.1-bin.tar.gz",
			Coordinates{GroupID: "org.example", ArtifactID: "dist", Version: "2.3.1", FileVersion: "2.3.1", Classifier: "bin", Extension: "tar.gz"}},
		{"org/example/dist/2.3.1/dist-2.3.1.tar.gz",
			Coordinates{GroupID: "org.example", ArtifactID: "dist", Version: "2.3.1", FileVersion: "2.3.1", Extension: "tar.gz"}},
		{"org/example/lib/1.0/lib-1.0.jar.asc",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0", FileVersion: "1.0", Extension: "jar.asc"}},
		{"org/example/lib/1.0/lib-1.0.module",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0", FileVersion: "1.0", Extension: "module"}},
		{"org/example/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0-SNAPSHOT", FileVersion: "1.0-SNAPSHOT", Extension: "jar"}},
		{"org/example/lib/1.0-SNAPSHOT/lib-1.0-20261203.101500-3.jar",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0-SNAPSHOT", FileVersion: "1.0-20261203.101500-3",
				Timestamp: "20261203.101500", BuildNumber: 3, Extension: "jar"}},
		{"org/example/lib/1.0-SNAPSHOT/lib-1.0-20261203.101500-12-javadoc.jar",
			Coordinates{GroupID: "org.example", ArtifactID: "lib", Version: "1.0-SNAPSHOT", FileVersion: "1.0-20261203.101500-12",
				Timestamp: "20261203.101500", BuildNumber: 12, Classifier: "javadoc", Extension: "jar"}},
		// A hyphenated artifact id and a version with a qualifier.
		{"com/acme/my-tool/3.0.0-rc.1/my-tool-3.0.0-rc.1.jar",
			Coordinates{GroupID: "com.acme", ArtifactID: "my-tool", Version: "3.0.0-rc.1", FileVersion: "3.0.0-rc.1", Extension: "jar"}},
		{"com/acme/my-tool/1.0-alpha-2-SNAPSHOT/my-tool-1.0-alpha-2-20261203.000001-1.pom",
			Coordinates{GroupID: "com.acme", ArtifactID: "my-tool", Version: "1.0-alpha-2-SNAPSHOT", FileVersion: "1.0-alpha-2-20261203.000001-1",
				Timestamp: "20261203.000001", BuildNumber: 1, Extension: "pom"}},
		// Odd but valid: a one-segment group, a date version, a build
		// suffix, an underscore and a plus.
		{"junit/junit/4.13.2/junit-4.13.2.jar",
			Coordinates{GroupID: "junit", ArtifactID: "junit", Version: "4.13.2", FileVersion: "4.13.2", Extension: "jar"}},
		{"a/b/c/d/20030203.000550/d-20030203.000550.jar",
			Coordinates{GroupID: "a.b.c", ArtifactID: "d", Version: "20030203.000550", FileVersion: "20030203.000550", Extension: "jar"}},
		{"org/x/y/1.0_beta+build.5/y-1.0_beta+build.5-linux_x86-64.zip",
			Coordinates{GroupID: "org.x", ArtifactID: "y", Version: "1.0_beta+build.5", FileVersion: "1.0_beta+build.5", Classifier: "linux_x86-64", Extension: "zip"}},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.path)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.path, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePath(%q)\n got %+v\nwant %+v", tt.path, got, tt.want)
		}
		if p := got.VersionFolder() + fileName(got); p != tt.path {
			t.Errorf("coordinates of %q give back %q", tt.path, p)
		}
	}
}

func TestParsePathRefuses(t *testing.T) {
	for _, p := range []string{
		"lib-1.0.jar",
		"lib/1.0/lib-1.0.jar",                                        // no group
		"org/example/lib/1.0/other-1.0.jar",                          // another artifact's name
		"org/example/lib/1.0/lib-1.1.jar",                            // another version
		"org/example/lib/1.0/lib-1.0",                                // no extension
		"org/example/lib/1.0/lib-1.0.",                               // empty extension
		"org/example/lib/1.0/lib-1.0-.jar",                           // empty classifier
		"org/example/lib/1.0/lib-1.0-sources",                        // classifier without extension
		"org/example/lib/1.0/lib-1.0jar",                             // no separator
		"org/example/lib/1.0-SNAPSHOT/lib-1.0-2026.jar",              // not a timestamp
		"org/example/lib/1.0-SNAPSHOT/lib-1.0-20261203.101500-0.jar", // build 0
		"org/example/lib/1.0-SNAPSHOT/lib-1.1-20261203.101500-1.jar", // another base version
		"org//lib/1.0/lib-1.0.jar",
	} {
		if _, err := ParsePath(p); !errors.Is(err, repo.ErrInvalid) {
			t.Errorf("ParsePath(%q) = %v, want ErrInvalid", p, err)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		path     string
		file     string
		checksum blob.Algorithm
		metadata bool
	}{
		{"g/a/1/a-1.jar", "g/a/1/a-1.jar", "", false},
		{"g/a/1/a-1.jar.sha1", "g/a/1/a-1.jar", blob.SHA1, false},
		{"g/a/1/a-1.jar.asc.md5", "g/a/1/a-1.jar.asc", blob.MD5, false},
		{"g/a/maven-metadata.xml", "g/a/maven-metadata.xml", "", true},
		{"g/a/maven-metadata.xml.sha512", "g/a/maven-metadata.xml", blob.SHA512, true},
		{"g/a/1-SNAPSHOT/maven-metadata.xml.sha256", "g/a/1-SNAPSHOT/maven-metadata.xml", blob.SHA256, true},
		{"g/a/.sha1", "g/a/.sha1", blob.SHA1, false},
	}
	for _, tt := range tests {
		got := parseTarget(tt.path)
		if tt.path == "g/a/.sha1" {
			// A bare suffix names no file: it stays a plain path.
			tt.checksum = ""
		}
		if got.path != tt.file || got.checksum != tt.checksum || got.metadata != tt.metadata {
			t.Errorf("parseTarget(%q) = %+v", tt.path, got)
		}
	}
}

// FuzzParsePath checks that any path parses or is refused with
// ErrInvalid, and that what parses names the same path again.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"org/example/lib/1.0/lib-1.0.jar", "g/a/1-SNAPSHOT/a-1-20261203.101500-3-src.tar.gz",
		"g/a/1/a-1-.jar", "g/a/1-SNAPSHOT/a-1-20261203.101500-.jar", "//////", "g/a/-/a--.x", "./lib/1/lib-1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := ParsePath(p)
		if err != nil {
			if !errors.Is(err, repo.ErrInvalid) {
				t.Fatalf("ParsePath(%q) = %v, not ErrInvalid", p, err)
			}
			return
		}
		if back := c.VersionFolder() + fileName(c); back != p {
			t.Fatalf("ParsePath(%q) = %+v, which names %q", p, c, back)
		}
	})
}

package maven

import (
	"fmt"
	"strconv"
	"strings"

	"arca/internal/blob"
	"arca/internal/repo"
)

// metadataName is the file name of a maven-metadata.xml document.
const metadataName = "maven-metadata.xml"

// Coordinates are what a path in the Maven 2 layout says about the file it
// holds: GROUP/PATH/ARTIFACT/VERSION/ARTIFACT-FILEVERSION[-CLASSIFIER].EXT.
type Coordinates struct {
	// GroupID is the group, its path segments joined with ".".
	GroupID    string
	ArtifactID string
	// Version is the base version, the name of the version folder:
	// "1.0" or "1.0-SNAPSHOT".
	Version string
	// FileVersion is the version in the file name: Version, or for a
	// snapshot deployed with a unique version, "1.0-20261203.101500-3".
	FileVersion string
	// Timestamp ("20261203.101500") and BuildNumber (3) are set for a
	// timestamped snapshot file.
	Timestamp   string
	BuildNumber int
	Classifier  string
	// Extension is everything after the first dot that follows the
	// version or classifier: "jar", "tar.gz", "jar.asc", "module".
	Extension string
}

// Snapshot reports whether the coordinates are of a snapshot version.
func (c Coordinates) Snapshot() bool { return IsSnapshot(c.Version) }

// Timestamped reports whether the file is one build of a snapshot.
func (c Coordinates) Timestamped() bool { return c.Timestamp != "" }

// ArtifactFolder is the path of the artifact's folder, ending in "/".
func (c Coordinates) ArtifactFolder() string {
	return strings.ReplaceAll(c.GroupID, ".", "/") + "/" + c.ArtifactID + "/"
}

// VersionFolder is the path of the version's folder, ending in "/".
func (c Coordinates) VersionFolder() string {
	return c.ArtifactFolder() + c.Version + "/"
}

// ParsePath parses the path of an artifact file (not a checksum and not a
// maven-metadata.xml) into its coordinates. The error wraps repo.ErrInvalid
// and says what does not fit the layout.
func ParsePath(p string) (Coordinates, error) {
	var c Coordinates
	segs := strings.Split(p, "/")
	if len(segs) < 4 {
		return c, invalidPath(p, "a Maven path is GROUP/ARTIFACT/VERSION/FILE, with at least one group folder")
	}
	for _, s := range segs {
		if s == "" {
			return c, invalidPath(p, "it has an empty segment")
		}
	}
	n := len(segs)
	for _, s := range segs[:n-3] {
		if strings.Contains(s, ".") {
			return c, invalidPath(p, fmt.Sprintf("group folder %q holds a dot, which the layout turns into folders", s))
		}
	}
	file := segs[n-1]
	c.Version = segs[n-2]
	c.ArtifactID = segs[n-3]
	c.GroupID = strings.Join(segs[:n-3], ".")
	rest, ok := strings.CutPrefix(file, c.ArtifactID+"-")
	if !ok {
		return c, invalidPath(p, fmt.Sprintf("the file name must start with the artifact id and a dash, %q", c.ArtifactID+"-"))
	}
	switch {
	case strings.HasPrefix(rest, c.Version):
		c.FileVersion = c.Version
	case c.Snapshot():
		base := strings.TrimSuffix(c.Version, "SNAPSHOT")
		stamp, ok := strings.CutPrefix(rest, base)
		if ok {
			c.Timestamp, c.BuildNumber, ok = cutTimestamp(stamp)
		}
		if !ok {
			return c, invalidPath(p, fmt.Sprintf("a file of snapshot version %s must be named with %q or with a timestamped version such as %q",
				c.Version, c.ArtifactID+"-"+c.Version, c.ArtifactID+"-"+base+"20261203.101500-1"))
		}
		c.FileVersion = base + c.Timestamp + "-" + strconv.Itoa(c.BuildNumber)
	default:
		return c, invalidPath(p, fmt.Sprintf("the file name must carry the folder's version, %q", c.ArtifactID+"-"+c.Version))
	}
	rest = rest[len(c.FileVersion):]
	switch {
	case strings.HasPrefix(rest, "."):
		c.Extension = rest[1:]
	case strings.HasPrefix(rest, "-"):
		c.Classifier, c.Extension, _ = strings.Cut(rest[1:], ".")
		if c.Classifier == "" {
			return c, invalidPath(p, "the classifier after the version is empty")
		}
	default:
		return c, invalidPath(p, "the version must be followed by \".EXTENSION\" or \"-CLASSIFIER.EXTENSION\"")
	}
	if c.Extension == "" || strings.HasPrefix(c.Extension, ".") || strings.HasSuffix(c.Extension, ".") ||
		strings.Contains(c.Extension, "..") {
		return c, invalidPath(p, "the file has no extension")
	}
	return c, nil
}

// cutTimestamp parses the unique part of a snapshot file's version,
// "20261203.101500-3", into the timestamp and the build number; ok is
// false unless s starts with exactly that shape.
func cutTimestamp(s string) (stamp string, build int, ok bool) {
	const shape = "yyyyMMdd.HHmmss-"
	if len(s) <= len(shape) || s[8] != '.' || s[15] != '-' || !digits(s[:8]) || !digits(s[9:15]) {
		return "", 0, false
	}
	end := len(shape)
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == len(shape) || end-len(shape) > 9 {
		return "", 0, false
	}
	build, err := strconv.Atoi(s[len(shape):end])
	if err != nil || build < 1 {
		return "", 0, false
	}
	return s[:15], build, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func invalidPath(p, why string) error {
	return fmt.Errorf("%w: %s is not a Maven artifact path: %s", repo.ErrInvalid, p, why)
}

// checksumSuffixes are the checksum files a Maven repository serves for
// every file, with the digest each holds.
var checksumSuffixes = []struct {
	suffix string
	alg    blob.Algorithm
}{
	{".md5", blob.MD5},
	{".sha1", blob.SHA1},
	{".sha256", blob.SHA256},
	{".sha512", blob.SHA512},
}

// target is what a request path names.
type target struct {
	// path is the file the request is about: for a checksum, the file
	// whose checksum it is.
	path string
	// checksum is the algorithm of a checksum file, "" otherwise.
	checksum blob.Algorithm
	// metadata is set for maven-metadata.xml and its checksums.
	metadata bool
}

// parseTarget tells whether a path names a checksum file, a
// maven-metadata.xml document or another file.
func parseTarget(p string) target {
	t := target{path: p}
	for _, cs := range checksumSuffixes {
		if base, ok := strings.CutSuffix(p, cs.suffix); ok && base != "" && !strings.HasSuffix(base, "/") {
			t.path, t.checksum = base, cs.alg
			break
		}
	}
	name := t.path[strings.LastIndex(t.path, "/")+1:]
	t.metadata = name == metadataName
	return t
}

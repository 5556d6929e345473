package pypi

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
)

// maxCoreMetadata bounds a wheel's METADATA file.
const maxCoreMetadata = 16 << 20

// wheelMetadata returns the METADATA file of a wheel: the one in the
// top-level "{name}-{version}.dist-info" folder.
func wheelMetadata(r io.ReaderAt, size int64) ([]byte, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("the wheel is not a valid zip file: %w", err)
	}
	var found *zip.File
	for _, f := range zr.File {
		dir, name, ok := strings.Cut(f.Name, "/")
		if !ok || name != "METADATA" || !strings.HasSuffix(dir, ".dist-info") {
			continue
		}
		if found != nil {
			return nil, errors.New("the wheel has more than one .dist-info/METADATA")
		}
		found = f
	}
	if found == nil {
		return nil, errors.New("the wheel has no .dist-info/METADATA")
	}
	rc, err := found.Open()
	if err != nil {
		return nil, fmt.Errorf("read the wheel's METADATA: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxCoreMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("read the wheel's METADATA: %w", err)
	}
	if len(b) > maxCoreMetadata {
		return nil, errors.New("the wheel's METADATA is too large")
	}
	return b, nil
}

// coreMetadata is a parsed METADATA or PKG-INFO file: its header fields and
// its body, the description.
type coreMetadata struct {
	fields textproto.MIMEHeader
	body   string
}

// parseCoreMetadata parses the core metadata format, an email-like header.
func parseCoreMetadata(b []byte) (coreMetadata, error) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	h, err := r.ReadMIMEHeader()
	if err != nil && !(errors.Is(err, io.EOF) && len(h) > 0) {
		return coreMetadata{}, fmt.Errorf("invalid core metadata: %w", err)
	}
	body, _ := io.ReadAll(r.R)
	return coreMetadata{fields: h, body: string(body)}, nil
}

// get returns a single field.
func (m coreMetadata) get(name string) string { return strings.TrimSpace(m.fields.Get(name)) }

// metadataFields maps core metadata fields to the upload form's names.
var metadataFields = map[string]string{
	"Metadata-Version": "metadata_version", "Summary": "summary", "License": "license",
	"License-Expression": "license_expression", "Keywords": "keywords", "Home-Page": "home_page",
	"Download-Url": "download_url", "Author": "author", "Author-Email": "author_email",
	"Maintainer": "maintainer", "Maintainer-Email": "maintainer_email", "Requires-Python": "requires_python",
	"Description-Content-Type": "description_content_type", "Classifier": "classifiers",
	"Requires-Dist": "requires_dist", "Provides-Dist": "provides_dist", "Obsoletes-Dist": "obsoletes_dist",
	"Requires-External": "requires_external", "Project-Url": "project_urls", "Provides-Extra": "provides_extra",
	"License-File": "license_files", "Platform": "platform", "Supported-Platform": "supported_platform",
	"Dynamic": "dynamic",
}

// fillFields adds the metadata's fields to the form's where the form has
// none: the file's own metadata wins over nothing, not over the client.
func (m coreMetadata) fillFields(fields map[string][]string) {
	for k, form := range metadataFields {
		if len(fields[form]) > 0 {
			continue
		}
		if v := m.fields.Values(k); len(v) > 0 {
			fields[form] = v
		}
	}
	if len(fields["description"]) == 0 {
		if d := strings.TrimSpace(m.body); d != "" {
			fields["description"] = []string{d}
		} else if d := m.fields.Get("Description"); d != "" {
			fields["description"] = []string{d}
		}
	}
}

// coreMetadataKey is the key of a wheel's METADATA in a file's kept
// metadata.
const coreMetadataKey = "core_metadata"

// storedCoreMetadata returns the METADATA kept for a file, if any.
func storedCoreMetadata(md []byte) ([]byte, bool) {
	var m map[string]any
	if json.Unmarshal(md, &m) != nil {
		return nil, false
	}
	s, ok := m[coreMetadataKey].(string)
	return []byte(s), ok
}

// coreMetadataSHA256 is the hex SHA-256 of a file's METADATA, "" when it
// has none.
func coreMetadataSHA256(md []byte) string {
	b, ok := storedCoreMetadata(md)
	if !ok {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Bounds on reading an sdist for its PKG-INFO: the bytes decompressed and
// the entries walked before giving up (a gzip bomb, a huge tree).
const (
	maxSdistScan    = 512 << 20
	maxSdistEntries = 100000
)

// errNoPKGInfo says an sdist has no PKG-INFO in its top folder, or cannot
// be read as an archive.
var errNoPKGInfo = errors.New("the sdist has no {name}-{version}/PKG-INFO")

// isTopPKGInfo says whether an archive member is the PKG-INFO of the
// sdist's top folder, "{name}-{version}/PKG-INFO".
func isTopPKGInfo(name string) bool {
	name = strings.TrimPrefix(name, "./")
	dir, file, ok := strings.Cut(name, "/")
	return ok && dir != "" && file == "PKG-INFO"
}

// sdistMetadata returns the PKG-INFO file at the top folder of an sdist, a
// .tar.gz or a .zip as its file name says. errNoPKGInfo when the archive
// cannot be read or has none.
func sdistMetadata(r io.ReaderAt, size int64, filename string) ([]byte, error) {
	if strings.HasSuffix(filename, ".zip") {
		zr, err := zip.NewReader(r, size)
		if err != nil {
			return nil, errNoPKGInfo
		}
		for _, f := range zr.File {
			if !isTopPKGInfo(f.Name) || f.FileInfo().IsDir() {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("read the sdist's PKG-INFO: %w", err)
			}
			defer rc.Close()
			return readPKGInfo(rc)
		}
		return nil, errNoPKGInfo
	}
	gz, err := gzip.NewReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, errNoPKGInfo
	}
	defer gz.Close()
	tr := tar.NewReader(io.LimitReader(gz, maxSdistScan))
	for range maxSdistEntries {
		h, err := tr.Next()
		if err != nil {
			return nil, errNoPKGInfo
		}
		if h.Typeflag == tar.TypeReg && isTopPKGInfo(h.Name) {
			return readPKGInfo(tr)
		}
	}
	return nil, errNoPKGInfo
}

// readPKGInfo reads a PKG-INFO file, bounded like a wheel's METADATA.
func readPKGInfo(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxCoreMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("read the sdist's PKG-INFO: %w", err)
	}
	if len(b) > maxCoreMetadata {
		return nil, errors.New("the sdist's PKG-INFO is too large")
	}
	return b, nil
}

package urlpath

import (
	"errors"
	"path"
	"reflect"
	"strings"
	"testing"
)

type checkCase struct {
	name  string
	path  string
	ok    bool
	slash bool // expected encodedSlash when ok
}

var checkCases = []checkCase{
	// Good paths.
	{"root", "/", true, false},
	{"single", "/a", true, false},
	{"trailing slash", "/a/b/", true, false},
	{"maven jar", "/com/example/app/1.0/app-1.0.jar", true, false},
	{"npm scope lower", "/@scope%2fname", true, true},
	{"npm scope upper", "/@scope%2Fname/-/name-1.0.0.tgz", true, true},
	{"npm scope double encoded", "/@scope%252fname", true, true},
	{"percent in name", "/100%25.txt", true, false},
	{"percent twice in name", "/100%25%25.txt", true, false},
	{"dotted name", "/a.b", true, false},
	{"three dots", "/...", true, false},
	{"three dots encoded", "/%2e%2e%2e", true, false},
	{"hidden file", "/.hidden", true, false},
	{"dot dot prefix", "/..a", true, false},
	{"dot dot suffix", "/a..", true, false},
	{"semicolon after dots", "/a..;b", true, false},
	{"utf8 raw", "/caf\u00e9/\u65e5\u672c.txt", true, false},
	{"utf8 encoded", "/caf%C3%A9/%E6%97%A5%E6%9C%AC.txt", true, false},
	{"encoded space", "/a%20b", true, false},
	{"plus and tilde", "/a+b/~c", true, false},
	{"triple encoded name", "/%25252541", true, false},
	{"dot dot percent", "/%252e%252e%25", true, false},
	{"max length", "/" + strings.Repeat("a", maxLen-1), true, false},

	// Bad paths.
	{"empty", "", false, false},
	{"relative", "a/b", false, false},
	{"dot dot", "/..", false, false},
	{"dot dot dir", "/../", false, false},
	{"dot dot middle", "/a/../b", false, false},
	{"dot", "/.", false, false},
	{"dot middle", "/a/./b", false, false},
	{"dot dot lower", "/%2e%2e", false, false},
	{"dot dot upper", "/%2E%2E", false, false},
	{"dot dot mixed", "/%2E%2e", false, false},
	{"dot encoded second", "/.%2e", false, false},
	{"dot encoded first", "/%2e.", false, false},
	{"dot encoded", "/%2e", false, false},
	{"dot dot encoded middle", "/a/%2e%2e/b", false, false},
	{"encoded slash around dot dot", "/a%2f..%2fb", false, false},
	{"encoded slash around dot", "/a%2f.%2fb", false, false},
	{"encoded slash then encoded dot dot", "/a%2f%2e%2e", false, false},
	{"encoded slash leading", "/%2fa", false, false},
	{"encoded slash trailing", "/@scope%2f", false, false},
	{"encoded slash alone", "/%2f", false, false},
	{"encoded slashes double", "/a%2f%2fb", false, false},
	{"double encoded slash empty", "/%252f", false, false},
	{"double encoded slash dot dot", "/a%252f..%252fb", false, false},
	{"dot dot encoded backslash", "/..%5c", false, false},
	{"encoded backslash dot dot", "/%5c..", false, false},
	{"dot dot backslash", "/..\\", false, false},
	{"backslash", "/a\\b", false, false},
	{"encoded backslash upper", "/a%5Cb", false, false},
	{"double encoded backslash", "/a%255cb", false, false},
	{"double encoded dot dot", "/%252e%252e", false, false},
	{"double encoded dot", "/%252e", false, false},
	{"triple encoded dot dot", "/%25252e%25252e", false, false},
	{"quadruple encoded dot dot", "/%2525252e%2525252e", false, false},
	{"encoded too deep", "/%252525252e", false, false},
	{"double encoded dot dot slash with bad escape", "/%252e%252e%252fx%25", false, false},
	{"encoded nul", "/a%00", false, false},
	{"double encoded nul", "/a%2500", false, false},
	{"double encoded nul with bad escape", "/%2500%25", false, false},
	{"encoded newline", "/a%0a", false, false},
	{"encoded crlf", "/a%0d%0a", false, false},
	{"encoded tab", "/a%09b", false, false},
	{"encoded del", "/a%7f", false, false},
	{"encoded unit separator", "/a%1F", false, false},
	{"raw nul", "/a\x00b", false, false},
	{"raw newline", "/a\nb", false, false},
	{"raw carriage return", "/a\rb", false, false},
	{"raw tab", "/a\tb", false, false},
	{"raw escape", "/a\x1bb", false, false},
	{"raw del", "/a\x7f", false, false},
	{"double slash", "//", false, false},
	{"double slash inside", "/a//b", false, false},
	{"double trailing slash", "/a//", false, false},
	{"leading double slash", "//a", false, false},
	{"dot dot semicolon", "/..;", false, false},
	{"dot dot semicolon dir", "/..;/x", false, false},
	{"dot semicolon param", "/a/.;jsessionid=1/b", false, false},
	{"encoded dot dot semicolon", "/%2e%2e%3b/x", false, false},
	{"bad escape letters", "/%zz", false, false},
	{"bad escape lone percent", "/%", false, false},
	{"bad escape short", "/%4", false, false},
	{"bad escape trailing", "/a%", false, false},
	{"bad escape one hex", "/%4g", false, false},
	{"invalid utf8 encoded", "/%ff", false, false},
	{"invalid utf8 raw", "/a\xffb", false, false},
	{"overlong utf8 dot", "/%c0%ae%c0%ae", false, false},
	{"too long", "/" + strings.Repeat("a", maxLen), false, false},
}

func TestCheck(t *testing.T) {
	bad := 0
	for _, tc := range checkCases {
		if !tc.ok {
			bad++
		}
		t.Run(tc.name, func(t *testing.T) {
			slash, err := Check(tc.path)
			if tc.ok {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want no error", tc.path, err)
				}
				if slash != tc.slash {
					t.Errorf("Check(%q) encodedSlash = %v, want %v", tc.path, slash, tc.slash)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q) accepted, want error", tc.path)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Check(%q) = %v, does not wrap ErrInvalid", tc.path, err)
			}
			if slash {
				t.Errorf("Check(%q) returned encodedSlash with an error", tc.path)
			}
		})
	}
	if bad < 50 {
		t.Errorf("only %d bad cases, want at least 50", bad)
	}
}

func TestSegments(t *testing.T) {
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"root", "/", []string{""}},
		{"single", "/a", []string{"a"}},
		{"trailing slash", "/a/b/", []string{"a", "b", ""}},
		{"encoded slash", "/@scope%2fname/-/x.tgz", []string{"@scope/name", "-", "x.tgz"}},
		{"decoded once", "/100%25.txt", []string{"100%.txt"}},
		{"utf8", "/caf%C3%A9", []string{"caf\u00e9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Segments(tc.path)
			if err != nil {
				t.Fatalf("Segments(%q) = %v", tc.path, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Segments(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		if segs, err := Segments("/a/%2e%2e/b"); !errors.Is(err, ErrInvalid) || segs != nil {
			t.Errorf("Segments = %q, %v, want nil and ErrInvalid", segs, err)
		}
	})
}

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/%2e%2e", `invalid path: segment "%2e%2e" is or decodes to a ".." segment`},
		{"/a//b", "invalid path: empty segment"},
		{"/%zz", `invalid path: segment "%zz" has invalid percent-encoding`},
		{"/a%2500", `invalid path: segment "a%2500" contains a control character`},
	} {
		if _, err := Check(tc.path); err == nil || err.Error() != tc.want {
			t.Errorf("Check(%q) = %v, want %q", tc.path, err, tc.want)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, tc := range checkCases {
		f.Add(tc.path)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		slash, err := Check(escaped)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Check(%q) = %v, does not wrap ErrInvalid", escaped, err)
			}
			return
		}
		segs, err := Segments(escaped)
		if err != nil {
			t.Fatalf("Check(%q) accepted but Segments failed: %v", escaped, err)
		}
		for i, seg := range segs {
			if seg == "" && i != len(segs)-1 {
				t.Fatalf("Check(%q) accepted an empty segment", escaped)
			}
			if seg == "." || seg == ".." {
				t.Fatalf("Check(%q) accepted segment %q", escaped, seg)
			}
			if strings.ContainsAny(seg, "\\\x7f") || strings.IndexFunc(seg, func(r rune) bool { return r < 0x20 }) >= 0 {
				t.Fatalf("Check(%q) accepted segment %q", escaped, seg)
			}
			if !slash && strings.Contains(seg, "/") {
				t.Fatalf("Check(%q) = no encoded slash, but segment %q has one", escaped, seg)
			}
		}
		if slash {
			return
		}
		decoded := "/" + strings.Join(segs, "/")
		clean := path.Clean(decoded)
		if strings.HasSuffix(decoded, "/") && clean != "/" {
			clean += "/"
		}
		if clean != decoded {
			t.Fatalf("Check(%q) accepted %q, which cleans to %q", escaped, decoded, clean)
		}
	})
}

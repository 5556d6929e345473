package maven

import (
	"slices"
	"testing"
)

// sign reduces a comparison result to -1, 0 or 1.
func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	default:
		return 0
	}
}

// assertOrder checks that low sorts strictly before high, in both directions.
func assertOrder(t *testing.T, low, high string) {
	t.Helper()
	if got := CompareVersions(low, high); got >= 0 {
		t.Errorf("CompareVersions(%q, %q) = %d, want < 0", low, high, got)
	}
	if got := CompareVersions(high, low); got <= 0 {
		t.Errorf("CompareVersions(%q, %q) = %d, want > 0", high, low, got)
	}
}

// assertEqual checks that a and b compare as equal, in both directions.
func assertEqual(t *testing.T, a, b string) {
	t.Helper()
	if got := CompareVersions(a, b); got != 0 {
		t.Errorf("CompareVersions(%q, %q) = %d, want 0", a, b, got)
	}
	if got := CompareVersions(b, a); got != 0 {
		t.Errorf("CompareVersions(%q, %q) = %d, want 0", b, a, got)
	}
}

// Ascending sequences taken from Maven's ComparableVersionTest
// (VERSIONS_QUALIFIER and VERSIONS_NUMBER).
var (
	versionsQualifier = []string{
		"1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11", "1-rc", "1-cr2",
		"1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1", "1-1-snapshot",
		"1-1", "1-2", "1-123",
	}
	versionsNumber = []string{
		"2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1", "2.1.0.1",
		"2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
	}
	// versionsLarge mixes small and huge numeric components (Maven's MNG-6572).
	versionsLarge = []string{
		"20190126.230843", "1234567890.12345", "123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta",
	}
)

func TestCompareVersionsSequences(t *testing.T) {
	for name, seq := range map[string][]string{
		"qualifier": versionsQualifier,
		"number":    versionsNumber,
		"large":     versionsLarge,
	} {
		t.Run(name, func(t *testing.T) {
			for i := range seq {
				for j := i + 1; j < len(seq); j++ {
					assertOrder(t, seq[i], seq[j])
				}
			}
		})
	}
}

func TestCompareVersionsEqual(t *testing.T) {
	tests := []struct{ a, b string }{
		{"1", "1"},
		{"1", "1.0"},
		{"1", "1.0.0"},
		{"1.0", "1.0.0"},
		{"1", "1-0"},
		{"1", "1.0-0"},
		{"1.0", "1.0-0"},
		{"1", "1-ga"},
		{"1", "1.final"},
		{"1", "1-RELEASE"},
		{"1", "1-final"},
		{"1", "1.ga"},
		{"1", "1-"},
		{"1", "1."},
		// A switch between digits and letters behaves like '-'.
		{"1a", "1-a"},
		{"1a", "1.0-a"},
		{"1a", "1.0.0-a"},
		{"1.0a", "1-a"},
		{"1.0.0a", "1-a"},
		{"1x", "1-x"},
		{"1x", "1.0-x"},
		{"1x", "1.0.0-x"},
		{"1.0x", "1-x"},
		{"1.0.0x", "1-x"},
		// Aliases.
		{"1ga", "1"},
		{"1release", "1"},
		{"1final", "1"},
		{"1cr", "1rc"},
		{"1-cr", "1-rc"},
		{"1.0-cr-2", "1.0-rc-2"},
		{"1a1", "1-alpha-1"},
		{"1b2", "1-beta-2"},
		{"1m3", "1-milestone-3"},
		// Case does not matter.
		{"1X", "1x"},
		{"1A", "1a"},
		{"1B", "1b"},
		{"1M", "1m"},
		{"1Ga", "1"},
		{"1GA", "1"},
		{"1RELEASE", "1"},
		{"1RELeaSE", "1"},
		{"1Final", "1"},
		{"1FinaL", "1"},
		{"1FINAL", "1"},
		{"1Cr", "1Rc"},
		{"1cR", "1rC"},
		{"1m3", "1Milestone3"},
		{"1m3", "1MILESTONE3"},
		{"1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
		{"1.0-SNAPSHOT", "1.0-snapshot"},
		// Leading zeros and huge numbers.
		{"0000000000000000001", "1"},
		{"1.010", "1.10"},
		{"00000000000000000000000000", "0"},
		{"123456789012345678901234567890", "0123456789012345678901234567890.0"},
		// Empty tokens count as zero.
		{"", "0"},
		{"1..1", "1.0.1"},
		{".1", "0.1"},
	}
	for _, tt := range tests {
		assertEqual(t, tt.a, tt.b)
	}
}

func TestCompareVersionsOrder(t *testing.T) {
	tests := []struct{ low, high string }{
		{"1", "2"},
		{"1.5", "2"},
		{"1", "2.5"},
		{"1.0", "1.1"},
		{"1.1", "1.2"},
		{"1.0.0", "1.1"},
		{"1.0.1", "1.1"},
		{"1.1", "1.2.0"},
		{"1.0", "1.0.1"},
		{"1.9", "1.10"},
		{"1.0-alpha-1", "1.0"},
		{"1.0-alpha-1", "1.0-alpha-2"},
		{"1.0-alpha-1", "1.0-beta-1"},
		{"1.0-alpha-1", "1.0-beta"},
		{"1.0-beta-1", "1.0-SNAPSHOT"},
		{"1.0-SNAPSHOT", "1.0"},
		{"1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"},
		{"1.0", "1.0-1"},
		{"1.0-1", "1.0-2"},
		{"1.0.0", "1.0-1"},
		{"2.0-1", "2.0.1"},
		{"2.0.1-klm", "2.0.1-lmn"},
		{"2.0.1", "2.0.1-xyz"},
		{"2.0.1", "2.0.1-123"},
		{"2.0.1-xyz", "2.0.1-123"},
		// Kinds of items: string < list < number at the same position.
		{"1-1", "1.1"},
		{"1-sp", "1-1"},
		{"1.foo", "1-foo"},
		{"1-foo", "1-1"},
		{"1", "1-foo"},
		{"1", "1-sp"},
		{"1-rc1", "1"},
		{"1-rc", "1-sp"},
		{"1-alpha", "1-beta"},
		{"1-beta", "1-milestone"},
		{"1-milestone", "1-rc"},
		{"1-rc", "1-snapshot"},
		{"1-snapshot", "1"},
		{"1-sp", "1-abc"},
		// A lone "a" not followed by a digit is an unknown qualifier, not alpha.
		{"1-alpha1", "1-a"},
		// Maven's MNG-5568 triple.
		{"6.1.0rc3", "6.1.0"},
		{"6.1.0rc3", "6.1H.5-beta"},
		{"6.1.0", "6.1H.5-beta"},
		// Numbers beyond int64.
		{"9223372036854775807", "9223372036854775808"},
		{"1.99999999999999999999", "1.100000000000000000000"},
		// Timestamped snapshots are ordinary numbers after '-', so they sort
		// after both the -SNAPSHOT version and the release.
		{"1.0-SNAPSHOT", "1.0-20261203.101500-3"},
		{"1.0", "1.0-20261203.101500-3"},
		{"1.0-20261203.101500-3", "1.0-20261203.101500-4"},
		{"1.0-20261203.101500-3", "1.0.1"},
	}
	for _, tt := range tests {
		assertOrder(t, tt.low, tt.high)
	}
}

func TestSortVersions(t *testing.T) {
	got := []string{"1.0", "1.0-SNAPSHOT", "1.10", "1.0-rc1", "1.9", "1.0.0", "1-alpha", "2.0-beta-1"}
	SortVersions(got)
	// "1.0" and "1.0.0" are equal, so a stable sort keeps their input order.
	want := []string{"1-alpha", "1.0-rc1", "1.0-SNAPSHOT", "1.0", "1.0.0", "1.9", "1.10", "2.0-beta-1"}
	if !slices.Equal(got, want) {
		t.Errorf("SortVersions = %q, want %q", got, want)
	}

	shuffled := slices.Clone(versionsQualifier)
	slices.Reverse(shuffled)
	SortVersions(shuffled)
	if !slices.Equal(shuffled, versionsQualifier) {
		t.Errorf("SortVersions(reversed qualifier list) = %q, want %q", shuffled, versionsQualifier)
	}
}

func TestIsSnapshotVersion(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"1.0-SNAPSHOT", true},
		{"1.0-alpha-1-SNAPSHOT", true},
		{"1.0", false},
		{"1.0-snapshot", false},
		{"1.0SNAPSHOT", false},
		{"1.0-20261203.101500-3", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsSnapshot(tt.v); got != tt.want {
			t.Errorf("IsSnapshot(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func FuzzCompareVersions(f *testing.F) {
	seeds := [][2]string{
		{"1.0", "1"},
		{"1.0-SNAPSHOT", "1.0"},
		{"1-1", "1.1"},
		{"1.0-20261203.101500-3", "1.0-SNAPSHOT"},
		{"6.1H.5-beta", "6.1.0rc3"},
		{"1-a1", "1-alpha-1"},
		{"-.-", "..0"},
		{"12345678901234567890.1", "00012345678901234567890"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if got := CompareVersions(a, a); got != 0 {
			t.Errorf("CompareVersions(%q, %q) = %d, want 0", a, a, got)
		}
		ab, ba := sign(CompareVersions(a, b)), sign(CompareVersions(b, a))
		if ab != -ba {
			t.Errorf("CompareVersions(%q, %q) = %d but CompareVersions(%q, %q) = %d", a, b, ab, b, a, ba)
		}
	})
}

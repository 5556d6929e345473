package pypi

import "testing"

func TestCompareVersions(t *testing.T) {
	order := []string{"1.0.dev1", "1.0a1", "1.0a2.dev1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0.post1.dev0", "1.0.post1", "1.1", "1.10", "1!0.1"}
	for i := range order {
		for j := range order {
			got := compareVersions(order[i], order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	if compareVersions("1.0", "1.0.0") != 0 {
		t.Error("1.0 != 1.0.0")
	}
	if !isPreRelease("2.0rc1") || isPreRelease("2.0.post1") {
		t.Error("isPreRelease")
	}
}

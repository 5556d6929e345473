package server

import (
	"strings"
	"testing"
	"time"
)

func TestMergedViewsBounds(t *testing.T) {
	v := newMergedViews(10)
	now := time.Now()
	keep := func(key, body string, expires time.Time) {
		v.put(&mergedView{key: key, stamp: "s", expires: expires, body: []byte(body)})
	}
	keep("a", "1234", now.Add(time.Hour))
	keep("b", "1234", now.Add(time.Hour))
	if v.get("a", "s", now) == nil { // a is now the most recently used
		t.Fatal("a is not kept")
	}
	keep("c", "1234", now.Add(time.Hour)) // over 10 bytes: b goes
	if v.get("b", "s", now) != nil || v.get("a", "s", now) == nil || v.get("c", "s", now) == nil {
		t.Error("the least recently used was not the one dropped")
	}
	if v.bytes != 8 {
		t.Errorf("%d bytes counted, want 8", v.bytes)
	}
	if v.get("a", "other stamp", now) != nil || v.get("a", "s", now) != nil {
		t.Error("a view with another stamp was answered, or kept after")
	}
	if v.get("c", "s", now.Add(2*time.Hour)) != nil {
		t.Error("an expired view was answered")
	}
	keep("big", strings.Repeat("x", 11), now.Add(time.Hour))
	if v.get("big", "s", now) != nil || v.bytes != 0 {
		t.Errorf("a view bigger than the store was kept (%d bytes)", v.bytes)
	}
}

package maven

import (
	"slices"
	"strings"
)

// This file reimplements the ordering of Maven 3.8's ComparableVersion, the
// comparator Maven applies to the <version> entries of maven-metadata.xml.
//
// A version is lowercased and parsed into a tree of items. Every item is a
// number, a string (usually a qualifier such as "beta") or a nested list.
// '.' separates items inside the current list; '-' and every switch between a
// digit and a non-digit close the current item and open a nested list that
// holds the rest of the version. So "1.0-beta2" becomes [1, 0, [beta, [2]]]
// before trimming.
//
// Digits are the ASCII digits 0-9 only; Java's Character.isDigit also accepts
// other Unicode decimal digits, which real-world Maven versions do not use.

// item is one parsed component of a version: numberItem, stringItem or
// *listItem. A missing item (one version is shorter than the other) is nil.
type item interface {
	// isNull reports whether the item is Maven's "null" value for its kind,
	// i.e. one that trimming may drop from the end of a list.
	isNull() bool
	// compare orders the item against another item or against nil.
	compare(other item) int
}

// numberItem is a run of digits with its leading zeros removed, so "" is 0.
// Keeping the digits as text lets numbers of any length compare exactly.
type numberItem string

// stringItem is a non-numeric token after Maven's alias substitution.
type stringItem string

// listItem is a nested list, opened by '-' or by a digit/letter switch.
type listItem struct {
	items []item
}

// knownQualifiers lists the qualifiers Maven knows, oldest first. The empty
// string stands for a plain release.
var knownQualifiers = []string{"alpha", "beta", "milestone", "rc", "snapshot", "", "sp"}

// unknownRank is shared by every qualifier Maven does not know; they sort
// after all known ones and among themselves by plain string order.
var unknownRank = len(knownQualifiers)

// qualifierAliases maps spellings Maven treats as another qualifier.
var qualifierAliases = map[string]string{
	"ga":      "",
	"final":   "",
	"release": "",
	"cr":      "rc",
}

// CompareVersions compares two Maven version strings by Maven's version ordering:
// negative when a sorts before b, zero when equal (e.g. "1.0" and "1"), positive otherwise.
func CompareVersions(a, b string) int {
	return parseVersion(a).compare(parseVersion(b))
}

// SortVersions sorts versions in place by CompareVersions, oldest first (stable).
func SortVersions(vs []string) {
	parsed := make(map[string]*listItem, len(vs))
	for _, v := range vs {
		if _, ok := parsed[v]; !ok {
			parsed[v] = parseVersion(v)
		}
	}
	slices.SortStableFunc(vs, func(a, b string) int {
		return parsed[a].compare(parsed[b])
	})
}

// IsSnapshot reports whether a version is a snapshot version: it ends in "-SNAPSHOT" (case as Maven: exact suffix "SNAPSHOT" after "-").
func IsSnapshot(v string) bool {
	return strings.HasSuffix(v, "-SNAPSHOT")
}

// parseVersion turns a version string into its normalized item tree.
func parseVersion(version string) *listItem {
	v := strings.ToLower(version)
	root := &listItem{}
	cur := root
	// Every list ever opened, in opening order; each one is nested in the
	// previous one, so trimming them in reverse handles the innermost first.
	opened := []*listItem{root}
	openList := func() {
		next := &listItem{}
		cur.items = append(cur.items, next)
		cur = next
		opened = append(opened, next)
	}

	inDigits := false // whether the token being read is numeric
	start := 0        // byte offset where the current token began
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '.' || c == '-':
			// An empty token (as in "1..2" or a leading '-') counts as 0.
			if i == start {
				cur.items = append(cur.items, numberItem(""))
			} else {
				cur.items = append(cur.items, newItem(v[start:i], inDigits))
			}
			start = i + 1
			if c == '-' {
				openList()
			}
		case isDigit(c):
			// Letters followed directly by a digit end a string token; a lone
			// "a", "b" or "m" right before a digit abbreviates a qualifier.
			if !inDigits && i > start {
				cur.items = append(cur.items, newStringItem(v[start:i], true))
				start = i
				openList()
			}
			inDigits = true
		default:
			// Digits followed directly by a non-digit end a number token.
			if inDigits && i > start {
				cur.items = append(cur.items, newItem(v[start:i], true))
				start = i
				openList()
			}
			inDigits = false
		}
	}
	if start < len(v) {
		cur.items = append(cur.items, newItem(v[start:], inDigits))
	}

	for i := len(opened) - 1; i >= 0; i-- {
		opened[i].trim()
	}
	return root
}

// isDigit reports whether c is an ASCII decimal digit.
func isDigit(c byte) bool {
	return c >= '0' && c <= '9'
}

// newItem builds a number or string item from a complete token.
func newItem(token string, numeric bool) item {
	if numeric {
		return numberItem(strings.TrimLeft(token, "0"))
	}
	return newStringItem(token, false)
}

// newStringItem builds a string item, applying Maven's qualifier aliases.
// beforeDigit tells whether the token was directly followed by a digit,
// which is the only case where "a", "b" and "m" mean alpha, beta, milestone.
func newStringItem(token string, beforeDigit bool) stringItem {
	if beforeDigit {
		switch token {
		case "a":
			token = "alpha"
		case "b":
			token = "beta"
		case "m":
			token = "milestone"
		}
	}
	if alias, ok := qualifierAliases[token]; ok {
		token = alias
	}
	return stringItem(token)
}

// trim drops null items from the end of the list. Maven walks backwards and
// removes every null item; non-empty nested lists are stepped over (kept),
// and the walk stops at the first number or string that is not null.
func (l *listItem) trim() {
	for i := len(l.items) - 1; i >= 0; i-- {
		it := l.items[i]
		if it.isNull() {
			l.items = slices.Delete(l.items, i, i+1)
			continue
		}
		if _, nested := it.(*listItem); !nested {
			return
		}
	}
}

func (n numberItem) isNull() bool { return n == "" }

func (s stringItem) isNull() bool { return s == "" }

func (l *listItem) isNull() bool { return len(l.items) == 0 }

// compare for numbers: a number beats any string or list at the same
// position ("1.1" > "1-1" > "1-sp"), and against a missing item only a
// non-zero number counts ("1.0" == "1" < "1.1").
func (n numberItem) compare(other item) int {
	switch o := other.(type) {
	case nil:
		if n.isNull() {
			return 0
		}
		return 1
	case numberItem:
		return compareDigits(string(n), string(o))
	default:
		return 1
	}
}

// compareDigits compares two digit strings without leading zeros by value.
func compareDigits(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compare for strings: a string loses to numbers and lists at the same
// position; against a missing item it is compared as if the other side were
// the empty (release) qualifier, so "1-rc" < "1" < "1-sp".
func (s stringItem) compare(other item) int {
	switch o := other.(type) {
	case nil:
		return compareQualifiers(string(s), "")
	case stringItem:
		return compareQualifiers(string(s), string(o))
	default:
		return -1
	}
}

// qualifierRank gives the position of q among the known qualifiers, or
// unknownRank when Maven does not know it.
func qualifierRank(q string) int {
	if i := slices.Index(knownQualifiers, q); i >= 0 {
		return i
	}
	return unknownRank
}

// compareQualifiers orders known qualifiers by their fixed rank, puts every
// unknown qualifier after them, and orders unknown ones alphabetically.
func compareQualifiers(a, b string) int {
	ra, rb := qualifierRank(a), qualifierRank(b)
	switch {
	case ra < rb:
		return -1
	case ra > rb:
		return 1
	case ra == unknownRank:
		return strings.Compare(a, b)
	default:
		return 0
	}
}

// compare for lists: a list sits between strings and numbers ("1-sp" <
// "1-1" < "1.1"). Two lists compare item by item, a shorter list being padded
// with missing items. Against a missing item only the list's first item
// matters, an empty list being equal to nothing at all.
func (l *listItem) compare(other item) int {
	switch o := other.(type) {
	case nil:
		if len(l.items) == 0 {
			return 0
		}
		return l.items[0].compare(nil)
	case numberItem:
		return -1
	case stringItem:
		return 1
	default:
		return compareLists(l.items, o.(*listItem).items)
	}
}

// compareLists compares two item lists position by position. When only the
// right side still has an item, the comparison is done from that item's
// point of view and negated, exactly as Maven does.
func compareLists(left, right []item) int {
	for i := 0; i < len(left) || i < len(right); i++ {
		var r int
		switch {
		case i >= len(left):
			r = -right[i].compare(nil)
		case i >= len(right):
			r = left[i].compare(nil)
		default:
			r = left[i].compare(right[i])
		}
		if r != 0 {
			return r
		}
	}
	return 0
}

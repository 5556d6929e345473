package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Pos is where a declaration sits in the configuration file.
type Pos struct {
	File string
	Line int
}

// String is "file:line", or "line N" when the file is not known.
func (p Pos) String() string {
	if p.File == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Repository is one entry of repositories: a repository definition in the
// shape the REST API takes, converted from YAML to JSON. Its sections are
// open-ended (they belong to the formats), so this package checks only that
// it is a mapping that JSON can express; internal/declare decodes and
// validates it.
type Repository struct {
	// Name is the definition's name when it is a scalar, for messages.
	Name string
	// JSON is the definition as a JSON object, keys in file order.
	JSON json.RawMessage
	// Pos is the line the definition starts on.
	Pos Pos

	keyLines map[string]int
	node     *yaml.Node
}

// KeyLine returns the line of a top-level key of the definition, or the
// definition's own line when it has no such key.
func (r Repository) KeyLine(key string) int {
	if l, ok := r.keyLines[key]; ok {
		return l
	}
	return r.Pos.Line
}

// UnmarshalYAML converts the definition to JSON. Problems are reported as
// yaml.TypeError lines, so that the decoder goes on and reports all.
func (r *Repository) UnmarshalYAML(n *yaml.Node) error {
	*r = Repository{Pos: Pos{Line: n.Line}, node: n, keyLines: map[string]int{}}
	if n.Kind != yaml.MappingNode {
		return typeErrorf("line %d: a repository definition must be a mapping of settings", n.Line)
	}
	entries, err := mappingEntries(n)
	if err != nil {
		return &yaml.TypeError{Errors: []string{err.Error()}}
	}
	for _, e := range entries {
		r.keyLines[e.key] = e.keyNode.Line
		if e.key == "name" && e.value.Kind == yaml.ScalarNode {
			r.Name = e.value.Value
		}
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, n); err != nil {
		return &yaml.TypeError{Errors: []string{err.Error()}}
	}
	r.JSON = buf.Bytes()
	return nil
}

// MarshalYAML writes the definition as it was read.
func (r Repository) MarshalYAML() (any, error) {
	if r.node != nil {
		return r.node, nil
	}
	var v any
	if err := json.Unmarshal(r.JSON, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// proxySecrets are the keys of a declared proxy section that hold secrets.
var proxySecrets = []string{"password", "bearerToken"}

// redacted returns a copy of the definition whose proxy credentials read
// "(set)", for printing.
func (r Repository) redacted() Repository {
	var def map[string]json.RawMessage
	if json.Unmarshal(r.JSON, &def) != nil || def["proxy"] == nil {
		return r
	}
	var section map[string]json.RawMessage
	if json.Unmarshal(def["proxy"], &section) != nil {
		return r
	}
	changed := false
	for _, k := range proxySecrets {
		if v, ok := section[k]; ok && string(v) != `""` {
			section[k], changed = json.RawMessage(`"(set)"`), true
		}
	}
	if !changed {
		return r
	}
	def["proxy"], _ = json.Marshal(section)
	out := r
	out.node = nil
	out.JSON, _ = json.Marshal(def)
	return out
}

// User is one entry of users. Its password is given only as PasswordHash
// or PasswordFile: a plain password has no place in a file kept in version
// control.
type User struct {
	Name        string  `yaml:"name"`
	Admin       bool    `yaml:"admin"`
	Permissions []Grant `yaml:"permissions,omitempty"`
	// PasswordHash is a bcrypt hash of the password.
	PasswordHash string `yaml:"passwordHash,omitempty"`
	// PasswordFile names a file holding the password (see ReadSecretFile);
	// a relative path is relative to the configuration file's folder.
	PasswordFile string `yaml:"passwordFile,omitempty"`
	// Pos is the line the user starts on.
	Pos Pos `yaml:"-"`
}

// Grant is a user's set of actions on one repository.
type Grant struct {
	Repository string   `yaml:"repository"`
	Actions    []string `yaml:"actions,flow"`
	// Pos is the line the grant starts on.
	Pos Pos `yaml:"-"`
}

// passwordRefused explains why a declared user may not have a plain password.
const passwordRefused = "a plain password is not accepted in the configuration file, which is meant " +
	"to be kept in version control: give passwordHash (a bcrypt hash, see `arca config hash-password`) " +
	"or passwordFile (a file holding the password)"

var (
	userKeys  = []string{"name", "admin", "permissions", "passwordHash", "passwordFile"}
	grantKeys = []string{"repository", "actions"}
)

// UnmarshalYAML reads a user, refusing unknown keys and plain passwords.
func (u *User) UnmarshalYAML(n *yaml.Node) error {
	problems := checkKeys(n, "user", userKeys, func(k *yaml.Node) string {
		if k.Value != "password" {
			return ""
		}
		who := "user"
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
				who = fmt.Sprintf("user %q", n.Content[i+1].Value)
			}
		}
		return fmt.Sprintf("line %d: %s: %s", k.Line, who, passwordRefused)
	})
	type plain User
	var p plain
	problems = append(problems, decodeProblems(n.Decode(&p))...)
	*u = User(p)
	u.Pos = Pos{Line: n.Line}
	if len(problems) > 0 {
		return &yaml.TypeError{Errors: problems}
	}
	return nil
}

// UnmarshalYAML reads a grant, refusing unknown keys.
func (g *Grant) UnmarshalYAML(n *yaml.Node) error {
	problems := checkKeys(n, "permission", grantKeys, nil)
	type plain Grant
	var p plain
	problems = append(problems, decodeProblems(n.Decode(&p))...)
	*g = Grant(p)
	g.Pos = Pos{Line: n.Line}
	if len(problems) > 0 {
		return &yaml.TypeError{Errors: problems}
	}
	return nil
}

// checkKeys reports the keys of mapping n that are not in known. special,
// when given, may explain a key better; it returns "" to leave it be.
func checkKeys(n *yaml.Node, what string, known []string, special func(k *yaml.Node) string) []string {
	if n.Kind != yaml.MappingNode {
		return nil // the decoder reports the wrong kind
	}
	var problems []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.ShortTag() == "!!merge" || contains(known, k.Value) {
			continue
		}
		if special != nil {
			if msg := special(k); msg != "" {
				problems = append(problems, msg)
				continue
			}
		}
		problems = append(problems, fmt.Sprintf("line %d: unknown key %q in a %s (known: %s)",
			k.Line, k.Value, what, strings.Join(known, ", ")))
	}
	return problems
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decodeProblems turns a decoding error into yaml.TypeError lines.
func decodeProblems(err error) []string {
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return te.Errors
	}
	return []string{err.Error()}
}

func typeErrorf(format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf(format, args...)}}
}

// entry is one key and value of a mapping, merges resolved.
type entry struct {
	key            string
	keyNode, value *yaml.Node
}

// mappingEntries lists a mapping's keys in order, with the keys of merged
// mappings ("<<: *anchor") that the mapping does not set itself.
func mappingEntries(n *yaml.Node) ([]entry, error) {
	var own, merged []entry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			sources := []*yaml.Node{v}
			if resolve(v).Kind == yaml.SequenceNode {
				sources = resolve(v).Content
			}
			for _, src := range sources {
				src = resolve(src)
				if src.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("line %d: a merge (<<) takes a mapping or a list of mappings", k.Line)
				}
				es, err := mappingEntries(src)
				if err != nil {
					return nil, err
				}
				merged = append(merged, es...)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: keys must be plain strings", k.Line)
		}
		if line, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("line %d: key %q already given on line %d", k.Line, k.Value, line)
		}
		seen[k.Value] = k.Line
		own = append(own, entry{k.Value, k, v})
	}
	for _, e := range merged {
		if _, set := seen[e.key]; !set {
			seen[e.key] = e.keyNode.Line
			own = append(own, e)
		}
	}
	return own, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// writeJSON writes a YAML node as JSON, keeping the order of keys.
func writeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	n = resolve(n)
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return writeJSON(buf, n.Content[0])
	case yaml.MappingNode:
		entries, err := mappingEntries(n)
		if err != nil {
			return err
		}
		buf.WriteByte('{')
		for i, e := range entries {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(e.key)
			buf.Write(k)
			buf.WriteByte(':')
			if err := writeJSON(buf, e.value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		var v any = n.Value
		switch n.ShortTag() {
		case "!!null":
			v = nil
		case "!!bool", "!!int":
			var x any
			if err := n.Decode(&x); err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
			v = x
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return fmt.Errorf("line %d: %s is not a number JSON can express", n.Line, n.Value)
			}
			v = f
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(b)
		return nil
	}
	return fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// ReadSecretFile reads a secret from a file, by the _FILE convention: the
// file's content, trailing newlines trimmed, is the value. An empty value is
// an error.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

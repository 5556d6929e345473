package repo

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestGroupMembers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, `{"name":"a","format":"raw","type":"hosted"}`)
	e.create(t, `{"name":"b","format":"raw","type":"hosted"}`)
	e.create(t, `{"name":"t","format":"test","type":"hosted"}`)
	e.create(t, `{"name":"g1","format":"raw","type":"group","group":{"members":["a","b"],"writeMember":"a"}}`)
	e.create(t, `{"name":"g2","format":"raw","type":"group","group":{"members":["g1"]}}`)

	for _, tt := range []struct{ def, want string }{
		{`{"name":"x","format":"raw","type":"group"}`, `needs a "group" section`},
		{`{"name":"x","format":"raw","type":"group","group":{"members":[]}}`, "at least one"},
		{`{"name":"x","format":"raw","type":"group","group":{"members":["a","a"]}}`, "listed twice"},
		{`{"name":"x","format":"raw","type":"group","group":{"members":["x"]}}`, "its own member"},
		{`{"name":"x","format":"raw","type":"group","group":{"members":["a"],"writeMember":"b"}}`, "not one of the members"},
		{`{"name":"x","format":"raw","type":"group","group":{"members":["nope"]}}`, "does not exist"},
		{`{"name":"x","format":"raw","type":"group","group":{"members":["t"]}}`, "is a test repository, not raw"},
		{`{"name":"x","format":"raw","type":"group","group":{"members":["g1"],"writeMember":"g1"}}`, "must be hosted"},
		{`{"name":"x","format":"raw","type":"group","group":{"members":["a"],"colour":"red"}}`, "unknown field"},
	} {
		var r Repository
		if err := json.Unmarshal([]byte(tt.def), &r); err != nil {
			t.Fatal(err)
		}
		err := e.svc.Create(ctx, &r)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Create(%s) = %v, want ErrInvalid saying %q", tt.def, err, tt.want)
		}
	}

	// g1 cannot take g2 as a member: g2 already stands in front of g1.
	var up Repository
	json.Unmarshal([]byte(`{"name":"g1","format":"raw","type":"group","group":{"members":["a","g2"]}}`), &up) //nolint:errcheck // a literal
	if err := e.svc.Update(ctx, &up); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("update making a cycle = %v", err)
	}
	// A member cannot be deleted while a group lists it.
	if err := e.svc.Delete(ctx, "b"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "g1") {
		t.Errorf("delete of a member = %v, want ErrInUse naming g1", err)
	}
	g, err := e.svc.Get(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := GroupSettingsOf(g)
	if err != nil || strings.Join(s.Members, ",") != "a,b" || s.WriteMember != "a" {
		t.Errorf("GroupSettingsOf = %+v, %v", s, err)
	}
}

package repo

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestProxySecrets(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	def := `{"name":"up","format":"raw","type":"proxy","proxy":{"url":"http://127.0.0.1:1/","username":"u","password":"hunter2"}}`
	r := &Repository{}
	if err := json.Unmarshal([]byte(def), r); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Create(ctx, r); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("Create without a key = %v, want ErrNoSecretKey", err)
	}
	if err := e.svc.SetSecretKey([]byte(strings.Repeat("k", 32))); err != nil {
		t.Fatal(err)
	}
	r = e.create(t, def)
	row, err := e.db.Queries().Repository(ctx, "up")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(row.Settings), "hunter2") || !strings.Contains(string(row.Settings), sealPrefix) {
		t.Errorf("stored definition does not seal the password: %s", row.Settings)
	}
	shown, err := json.Marshal(r.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(shown), sealPrefix) || !strings.Contains(string(shown), `"passwordSet":true`) ||
		!strings.Contains(string(shown), `"bearerTokenSet":false`) {
		t.Errorf("redacted definition %s", shown)
	}
	got, err := e.svc.Get(ctx, "up")
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.svc.ProxySettings(got)
	if err != nil || s.Password != "hunter2" || s.Username != "u" || s.MaxConnections != 16 {
		t.Fatalf("ProxySettings = %+v, %v", s, err)
	}

	// An update that leaves the password out (as a GET shows it) keeps it.
	var up Repository
	if err := json.Unmarshal(shown, &up); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Update(ctx, &up); err != nil {
		t.Fatal(err)
	}
	got, _ = e.svc.Get(ctx, "up")
	if s, err := e.svc.ProxySettings(got); err != nil || s.Password != "hunter2" {
		t.Errorf("after an update without the password: %+v, %v", s, err)
	}
	// Leaving out the username too says what to do.
	nameless := &Repository{}
	json.Unmarshal([]byte(`{"name":"up","format":"raw","type":"proxy","proxy":{"url":"http://127.0.0.1:1/"}}`), nameless) //nolint:errcheck // a literal
	if err := e.svc.Update(ctx, nameless); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "kept from before needs a username") {
		t.Errorf("update without username, password kept = %v", err)
	}
	// "" clears it.
	clear := &Repository{}
	json.Unmarshal([]byte(`{"name":"up","format":"raw","type":"proxy","proxy":{"url":"http://127.0.0.1:1/","password":""}}`), clear) //nolint:errcheck // a literal
	if err := e.svc.Update(ctx, clear); err != nil {
		t.Fatal(err)
	}
	got, _ = e.svc.Get(ctx, "up")
	if s, err := e.svc.ProxySettings(got); err != nil || s.Password != "" {
		t.Errorf("after clearing: %+v, %v", s, err)
	}
	// A sealed value this server did not seal is refused.
	forged := &Repository{}
	json.Unmarshal([]byte(`{"name":"up","format":"raw","type":"proxy","proxy":{"url":"http://x/","username":"u","password":"`+sealPrefix+`AAAA"}}`), forged) //nolint:errcheck // a literal
	if err := e.svc.Update(ctx, forged); !errors.Is(err, ErrInvalid) {
		t.Errorf("forged sealed password = %v, want ErrInvalid", err)
	}
}

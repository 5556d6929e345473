package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type auditEvent struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	Repository string    `json:"repository"`
	Path       string    `json:"path"`
	Remote     string    `json:"remote"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail"`
}

// auditEvents reads the whole audit log as admin, newest first, following
// the pages.
func auditEvents(t *testing.T, in *instance) []auditEvent {
	t.Helper()
	var all []auditEvent
	after := ""
	for range 100 {
		u := in.URL + "/api/v1/audit?limit=5"
		if after != "" {
			u += "&after=" + after
		}
		var page struct {
			Items []auditEvent `json:"items"`
			Next  string       `json:"next"`
		}
		out := curl(t, "-f", "-u", admin(), u)
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("audit page: %v: %s", err, out)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
	t.Fatal("the audit log does not end")
	return nil
}

// TestAuditLog checks that uploads, deletes, logins and settings changes are
// recorded with who, what, where, from where and how it ended.
func TestAuditLog(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	in.createUser("alice", "alice-password", false, "files:read")
	file := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(file, []byte("audited"), 0o644)
	begin := time.Now().Add(-time.Second)

	if got := curlStatus(t, "-u", admin(), "-T", file, in.URL+"/repository/files/dir/a.txt"); got != "201" {
		t.Fatalf("upload: %s", got)
	}
	if got := curlStatus(t, "-u", admin(), "-X", "DELETE", in.URL+"/repository/files/dir/a.txt"); got != "204" {
		t.Fatalf("delete: %s", got)
	}
	if got := curlStatus(t, "-u", "alice:alice-password", in.URL+"/repository/files/"); got != "200" {
		t.Fatalf("alice lists: %s", got)
	}
	if got := curlStatus(t, "-u", "alice:wrong-password", in.URL+"/repository/files/"); got != "401" {
		t.Fatalf("alice with a wrong password: %s", got)
	}
	if got := curlStatus(t, "-u", "alice:alice-password", "-H", "Expect:", "-T", file,
		in.URL+"/repository/files/b.txt"); got != "403" {
		t.Fatalf("alice uploads: %s", got)
	}
	in.cliOK(asAdminEnv, "repo", "update", "files", "--write-policy", "allow")

	events := auditEvents(t, in)
	for i := 1; i < len(events); i++ {
		if events[i].ID >= events[i-1].ID {
			t.Fatalf("audit events not newest first: %d after %d", events[i].ID, events[i-1].ID)
		}
	}
	check := func(what string, want auditEvent) {
		t.Helper()
		var got *auditEvent
		for i := range events {
			e := events[i]
			if e.Action == want.Action && e.Actor == want.Actor && e.Outcome == want.Outcome &&
				e.Repository == want.Repository && e.Path == want.Path {
				got = &events[i]
				break
			}
		}
		if got == nil {
			t.Errorf("no audit event for %s: want %+v", what, want)
			return
		}
		host, _, err := net.SplitHostPort(got.Remote)
		if err != nil || host != "127.0.0.1" {
			t.Errorf("%s: remote %q, want 127.0.0.1:port", what, got.Remote)
		}
		if got.At.Before(begin) || got.At.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: at %s is not the time of the test", what, got.At)
		}
		if want.Detail != "" && !strings.Contains(got.Detail, want.Detail) {
			t.Errorf("%s: detail %q lacks %q", what, got.Detail, want.Detail)
		}
	}
	check("upload", auditEvent{Actor: "admin", Action: "artifact.write", Repository: "files", Path: "dir/a.txt",
		Outcome: "success"})
	check("delete", auditEvent{Actor: "admin", Action: "artifact.delete", Repository: "files", Path: "dir/a.txt",
		Outcome: "success"})
	check("alice's login", auditEvent{Actor: "alice", Action: "login", Outcome: "success", Detail: "password"})
	check("alice's failed login", auditEvent{Actor: "alice", Action: "login", Outcome: "failure"})
	check("alice's refused upload", auditEvent{Actor: "alice", Action: "artifact.write", Repository: "files",
		Path: "b.txt", Outcome: "denied"})
	check("settings change", auditEvent{Actor: "admin", Action: "repository.update", Repository: "files",
		Outcome: "success"})
	check("user creation", auditEvent{Actor: "admin", Action: "user.create", Path: "user/alice", Outcome: "success"})
	check("repository creation", auditEvent{Actor: "admin", Action: "repository.create", Repository: "files",
		Outcome: "success"})

	// Reading is not audited, and a remembered password check is no new login.
	logins := 0
	for _, e := range events {
		if e.Action == "artifact.read" {
			t.Errorf("a read was audited: %+v", e)
		}
		if e.Actor == "alice" && e.Action == "login" && e.Outcome == "success" {
			logins++
		}
	}
	if logins != 1 {
		t.Errorf("%d successful logins of alice recorded, want 1 (the second request's check is remembered)", logins)
	}
	// Only admins read the audit log.
	if got := curlStatus(t, "-u", "alice:alice-password", in.URL+"/api/v1/audit"); got != "403" {
		t.Errorf("alice reads the audit log: %s, want 403", got)
	}
}

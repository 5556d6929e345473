package meta

import (
	"context"
	"errors"
	"testing"
)

func TestNpmPackages(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	r := mustRepo(t, db.Queries(), "js")
	q := db.Npm()

	if _, err := q.NpmPackage(ctx, r.ID, "left-pad"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing package: %v, want ErrNotFound", err)
	}
	if err := q.AddNpmVersion(ctx, r.ID, "left-pad", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := q.AddNpmVersion(ctx, r.ID, "left-pad", "1.0.0"); !errors.Is(err, ErrExists) {
		t.Errorf("second AddNpmVersion: %v, want ErrExists", err)
	}
	if known, err := q.NpmVersionKnown(ctx, r.ID, "left-pad", "1.0.0"); err != nil || !known {
		t.Errorf("NpmVersionKnown: %v, %v", known, err)
	}

	p := &NpmPackage{RepositoryID: r.ID, Name: "left-pad", Document: []byte(`{"a":1}`),
		Description: "Pads strings_on the LEFT", Keywords: "pad string", Revision: 1}
	if err := q.PutNpmPackage(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Revision, p.Document = 2, []byte(`{"a":2}`)
	if err := q.PutNpmPackage(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := q.NpmPackage(ctx, r.ID, "left-pad")
	if err != nil || got.Revision != 2 || string(got.Document) != `{"a":2}` {
		t.Errorf("NpmPackage: %+v, %v", got, err)
	}
	if rev, _, err := q.NpmPackageStamp(ctx, r.ID, "left-pad"); err != nil || rev != 2 {
		t.Errorf("NpmPackageStamp: %d, %v", rev, err)
	}
	other := &NpmPackage{RepositoryID: r.ID, Name: "right-pad", Document: []byte(`{}`), Description: "pads right"}
	if err := q.PutNpmPackage(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		words []string
		want  int
	}{
		{nil, 2}, {[]string{"PAD"}, 2}, {[]string{"left"}, 1}, {[]string{"string", "left"}, 1},
		{[]string{"strings_on"}, 1}, {[]string{"s%n"}, 0}, {[]string{"_"}, 1},
	} {
		found, err := q.SearchNpmPackages(ctx, r.ID, c.words, 0, 10)
		if err != nil || len(found) != c.want {
			t.Errorf("search %v: %d packages, %v; want %d", c.words, len(found), err, c.want)
		}
	}

	if err := q.DeleteNpmPackage(ctx, r.ID, "left-pad"); err != nil {
		t.Fatal(err)
	}
	if err := q.DeleteNpmPackage(ctx, r.ID, "left-pad"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if known, _ := q.NpmVersionKnown(ctx, r.ID, "left-pad", "1.0.0"); !known {
		t.Error("a deleted package's versions must stay known")
	}
}

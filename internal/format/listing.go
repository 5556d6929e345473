package format

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"arca/internal/repo"
)

// Entry is one child of a listed folder.
type Entry struct {
	Name         string `json:"name"`
	Type         string `json:"type"` // "file" or "dir"
	Size         int64  `json:"size,omitempty"`
	SHA256       string `json:"sha256,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
}

// MarshalJSON writes a file's size even when it is 0, which omitempty
// would drop; a folder has only a name and a type.
func (e Entry) MarshalJSON() ([]byte, error) {
	if e.Type != "file" {
		return json.Marshal(struct {
			Name string `json:"name"`
			Type string `json:"type"`
		}{e.Name, e.Type})
	}
	return json.Marshal(struct {
		Name         string `json:"name"`
		Type         string `json:"type"`
		Size         int64  `json:"size"`
		SHA256       string `json:"sha256,omitempty"`
		LastModified string `json:"lastModified,omitempty"`
	}{e.Name, e.Type, e.Size, e.SHA256, e.LastModified})
}

// Listing is a folder's JSON document.
type Listing struct {
	Path     string  `json:"path"`
	Children []Entry `json:"children"`
}

// ListFolder lists the stored files and folders directly under folder
// ("" for the root, else a path ending in "/"). A folder exists while some
// file is under it: an empty listing of a folder other than the root is
// ErrNotFound.
func ListFolder(r *Request, repos *repo.Service, folder string) (Listing, error) {
	l := Listing{Path: folder, Children: []Entry{}}
	err := repos.FolderEntries(r.Context(), r.Repo, folder, func(dir string, a *repo.Asset) error {
		if a == nil {
			l.Children = append(l.Children, Entry{Name: dir, Type: "dir"})
			return nil
		}
		l.Children = append(l.Children, Entry{
			Name: strings.TrimPrefix(a.Path, folder), Type: "file", Size: a.Blob.Size, SHA256: a.Blob.SHA256,
			LastModified: a.UpdatedAt.UTC().Format(time.RFC3339),
		})
		return nil
	})
	if err != nil {
		return l, err
	}
	if len(l.Children) == 0 && folder != "" {
		return l, fmt.Errorf("folder %s: %w", folder, repo.ErrNotFound)
	}
	return l, nil
}

// WriteListing answers a listing: JSON when the client asks for it, an
// HTML page otherwise.
func WriteListing(w http.ResponseWriter, r *Request, l Listing) error {
	if wantsJSON(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(l)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return listingPage.Execute(w, struct {
		Repo string
		Listing
	}{r.Repo.Name, l})
}

// wantsJSON reports whether an Accept header asks for JSON rather than HTML.
func wantsJSON(accept string) bool {
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

var listingPage = template.Must(template.New("listing").Funcs(template.FuncMap{
	// href starts with "./" so that a name holding a colon ("a:b.txt")
	// stays a relative link instead of reading as a URL scheme.
	"href": func(e Entry) string {
		if e.Type == "dir" {
			return "./" + url.PathEscape(e.Name) + "/"
		}
		return "./" + url.PathEscape(e.Name)
	},
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Repo}}/{{.Path}}</title></head>
<body><h1>{{.Repo}}/{{.Path}}</h1>
<table>
<tr><th>Name</th><th>Size</th><th>Last modified</th><th>SHA-256</th></tr>
{{if .Path}}<tr><td><a href="../">../</a></td><td></td><td></td><td></td></tr>{{end}}
{{range .Children}}<tr><td><a href="{{href .}}">{{.Name}}{{if eq .Type "dir"}}/{{end}}</a></td>
<td>{{if eq .Type "file"}}{{.Size}}{{end}}</td><td>{{.LastModified}}</td><td>{{.SHA256}}</td></tr>
{{end}}</table></body></html>
`))

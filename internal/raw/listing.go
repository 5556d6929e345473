package raw

import (
	"net/http"

	"arca/internal/format"
)

// list answers a folder listing: JSON when the client asks for it, HTML
// otherwise. A folder exists while some file is under it; the root always
// exists.
func (f *Format) list(w http.ResponseWriter, r *format.Request) error {
	l, err := format.ListFolder(r, f.repos, r.Path)
	if err != nil {
		return err
	}
	return format.WriteListing(w, r, l)
}

package main

import (
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/gc"
	"arca/internal/maven"
	"arca/internal/meta"
	"arca/internal/npm"
	"arca/internal/oci"
	"arca/internal/pypi"
	"arca/internal/raw"
	"arca/internal/repo"
)

// wiredFormats are the formats this binary serves, with the repository
// service they share.
type wiredFormats struct {
	repos *repo.Service
	list  []format.Format
	// pruners apply the formats' cleanup settings in garbage collection.
	pruners []gc.Pruner
}

// newFormats is the one list of formats. A new format is one package and
// one line here.
func newFormats(db *meta.DB, blobs *blob.Store, authn *auth.Service) wiredFormats {
	repos := repo.NewService(db, blobs)
	mvn := maven.New(repos)
	list := []format.Format{
		raw.New(repos),
		oci.New(repos, authn),
		npm.New(repos, authn),
		pypi.New(repos),
		mvn,
	}
	for _, f := range list {
		repos.RegisterFormat(f.ID(), f.ValidateSettings)
	}
	return wiredFormats{repos: repos, list: list, pruners: []gc.Pruner{mvn}}
}

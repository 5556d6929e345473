package main

import (
	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/gc"
	"arca/internal/maven"
	"arca/internal/npm"
	"arca/internal/oci"
	"arca/internal/proxy"
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
	// oci is the OCI registry, which takes the mirror settings.
	oci *oci.Format
}

// newFormats is the one list of formats. A new format is one package and
// one line here. repos, authn and cache may be nil when the formats are
// wanted only to validate definitions.
func newFormats(repos *repo.Service, authn *auth.Service, cache *proxy.Service) wiredFormats {
	mvn := maven.New(repos, cache)
	registry := oci.New(repos, authn, cache)
	list := []format.Format{
		raw.New(repos, cache),
		registry,
		npm.New(repos, authn, cache),
		pypi.New(repos, cache),
		mvn,
	}
	if repos != nil {
		for _, f := range list {
			repos.RegisterFormat(f.ID(), f.ValidateSettings)
		}
	}
	return wiredFormats{repos: repos, list: list, pruners: []gc.Pruner{mvn}, oci: registry}
}

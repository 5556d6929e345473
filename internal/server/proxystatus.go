package server

import (
	"context"
	"encoding/json"

	"arca/internal/repo"
)

// withProxyStatus adds a proxy repository's cache status to its
// definition, as "proxyStatus"; other repositories are shown as they are.
// A status that cannot be read is left out, and logged.
func (s *Server) withProxyStatus(ctx context.Context, r *repo.Repository) any {
	if r.Type != repo.Proxy || s.cache == nil {
		return r
	}
	st, err := s.cache.Status(ctx, r)
	if err != nil {
		s.log.WarnContext(ctx, "read proxy status", "repository", r.Name, "error", err)
		return r
	}
	b, err := json.Marshal(r)
	if err != nil {
		return r
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return r
	}
	doc["proxyStatus"], _ = json.Marshal(st)
	return doc
}

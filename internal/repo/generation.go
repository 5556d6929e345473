package repo

// Content generations let a caller keep something derived from a
// repository's content (a group's merged package document, say) and know
// when it has to be derived again: every write that goes through the
// service raises the repository's generation once the write has ended,
// whether it succeeded or not. Generations live in this process only, so a
// change made by another process (another node, `arca gc` run from the
// command line) is not seen: keepers of derived views bound their age too.

// Generation returns repository id's current content generation.
func (s *Service) Generation(id int64) uint64 {
	s.gensMu.Lock()
	defer s.gensMu.Unlock()
	return s.gens[id]
}

// Changed raises repository id's generation for a change made to its
// content without the service: garbage collection pruning its manifests.
func (s *Service) Changed(id int64) { s.changed(id) }

// changed raises repository id's generation. Writers defer it, so that it
// runs after their transaction has committed: a view derived from data
// read before the commit then always carries an older generation.
func (s *Service) changed(id int64) {
	s.gensMu.Lock()
	defer s.gensMu.Unlock()
	s.gens[id]++
}

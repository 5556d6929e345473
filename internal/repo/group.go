package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// GroupSettings is the "group" section of a group repository: the
// repositories it stands in front of, in the order they are asked, and the
// one that takes writes made through the group.
type GroupSettings struct {
	Members []string `json:"members"`
	// WriteMember, a hosted member, takes uploads made to the group; ""
	// makes the group read-only.
	WriteMember string `json:"writeMember"`
}

// GroupSettingsOf reads a group repository's settings.
func GroupSettingsOf(r *Repository) (GroupSettings, error) {
	var g GroupSettings
	raw := r.Sections[string(Group)]
	if raw == nil {
		return g, fmt.Errorf("%w: a group repository needs a \"group\" section with its members", ErrInvalid)
	}
	if err := DecodeSection("group", raw, &g); err != nil {
		return g, err
	}
	return g, nil
}

// checkGroup validates a group section on its own: members named once,
// at least one, and a write member among them.
func checkGroup(r *Repository) error {
	g, err := GroupSettingsOf(r)
	if err != nil {
		return err
	}
	if len(g.Members) == 0 {
		return fmt.Errorf("%w: group settings: members must name at least one repository", ErrInvalid)
	}
	seen := map[string]bool{}
	for _, m := range g.Members {
		switch {
		case m == r.Name:
			return fmt.Errorf("%w: group settings: group %s cannot be its own member", ErrInvalid, r.Name)
		case seen[m]:
			return fmt.Errorf("%w: group settings: member %q is listed twice", ErrInvalid, m)
		}
		seen[m] = true
	}
	if g.WriteMember != "" && !seen[g.WriteMember] {
		return fmt.Errorf("%w: group settings: writeMember %q is not one of the members", ErrInvalid, g.WriteMember)
	}
	return nil
}

// checkMembers validates a group's members against the stored
// repositories: each exists and has the group's format, the write member
// is hosted, and no group reaches itself through its members.
func (s *Service) checkMembers(ctx context.Context, r *Repository) error {
	if r.Type != Group {
		return nil
	}
	g, err := GroupSettingsOf(r)
	if err != nil {
		return err
	}
	for _, name := range g.Members {
		m, err := s.Get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			return &FieldError{Field: "group", Err: fmt.Errorf("%w: group settings: member %q does not exist", ErrInvalid, name)}
		}
		if err != nil {
			return err
		}
		if m.Format != r.Format {
			return &FieldError{Field: "group", Err: fmt.Errorf("%w: group settings: member %q is a %s repository, not %s",
				ErrInvalid, name, m.Format, r.Format)}
		}
		if name == g.WriteMember && m.Type != Hosted {
			return &FieldError{Field: "group", Err: fmt.Errorf("%w: group settings: writeMember %q is a %s repository; it must be hosted",
				ErrInvalid, name, m.Type)}
		}
	}
	if path, err := s.cycle(ctx, r.Name, g.Members, []string{r.Name}); err != nil || path != nil {
		if err == nil {
			err = &FieldError{Field: "group", Err: fmt.Errorf("%w: group settings: the members would make a cycle: %v",
				ErrInvalid, path)}
		}
		return err
	}
	return nil
}

// cycle returns the path by which one of members leads back to start
// through group memberships, or nil.
func (s *Service) cycle(ctx context.Context, start string, members, path []string) ([]string, error) {
	for _, name := range members {
		if name == start {
			return append(slices.Clone(path), name), nil
		}
		if slices.Contains(path, name) {
			continue // a cycle not through start; checked when that group was saved
		}
		m, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if m.Type != Group {
			continue
		}
		g, err := GroupSettingsOf(m)
		if err != nil {
			return nil, err
		}
		found, err := s.cycle(ctx, start, g.Members, append(path, name))
		if err != nil || found != nil {
			return found, err
		}
	}
	return nil, nil
}

// groupMembers lists the members of a stored group definition, for the
// check that a member is not deleted.
func groupMembers(r *Repository) []string {
	var g GroupSettings
	if raw := r.Sections[string(Group)]; raw != nil {
		json.Unmarshal(raw, &g) //nolint:errcheck // stored by this service, validated then
	}
	return g.Members
}

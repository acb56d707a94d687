package registry

import (
	"context"
	"maps"
	"slices"
	"strconv"
)

// AliasARN returns the ARN of alias of function name.
func (r *Registry) AliasARN(name, alias string) string { return r.arnPfx + name + ":" + alias }

func checkAliasFields(v *validation, name string, version, description *string) {
	if !isAliasName(name) {
		if len(name) > MaxAliasNameLen {
			v.maxLen("name", name, MaxAliasNameLen)
		} else {
			v.pattern("name", name, aliasNamePattern)
		}
	}
	if version != nil && *version != Latest && !isVersion(*version) {
		v.pattern("functionVersion", *version, versionPattern)
	}
	if description != nil {
		v.maxLen("description", *description, MaxDescriptionLen)
	}
}

// checkAliasTarget checks that the versions an alias routes to exist.
func (r *Registry) checkAliasTarget(fn string, rec *fnRecord, version string, weights map[string]float64) error {
	if version != Latest {
		n, _ := strconv.Atoi(version)
		if !rec.hasVersion(n) {
			return notFound("Function not found: %s", r.QualifiedARN(fn, version))
		}
	}
	return checkRouting(weights, version, rec.hasVersion)
}

// CreateAlias creates an alias of function name. Errors match ErrNotFound,
// ErrInvalid, ErrValidation, ErrExists or ErrConflict.
func (r *Registry) CreateAlias(ctx context.Context, name string, in AliasInput) (*Alias, error) {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return nil, err
	}
	var v validation
	checkAliasFields(&v, in.Name, &in.FunctionVersion, &in.Description)
	if err := v.err(); err != nil {
		return nil, err
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return nil, err
	}
	if _, ok := rec.Aliases[in.Name]; ok {
		return nil, newError(ErrExists, "Alias already exists: %s", r.AliasARN(fn, in.Name))
	}
	if err := r.checkAliasTarget(fn, rec, in.FunctionVersion, in.AdditionalVersionWeights); err != nil {
		return nil, err
	}
	a := &Alias{
		Name:                     in.Name,
		FunctionVersion:          in.FunctionVersion,
		Description:              in.Description,
		AdditionalVersionWeights: nonEmpty(in.AdditionalVersionWeights),
		RevisionID:               newRevisionID(),
	}
	if rec.Aliases == nil {
		rec.Aliases = make(map[string]*Alias, 1)
	}
	rec.Aliases[a.Name] = a
	if err := r.save(ctx, fn, rec, rev); err != nil {
		return nil, err
	}
	return a, nil
}

func nonEmpty(m map[string]float64) map[string]float64 {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// UpdateAlias changes an alias. Errors match ErrNotFound, ErrInvalid,
// ErrValidation, ErrPreconditionFailed or ErrConflict.
func (r *Registry) UpdateAlias(ctx context.Context, name, alias string, in AliasUpdate) (*Alias, error) {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return nil, err
	}
	var v validation
	checkAliasFields(&v, alias, in.FunctionVersion, in.Description)
	if err := v.err(); err != nil {
		return nil, err
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return nil, err
	}
	old, ok := rec.Aliases[alias]
	if !ok {
		return nil, notFound("Alias not found: %s", r.AliasARN(fn, alias))
	}
	if in.RevisionID != "" && in.RevisionID != old.RevisionID {
		return nil, revisionMismatch()
	}
	a := *old
	setIf(&a.FunctionVersion, in.FunctionVersion)
	setIf(&a.Description, in.Description)
	if in.AdditionalVersionWeights != nil {
		a.AdditionalVersionWeights = nonEmpty(*in.AdditionalVersionWeights)
	}
	if err := r.checkAliasTarget(fn, rec, a.FunctionVersion, a.AdditionalVersionWeights); err != nil {
		return nil, err
	}
	a.RevisionID = newRevisionID()
	rec.Aliases[alias] = &a
	if err := r.save(ctx, fn, rec, rev); err != nil {
		return nil, err
	}
	return &a, nil
}

// DeleteAlias deletes an alias and its event invoke configuration. Errors
// match ErrNotFound or ErrConflict.
func (r *Registry) DeleteAlias(ctx context.Context, name, alias string) error {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return err
	}
	rec, rev, err := r.load(ctx, fn)
	if err != nil {
		return err
	}
	if _, ok := rec.Aliases[alias]; !ok {
		return notFound("Alias not found: %s", r.AliasARN(fn, alias))
	}
	delete(rec.Aliases, alias)
	delete(rec.EventInvoke, alias)
	delete(rec.URLs, alias) // its URL goes with it
	return r.save(ctx, fn, rec, rev)
}

// GetAlias returns an alias. Errors match ErrNotFound.
func (r *Registry) GetAlias(name, alias string) (*Alias, error) {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.fns[fn]
	if e == nil || e.rec == nil {
		return nil, notFound("Function not found: %s", r.FunctionARN(fn))
	}
	a, ok := e.rec.Aliases[alias]
	if !ok {
		return nil, notFound("Alias not found: %s", r.AliasARN(fn, alias))
	}
	return a, nil
}

// ListAliases returns the aliases of function name in name order, only
// those whose primary version is functionVersion when it is set, paginated
// like List.
func (r *Registry) ListAliases(name, functionVersion, marker string, maxItems int) ([]*Alias, string, error) {
	fn, err := r.parseUnqualified(name)
	if err != nil {
		return nil, "", err
	}
	var v validation
	if functionVersion != "" && functionVersion != Latest && !isVersion(functionVersion) {
		v.pattern("functionVersion", functionVersion, versionPattern)
	}
	if err := v.err(); err != nil {
		return nil, "", err
	}
	maxItems, err = checkMaxItems(maxItems)
	if err != nil {
		return nil, "", err
	}
	after, err := decodeMarker(marker)
	if err != nil {
		return nil, "", err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.fns[fn]
	if e == nil || e.rec == nil {
		return nil, "", notFound("Function not found: %s", r.FunctionARN(fn))
	}
	names := slices.Sorted(maps.Keys(e.rec.Aliases))
	var out []*Alias
	for _, an := range names {
		if an <= after && after != "" {
			continue
		}
		a := e.rec.Aliases[an]
		if functionVersion != "" && a.FunctionVersion != functionVersion {
			continue
		}
		if len(out) == maxItems {
			return out, encodeMarker(out[len(out)-1].Name), nil
		}
		out = append(out, a)
	}
	return out, "", nil
}

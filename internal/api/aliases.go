package api

import (
	"net/http"

	"moat.dev/moat/internal/registry"
)

// Alias operations, with weighted routing between versions.

func (s *Server) aliasConfiguration(fn string, a *registry.Alias) *AliasConfiguration {
	ac := &AliasConfiguration{
		AliasArn:        s.opts.Registry.AliasARN(fn, a.Name),
		Name:            a.Name,
		FunctionVersion: a.FunctionVersion,
		Description:     a.Description,
		RevisionID:      a.RevisionID,
	}
	if len(a.AdditionalVersionWeights) > 0 {
		ac.RoutingConfig = &AliasRoutingConfiguration{AdditionalVersionWeights: a.AdditionalVersionWeights}
	}
	return ac
}

// writeAlias answers with a's AliasConfiguration, or with the registry's
// err.
func (s *Server) writeAlias(reg *registry.Registry, w http.ResponseWriter, r *http.Request, status int, a *registry.Alias, err error) error {
	if err != nil {
		return registryError(err)
	}
	fn, err := aliasFunction(reg, r)
	if err != nil {
		return err
	}
	return writeJSON(w, status, s.aliasConfiguration(fn, a))
}

// aliasFunction returns the bare function name of the path, which may hold
// an ARN; alias ARNs are built from it.
func aliasFunction(reg *registry.Registry, r *http.Request) (string, error) {
	fn, err := reg.ParseName(r.PathValue("name"))
	return fn, registryError(err)
}

// POST /2015-03-31/functions/{name}/aliases
func (s *Server) createAlias(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req CreateAliasRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	switch {
	case req.Name == nil:
		return nullValue("name")
	case req.FunctionVersion == nil:
		return nullValue("functionVersion")
	}
	in := registry.AliasInput{Name: *req.Name, FunctionVersion: *req.FunctionVersion, Description: req.Description}
	if req.RoutingConfig != nil {
		in.AdditionalVersionWeights = req.RoutingConfig.AdditionalVersionWeights
	}
	a, err := reg.CreateAlias(r.Context(), r.PathValue("name"), in)
	return s.writeAlias(reg, w, r, http.StatusCreated, a, err)
}

// GET /2015-03-31/functions/{name}/aliases/{alias}
func (s *Server) getAlias(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	a, err := reg.GetAlias(r.PathValue("name"), r.PathValue("alias"))
	return s.writeAlias(reg, w, r, http.StatusOK, a, err)
}

// PUT /2015-03-31/functions/{name}/aliases/{alias}
func (s *Server) updateAlias(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req UpdateAliasRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	in := registry.AliasUpdate{FunctionVersion: req.FunctionVersion, Description: req.Description, RevisionID: req.RevisionID}
	if req.RoutingConfig != nil {
		weights := req.RoutingConfig.AdditionalVersionWeights
		in.AdditionalVersionWeights = &weights
	}
	a, err := reg.UpdateAlias(r.Context(), r.PathValue("name"), r.PathValue("alias"), in)
	return s.writeAlias(reg, w, r, http.StatusOK, a, err)
}

// DELETE /2015-03-31/functions/{name}/aliases/{alias}
func (s *Server) deleteAlias(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	return noContent(w, reg.DeleteAlias(r.Context(), r.PathValue("name"), r.PathValue("alias")))
}

// GET /2015-03-31/functions/{name}/aliases
func (s *Server) listAliases(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	marker, maxItems, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := reg.ListAliases(r.PathValue("name"), r.URL.Query().Get("FunctionVersion"), marker, maxItems)
	if err != nil {
		return registryError(err)
	}
	fn, err := aliasFunction(reg, r)
	if err != nil {
		return err
	}
	resp := ListAliasesResponse{Aliases: make([]*AliasConfiguration, len(items)), NextMarker: next}
	for i, a := range items {
		resp.Aliases[i] = s.aliasConfiguration(fn, a)
	}
	return writeJSON(w, http.StatusOK, resp)
}

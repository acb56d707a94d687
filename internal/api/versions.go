package api

import (
	"net/http"

	"moat.dev/moat/internal/registry"
)

// Version operations: publish and list.

// POST /2015-03-31/functions/{name}/versions
func (s *Server) publishVersion(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req PublishVersionRequest
	if len(body) > 0 { // every member is optional; some clients send no body
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
	}
	c, err := reg.PublishVersion(r.Context(), registry.PublishInput{
		FunctionName: r.PathValue("name"),
		CodeSha256:   req.CodeSha256,
		Description:  req.Description,
		RevisionID:   req.RevisionID,
	})
	return s.writeConfig(w, http.StatusCreated, c, err)
}

// GET /2015-03-31/functions/{name}/versions
func (s *Server) listVersions(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	marker, maxItems, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := reg.ListVersions(r.Context(), r.PathValue("name"), marker, maxItems)
	if err != nil {
		return registryError(err)
	}
	resp := ListVersionsByFunctionResponse{Versions: make([]FunctionConfiguration, len(items)), NextMarker: next}
	for i, c := range items {
		// Listed versions, $LATEST included, carry qualified ARNs.
		s.renderConfiguration(&resp.Versions[i], c, reg.QualifiedARN(c.FunctionName, c.Version))
	}
	return writeLargeJSON(w, http.StatusOK, resp)
}

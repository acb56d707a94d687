package api

import (
	"net/http"

	"moat.dev/moat/internal/registry"
)

// Reserved concurrency operations.

// PUT /2017-10-31/functions/{name}/concurrency
func (s *Server) putConcurrency(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req PutFunctionConcurrencyRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if req.ReservedConcurrentExecutions == nil {
		return nullValue("reservedConcurrentExecutions")
	}
	n, err := reg.PutConcurrency(r.Context(), r.PathValue("name"), *req.ReservedConcurrentExecutions)
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, Concurrency{ReservedConcurrentExecutions: &n})
}

// GET /2019-09-30/functions/{name}/concurrency
func (s *Server) getConcurrency(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	n, err := reg.GetConcurrency(r.PathValue("name"))
	if err != nil {
		return registryError(err)
	}
	var resp Concurrency
	if n >= 0 {
		resp.ReservedConcurrentExecutions = &n
	}
	return writeJSON(w, http.StatusOK, resp)
}

// DELETE /2017-10-31/functions/{name}/concurrency
func (s *Server) deleteConcurrency(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	return noContent(w, reg.DeleteConcurrency(r.Context(), r.PathValue("name")))
}

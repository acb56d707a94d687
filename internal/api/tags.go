package api

import (
	"net/http"

	"moat.dev/moat/internal/registry"
)

// Tags (API version 2017-03-31), account settings (2016-08-19) and the
// list of a function's event invoke configs (2019-09-25).

// TagsRequest is TagResource's body; ListTags answers with the same shape.
type TagsRequest struct {
	Tags map[string]string `json:"Tags"`
}

// POST /2017-03-31/tags/{arn}
func (s *Server) tagResource(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req TagsRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	return noContent(w, reg.TagResource(r.Context(), r.PathValue("arn"), req.Tags))
}

// DELETE /2017-03-31/tags/{arn}?tagKeys=K&tagKeys=L
func (s *Server) untagResource(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	return noContent(w, reg.UntagResource(r.Context(), r.PathValue("arn"), r.URL.Query()["tagKeys"]))
}

// GET /2017-03-31/tags/{arn}
func (s *Server) listTags(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	tags, err := reg.ListTags(r.PathValue("arn"))
	if err != nil {
		return registryError(err)
	}
	if tags == nil {
		tags = map[string]string{}
	}
	return writeJSON(w, http.StatusOK, TagsRequest{Tags: tags})
}

// AccountSettings is GetAccountSettings' answer.
type AccountSettings struct {
	AccountLimit struct {
		TotalCodeSize                  int64 `json:"TotalCodeSize"`
		CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
		CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
		ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
		UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
	} `json:"AccountLimit"`
	AccountUsage struct {
		TotalCodeSize int64 `json:"TotalCodeSize"`
		FunctionCount int   `json:"FunctionCount"`
	} `json:"AccountUsage"`
}

// totalCodeSizeLimit is Lambda's default storage quota for functions and
// layers (75 GB).
const totalCodeSizeLimit = 80530636800

// GET /2016-08-19/account-settings/
func (s *Server) getAccountSettings(reg *registry.Registry, w http.ResponseWriter, _ *http.Request, _ []byte) error {
	u := reg.Account()
	var out AccountSettings
	out.AccountLimit.TotalCodeSize = totalCodeSizeLimit
	out.AccountLimit.CodeSizeUnzipped = u.CodeSizeUnzipped
	out.AccountLimit.CodeSizeZipped = u.CodeSizeZipped
	out.AccountLimit.ConcurrentExecutions = u.ConcurrentExecutions
	out.AccountLimit.UnreservedConcurrentExecutions = u.UnreservedConcurrency
	out.AccountUsage.TotalCodeSize = u.TotalCodeSize
	out.AccountUsage.FunctionCount = u.FunctionCount
	return writeJSON(w, http.StatusOK, out)
}

package api

import (
	"net/http"
	"strconv"

	"moat.dev/moat/internal/registry"
)

// Function URL operations (API version 2021-10-31).

// FunctionURLConfig is Create/Get/UpdateFunctionUrlConfig's answer and an
// item of ListFunctionUrlConfigs.
type FunctionURLConfig struct {
	FunctionURL      string `json:"FunctionUrl"`
	FunctionArn      string `json:"FunctionArn"`
	AuthType         string `json:"AuthType"`
	Cors             *Cors  `json:"Cors,omitempty"`
	CreationTime     string `json:"CreationTime"`
	LastModifiedTime string `json:"LastModifiedTime,omitempty"`
	InvokeMode       string `json:"InvokeMode"`
}

// Cors is a function URL's CORS settings on the wire.
type Cors struct {
	AllowCredentials *bool    `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           *int     `json:"MaxAge,omitempty"`
}

// FunctionURLRequest is the body of Create and UpdateFunctionUrlConfig.
type FunctionURLRequest struct {
	AuthType   *string `json:"AuthType"`
	Cors       *Cors   `json:"Cors"`
	InvokeMode *string `json:"InvokeMode"`
}

func (s *Server) functionURL(c *registry.URLConfig, arn string) *FunctionURLConfig {
	out := &FunctionURLConfig{
		FunctionArn:      arn,
		AuthType:         c.AuthType,
		CreationTime:     c.Created.UTC().Format(lastModifiedLayout),
		LastModifiedTime: c.Modified.UTC().Format(lastModifiedLayout),
		InvokeMode:       c.InvokeMode,
	}
	if s.opts.URLBase != nil {
		out.FunctionURL = s.opts.URLBase(c.ID)
	}
	if co := c.Cors; co != nil {
		out.Cors = &Cors{AllowHeaders: co.AllowHeaders, AllowMethods: co.AllowMethods, AllowOrigins: co.AllowOrigins,
			ExposeHeaders: co.ExposeHeaders}
		if co.AllowCredentials {
			out.Cors.AllowCredentials = &co.AllowCredentials
		}
		if co.MaxAge > 0 {
			out.Cors.MaxAge = &co.MaxAge
		}
	}
	return out
}

func urlUpdate(body []byte) (registry.URLUpdate, error) {
	var req FunctionURLRequest
	if len(body) > 0 {
		if err := decodeJSON(body, &req); err != nil {
			return registry.URLUpdate{}, err
		}
	}
	in := registry.URLUpdate{AuthType: req.AuthType, InvokeMode: req.InvokeMode}
	if c := req.Cors; c != nil {
		in.Cors = &registry.Cors{AllowHeaders: c.AllowHeaders, AllowMethods: c.AllowMethods, AllowOrigins: c.AllowOrigins,
			ExposeHeaders: c.ExposeHeaders}
		if c.AllowCredentials != nil {
			in.Cors.AllowCredentials = *c.AllowCredentials
		}
		if c.MaxAge != nil {
			in.Cors.MaxAge = *c.MaxAge
		}
	}
	return in, nil
}

// POST /2021-10-31/functions/{name}/url
func (s *Server) createFunctionURL(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	in, err := urlUpdate(body)
	if err != nil {
		return err
	}
	c, arn, err := reg.CreateFunctionURL(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"), in)
	if err != nil {
		return registryError(err)
	}
	out := s.functionURL(c, arn)
	out.LastModifiedTime = ""
	return writeJSON(w, http.StatusCreated, out)
}

// PUT /2021-10-31/functions/{name}/url
func (s *Server) updateFunctionURL(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	in, err := urlUpdate(body)
	if err != nil {
		return err
	}
	c, arn, err := reg.UpdateFunctionURL(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"), in)
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, s.functionURL(c, arn))
}

// GET /2021-10-31/functions/{name}/url
func (s *Server) getFunctionURL(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	c, arn, err := reg.GetFunctionURL(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, s.functionURL(c, arn))
}

// DELETE /2021-10-31/functions/{name}/url
func (s *Server) deleteFunctionURL(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	return noContent(w, reg.DeleteFunctionURL(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier")))
}

// ListFunctionURLsResponse is ListFunctionUrlConfigs' answer.
type ListFunctionURLsResponse struct {
	FunctionURLConfigs []*FunctionURLConfig `json:"FunctionUrlConfigs"`
	NextMarker         string               `json:"NextMarker,omitempty"`
}

// GET /2021-10-31/functions/{name}/urls
func (s *Server) listFunctionURLs(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	marker, maxItems, err := page(r)
	if err != nil {
		return err
	}
	cfgs, arns, err := reg.ListFunctionURLs(r.PathValue("name"))
	if err != nil {
		return registryError(err)
	}
	start, end, next, err := pageBounds(marker, maxItems, len(cfgs))
	if err != nil {
		return err
	}
	resp := ListFunctionURLsResponse{FunctionURLConfigs: make([]*FunctionURLConfig, 0, end-start), NextMarker: next}
	for i := start; i < end; i++ {
		resp.FunctionURLConfigs = append(resp.FunctionURLConfigs, s.functionURL(cfgs[i], arns[i]))
	}
	return writeJSON(w, http.StatusOK, resp)
}

// pageBounds is the page [start, end) of a short list of n items the
// handler holds whole, and the marker of the next page ("" at the end):
// the marker is the index it starts at.
func pageBounds(marker string, maxItems, n int) (start, end int, next string, err error) {
	if marker != "" {
		start, err = strconv.Atoi(marker)
		if err != nil || start < 0 || start > n {
			return 0, 0, "", errorf(CodeInvalidParameterValue, "Invalid Marker: use the NextMarker of the previous page")
		}
	}
	if maxItems <= 0 {
		maxItems = registry.DefaultMaxItems
	}
	end = min(n, start+maxItems)
	if end < n {
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

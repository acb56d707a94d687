package api

import (
	"net/http"

	"moat.dev/moat/internal/registry"
)

// Event invoke configuration operations: retries, maximum event age and
// destinations of asynchronous invocations.

func eventInvokeConfig(c *registry.EventInvokeConfig, arn string) *FunctionEventInvokeConfig {
	out := &FunctionEventInvokeConfig{
		LastModified:             float64(c.LastModified.UnixMilli()) / 1000,
		FunctionArn:              arn,
		MaximumRetryAttempts:     c.MaximumRetryAttempts,
		MaximumEventAgeInSeconds: c.MaximumEventAgeInSeconds,
		DestinationConfig:        DestinationConfig{OnSuccess: &OnDestination{}, OnFailure: &OnDestination{}},
	}
	if c.OnSuccess != "" {
		out.DestinationConfig.OnSuccess.Destination = &c.OnSuccess
	}
	if c.OnFailure != "" {
		out.DestinationConfig.OnFailure.Destination = &c.OnFailure
	}
	return out
}

// PUT (replace) and POST (update) /2019-09-25/functions/{name}/event-invoke-config
func (s *Server) putEventInvokeConfig(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req EventInvokeConfigRequest
	if len(body) > 0 {
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
	}
	in := registry.EventInvokeUpdate{
		MaximumRetryAttempts:     req.MaximumRetryAttempts,
		MaximumEventAgeInSeconds: req.MaximumEventAgeInSeconds,
	}
	if d := req.DestinationConfig; d != nil {
		in.OnSuccess = destination(d.OnSuccess)
		in.OnFailure = destination(d.OnFailure)
	}
	merge := r.Method == http.MethodPost
	c, arn, err := reg.PutEventInvokeConfig(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"), in, merge)
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, eventInvokeConfig(c, arn))
}

// destination reads one side of a DestinationConfig: nil when absent, ""
// when present without a Destination (which removes it).
func destination(d *OnDestination) *string {
	if d == nil {
		return nil
	}
	if d.Destination == nil {
		empty := ""
		return &empty
	}
	return d.Destination
}

// GET /2019-09-25/functions/{name}/event-invoke-config
func (s *Server) getEventInvokeConfig(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	c, arn, err := reg.GetEventInvokeConfig(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, eventInvokeConfig(c, arn))
}

// DELETE /2019-09-25/functions/{name}/event-invoke-config
func (s *Server) deleteEventInvokeConfig(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	return noContent(w, reg.DeleteEventInvokeConfig(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier")))
}

// ListFunctionEventInvokeConfigsResponse is ListFunctionEventInvokeConfigs'
// answer.
type ListFunctionEventInvokeConfigsResponse struct {
	FunctionEventInvokeConfigs []*FunctionEventInvokeConfig `json:"FunctionEventInvokeConfigs"`
	NextMarker                 string                       `json:"NextMarker,omitempty"`
}

// GET /2019-09-25/functions/{name}/event-invoke-config/list
func (s *Server) listEventInvokeConfigs(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	marker, maxItems, err := page(r)
	if err != nil {
		return err
	}
	cfgs, arns, err := reg.ListEventInvokeConfigs(r.PathValue("name"))
	if err != nil {
		return registryError(err)
	}
	start, end, next, err := pageBounds(marker, maxItems, len(cfgs))
	if err != nil {
		return err
	}
	resp := ListFunctionEventInvokeConfigsResponse{FunctionEventInvokeConfigs: make([]*FunctionEventInvokeConfig, 0, end-start), NextMarker: next}
	for i := start; i < end; i++ {
		resp.FunctionEventInvokeConfigs = append(resp.FunctionEventInvokeConfigs, eventInvokeConfig(cfgs[i], arns[i]))
	}
	return writeJSON(w, http.StatusOK, resp)
}

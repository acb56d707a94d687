package api

import (
	"net/http"
	"strconv"
	"time"

	"moat.dev/moat/internal/registry"
)

// Function operations: create, get, list, update configuration and code,
// delete, and the code download GetFunction points at.

// POST /2015-03-31/functions
func (s *Server) createFunction(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req CreateFunctionRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	switch {
	case req.FunctionName == nil:
		return nullValue("functionName")
	case req.Code == nil:
		return nullValue("code")
	case req.PackageType != "" && req.PackageType != "Zip":
		return zipOnly()
	case req.Code.S3Bucket != "" || req.Code.S3Key != "" || req.Code.ImageURI != "":
		return zipOnly()
	case len(req.Layers) > 0:
		return noLayers()
	case req.VpcConfig.asksForVPC():
		return noVPC()
	}
	in := registry.CreateInput{
		FunctionName:  *req.FunctionName,
		Runtime:       req.Runtime,
		Role:          req.Role,
		Handler:       req.Handler,
		Description:   req.Description,
		MemorySize:    req.MemorySize,
		Timeout:       req.Timeout,
		Architectures: req.Architectures,
		ZipFile:       req.Code.ZipFile,
		Publish:       req.Publish,
		Sandbox:       req.Sandbox,
		Tags:          req.Tags,
	}
	if req.Environment != nil {
		in.Environment = req.Environment.Variables
	}
	es, err := ephemeralSize(req.EphemeralStorage)
	if err != nil {
		return err
	}
	in.EphemeralStorage = es
	c, err := reg.CreateFunction(r.Context(), in)
	return s.writeConfig(w, http.StatusCreated, c, err)
}

// GET /2015-03-31/functions
func (s *Server) listFunctions(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	all := false
	switch v := r.URL.Query().Get("FunctionVersion"); v {
	case "":
	case "ALL":
		all = true
	default:
		return errorf(CodeValidation, "1 validation error detected: Value '"+clipString(v)+"' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]")
	}
	marker, maxItems, err := page(r)
	if err != nil {
		return err
	}
	var items []*registry.Config
	var next string
	if all {
		items, next, err = reg.ListAll(r.Context(), marker, maxItems)
	} else {
		items, next, err = reg.List(marker, maxItems)
	}
	if err != nil {
		return registryError(err)
	}
	resp := ListFunctionsResponse{Functions: make([]FunctionConfiguration, len(items)), NextMarker: next}
	for i, c := range items {
		s.renderConfiguration(&resp.Functions[i], c, s.configARN(c))
	}
	return writeLargeJSON(w, http.StatusOK, resp)
}

// GET /2015-03-31/functions/{name}
func (s *Server) getFunction(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	info, err := reg.Get(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return registryError(err)
	}
	resp := GetFunctionResponse{
		Configuration: s.functionConfiguration(info.Config, info.ARN),
		Code:          FunctionCodeLocation{RepositoryType: "moat", Location: s.codeURL(r, info.Config.CodeSha256Hex)},
		Tags:          info.Tags,
	}
	if s.opts.Isolation != nil {
		resp.Isolation = s.opts.Isolation()
	}
	if info.Reserved >= 0 {
		resp.Concurrency = &Concurrency{ReservedConcurrentExecutions: &info.Reserved}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// codeLocationTTL is how long a Code.Location stays valid, as Lambda's.
const codeLocationTTL = 10 * time.Minute

// codeURL is where this node serves a code package (see getCode):
// presigned, so that curl or a browser downloads it as from Lambda's
// Code.Location, for ten minutes.
func (s *Server) codeURL(r *http.Request, sha256hex string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := scheme + "://" + r.Host + "/moat/v1/code/" + sha256hex
	if s.opts.Presign == nil {
		return u
	}
	signed, err := s.opts.Presign(u, codeLocationTTL)
	if err != nil {
		s.log.Warn("presigning a code location failed", "err", err)
		return u
	}
	return signed
}

// getCode serves a code package by its hex sha256:
// GET /moat/v1/code/{sha256}, the Code.Location GetFunction reports.
func (s *Server) getCode(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	sum := r.PathValue("sha256")
	if len(sum) != 64 || !isLowerHex(sum) {
		return errorf(CodeResourceNotFound, "Code package not found: "+clipString(sum))
	}
	zip, err := reg.CodeZip(r.Context(), sum)
	if err != nil {
		return registryError(err)
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Length", strconv.Itoa(len(zip)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(zip)
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// GET /2015-03-31/functions/{name}/configuration
func (s *Server) getFunctionConfiguration(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	info, err := reg.Get(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, s.functionConfiguration(info.Config, info.ARN))
}

// DELETE /2015-03-31/functions/{name}
func (s *Server) deleteFunction(reg *registry.Registry, w http.ResponseWriter, r *http.Request, _ []byte) error {
	return noContent(w, reg.Delete(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier")))
}

// PUT /2015-03-31/functions/{name}/configuration
func (s *Server) updateFunctionConfiguration(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req UpdateFunctionConfigurationRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if len(req.Layers) > 0 {
		return noLayers()
	}
	if req.VpcConfig.asksForVPC() {
		return noVPC()
	}
	in := registry.UpdateConfigInput{
		FunctionName: r.PathValue("name"),
		RevisionID:   req.RevisionID,
		Runtime:      req.Runtime,
		Role:         req.Role,
		Handler:      req.Handler,
		Description:  req.Description,
		MemorySize:   req.MemorySize,
		Timeout:      req.Timeout,
		Sandbox:      req.Sandbox,
	}
	if req.Environment != nil {
		vars := req.Environment.Variables
		if vars == nil {
			vars = map[string]string{}
		}
		in.Environment = &vars
	}
	es, err := ephemeralSize(req.EphemeralStorage)
	if err != nil {
		return err
	}
	in.EphemeralStorage = es
	c, err := reg.UpdateConfiguration(r.Context(), in)
	return s.writeConfig(w, http.StatusOK, c, err)
}

// PUT /2015-03-31/functions/{name}/code
func (s *Server) updateFunctionCode(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error {
	var req UpdateFunctionCodeRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if req.S3Bucket != "" || req.S3Key != "" || req.ImageURI != "" {
		return zipOnly()
	}
	if req.ZipFile == nil {
		return errorf(CodeInvalidParameterValue, "Please provide a source for function code: moat accepts ZipFile.")
	}
	c, err := reg.UpdateCode(r.Context(), registry.UpdateCodeInput{
		FunctionName:  r.PathValue("name"),
		RevisionID:    req.RevisionID,
		ZipFile:       req.ZipFile,
		Architectures: req.Architectures,
		Publish:       req.Publish,
		DryRun:        req.DryRun,
	})
	return s.writeConfig(w, http.StatusOK, c, err)
}

// ephemeralSize is the EphemeralStorage.Size of a request, refusing an
// object without one.
func ephemeralSize(e *EphemeralStorage) (*int, error) {
	if e == nil {
		return nil, nil
	}
	if e.Size == nil {
		return nil, nullValue("ephemeralStorage.size")
	}
	return e.Size, nil
}

func zipOnly() error {
	return errorf(CodeInvalidParameterValue, "moat accepts Code.ZipFile only: S3 locations and container images are not supported. Upload the deployment package as ZipFile.")
}

func noVPC() error {
	return errorf(CodeInvalidParameterValue, "moat does not attach functions to VPCs: give the destinations a function may reach as network grants (Sandbox.Egress, or moat deploy --egress CIDR:PORTS).")
}

func noLayers() error {
	return errorf(CodeInvalidParameterValue, "moat does not support layers: include the layer's files in the deployment package.")
}

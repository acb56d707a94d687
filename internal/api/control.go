package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"moat.dev/moat/internal/registry"
)

// Control-plane handlers: the Lambda function, version, alias, concurrency
// and event invoke configuration operations. They translate between the
// Lambda JSON shapes and the registry; every decision about validity and
// state is the registry's.

// lastModifiedLayout is how Lambda formats FunctionConfiguration.LastModified.
const lastModifiedLayout = "2006-01-02T15:04:05.000-0700"

// registryError turns a registry failure into the API error the caller sees.
// Errors that match no registry sentinel are the platform's own and go out
// as ServiceException (and are logged by handle).
func registryError(err error) error {
	var code Code
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrValidation):
		code = CodeValidation
	case errors.Is(err, registry.ErrNotFound):
		code = CodeResourceNotFound
	case errors.Is(err, registry.ErrExists), errors.Is(err, registry.ErrConflict):
		code = CodeResourceConflict
	case errors.Is(err, registry.ErrPreconditionFailed):
		code = CodePreconditionFailed
	case errors.Is(err, registry.ErrCodeTooLarge):
		code = CodeRequestEntityTooLarge
	case errors.Is(err, registry.ErrInvalidZip), errors.Is(err, registry.ErrInvalid):
		// AWS refuses an unreadable upload as InvalidParameterValueException;
		// InvalidZipFileException (502) is for invocations, and SDKs retry 502s.
		code = CodeInvalidParameterValue
	default:
		return err
	}
	return errorf(code, err.Error())
}

// Wire shapes, named and spelled as in the Lambda API.

type (
	// FunctionConfiguration is Lambda's FunctionConfiguration.
	FunctionConfiguration struct {
		FunctionName     string               `json:"FunctionName"`
		FunctionArn      string               `json:"FunctionArn"`
		Runtime          string               `json:"Runtime"`
		Role             string               `json:"Role,omitempty"`
		Handler          string               `json:"Handler"`
		CodeSize         int64                `json:"CodeSize"`
		Description      string               `json:"Description"`
		Timeout          int                  `json:"Timeout"`
		MemorySize       int                  `json:"MemorySize"`
		LastModified     string               `json:"LastModified"`
		CodeSha256       string               `json:"CodeSha256"`
		Version          string               `json:"Version"`
		Environment      *EnvironmentResponse `json:"Environment,omitempty"`
		TracingConfig    TracingConfig        `json:"TracingConfig"`
		RevisionID       string               `json:"RevisionId"`
		State            string               `json:"State"`
		LastUpdateStatus string               `json:"LastUpdateStatus"`
		PackageType      string               `json:"PackageType"`
		Architectures    []string             `json:"Architectures"`
		EphemeralStorage EphemeralStorage     `json:"EphemeralStorage"`
		SnapStart        SnapStartResponse    `json:"SnapStart"`
		LoggingConfig    LoggingConfig        `json:"LoggingConfig"`
		// Sandbox is moat's own field (AWS SDKs ignore it).
		Sandbox *registry.SandboxConfig `json:"Sandbox,omitempty"`
	}
	// EnvironmentResponse is Lambda's EnvironmentResponse: the variables,
	// or the reason they cannot be shown.
	EnvironmentResponse struct {
		// Variables is the decrypted JSON object, passed through as sealed.
		Variables json.RawMessage   `json:"Variables,omitempty"`
		Error     *EnvironmentError `json:"Error,omitempty"`
	}
	EnvironmentError struct {
		ErrorCode string `json:"ErrorCode"`
		Message   string `json:"Message"`
	}
	TracingConfig struct {
		Mode string `json:"Mode"`
	}
	EphemeralStorage struct {
		Size *int `json:"Size"`
	}
	SnapStartResponse struct {
		ApplyOn            string `json:"ApplyOn"`
		OptimizationStatus string `json:"OptimizationStatus"`
	}
	LoggingConfig struct {
		LogFormat string `json:"LogFormat"`
		LogGroup  string `json:"LogGroup"`
	}
	Environment struct {
		Variables map[string]string `json:"Variables"`
	}
	FunctionCode struct {
		ZipFile         []byte `json:"ZipFile"`
		S3Bucket        string `json:"S3Bucket"`
		S3Key           string `json:"S3Key"`
		S3ObjectVersion string `json:"S3ObjectVersion"`
		ImageURI        string `json:"ImageUri"`
	}
	// CreateFunctionRequest is the CreateFunction body.
	CreateFunctionRequest struct {
		FunctionName     *string           `json:"FunctionName"`
		Runtime          string            `json:"Runtime"`
		Role             string            `json:"Role"`
		Handler          string            `json:"Handler"`
		Description      string            `json:"Description"`
		Timeout          *int              `json:"Timeout"`
		MemorySize       *int              `json:"MemorySize"`
		Publish          bool              `json:"Publish"`
		Code             *FunctionCode     `json:"Code"`
		Environment      *Environment      `json:"Environment"`
		PackageType      string            `json:"PackageType"`
		Architectures    []string          `json:"Architectures"`
		EphemeralStorage *EphemeralStorage `json:"EphemeralStorage"`
		Layers           []string          `json:"Layers"`
		// Sandbox is moat's own: Ephemeral and Egress (Resolved is ignored).
		Sandbox *registry.SandboxConfig `json:"Sandbox"`
	}
	// UpdateFunctionConfigurationRequest is the UpdateFunctionConfiguration body.
	UpdateFunctionConfigurationRequest struct {
		Role             *string                 `json:"Role"`
		Handler          *string                 `json:"Handler"`
		Description      *string                 `json:"Description"`
		Timeout          *int                    `json:"Timeout"`
		MemorySize       *int                    `json:"MemorySize"`
		Environment      *Environment            `json:"Environment"`
		Runtime          *string                 `json:"Runtime"`
		RevisionID       string                  `json:"RevisionId"`
		EphemeralStorage *EphemeralStorage       `json:"EphemeralStorage"`
		Layers           []string                `json:"Layers"`
		Sandbox          *registry.SandboxConfig `json:"Sandbox"`
	}
	// UpdateFunctionCodeRequest is the UpdateFunctionCode body.
	UpdateFunctionCodeRequest struct {
		ZipFile         []byte   `json:"ZipFile"`
		S3Bucket        string   `json:"S3Bucket"`
		S3Key           string   `json:"S3Key"`
		S3ObjectVersion string   `json:"S3ObjectVersion"`
		ImageURI        string   `json:"ImageUri"`
		Publish         bool     `json:"Publish"`
		DryRun          bool     `json:"DryRun"`
		RevisionID      string   `json:"RevisionId"`
		Architectures   []string `json:"Architectures"`
	}
	// PublishVersionRequest is the PublishVersion body.
	PublishVersionRequest struct {
		CodeSha256  string `json:"CodeSha256"`
		Description string `json:"Description"`
		RevisionID  string `json:"RevisionId"`
	}
	GetFunctionResponse struct {
		Configuration *FunctionConfiguration `json:"Configuration"`
		Code          FunctionCodeLocation   `json:"Code"`
		Concurrency   *Concurrency           `json:"Concurrency,omitempty"`
		// Isolation is moat's own field: the walls each instance of the
		// function gets on this node (AWS SDKs ignore it).
		Isolation any `json:"Isolation,omitempty"`
	}
	FunctionCodeLocation struct {
		RepositoryType string `json:"RepositoryType"`
		Location       string `json:"Location"`
	}
	Concurrency struct {
		ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
	}
	ListFunctionsResponse struct {
		Functions  []FunctionConfiguration `json:"Functions"`
		NextMarker string                  `json:"NextMarker,omitempty"`
	}
	ListVersionsByFunctionResponse struct {
		Versions   []FunctionConfiguration `json:"Versions"`
		NextMarker string                  `json:"NextMarker,omitempty"`
	}
	AliasRoutingConfiguration struct {
		AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights"`
	}
	AliasConfiguration struct {
		AliasArn        string                     `json:"AliasArn"`
		Name            string                     `json:"Name"`
		FunctionVersion string                     `json:"FunctionVersion"`
		Description     string                     `json:"Description"`
		RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
		RevisionID      string                     `json:"RevisionId"`
	}
	// CreateAliasRequest is the CreateAlias body.
	CreateAliasRequest struct {
		Name            *string                    `json:"Name"`
		FunctionVersion *string                    `json:"FunctionVersion"`
		Description     string                     `json:"Description"`
		RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig"`
	}
	// UpdateAliasRequest is the UpdateAlias body.
	UpdateAliasRequest struct {
		FunctionVersion *string                    `json:"FunctionVersion"`
		Description     *string                    `json:"Description"`
		RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig"`
		RevisionID      string                     `json:"RevisionId"`
	}
	ListAliasesResponse struct {
		Aliases    []*AliasConfiguration `json:"Aliases"`
		NextMarker string                `json:"NextMarker,omitempty"`
	}
	// PutFunctionConcurrencyRequest is the PutFunctionConcurrency body.
	PutFunctionConcurrencyRequest struct {
		ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions"`
	}
	OnDestination struct {
		Destination *string `json:"Destination,omitempty"`
	}
	DestinationConfig struct {
		OnSuccess *OnDestination `json:"OnSuccess"`
		OnFailure *OnDestination `json:"OnFailure"`
	}
	// EventInvokeConfigRequest is the Put/UpdateFunctionEventInvokeConfig body.
	EventInvokeConfigRequest struct {
		MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts"`
		MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds"`
		DestinationConfig        *DestinationConfig `json:"DestinationConfig"`
	}
	FunctionEventInvokeConfig struct {
		LastModified             float64           `json:"LastModified"` // epoch seconds
		FunctionArn              string            `json:"FunctionArn"`
		MaximumRetryAttempts     *int              `json:"MaximumRetryAttempts,omitempty"`
		MaximumEventAgeInSeconds *int              `json:"MaximumEventAgeInSeconds,omitempty"`
		DestinationConfig        DestinationConfig `json:"DestinationConfig"`
	}
)

// nullValue is AWS's refusal of a missing required member.
func nullValue(field string) error {
	return errorf(CodeValidation, "1 validation error detected: Value null at '"+field+"' failed to satisfy constraint: Member must not be null")
}

func zipOnly() error {
	return errorf(CodeInvalidParameterValue, "moat accepts Code.ZipFile only: S3 locations and container images are not supported. Upload the deployment package as ZipFile.")
}

func noLayers() error {
	return errorf(CodeInvalidParameterValue, "moat does not support layers: include the layer's files in the deployment package.")
}

// functionConfiguration renders c with the ARN the caller should see.
func (s *Server) functionConfiguration(c *registry.Config, arn string) *FunctionConfiguration {
	fc := new(FunctionConfiguration)
	s.renderConfiguration(fc, c, arn)
	return fc
}

// renderConfiguration fills fc from c. The variables are decrypted for the
// response, as Lambda shows them; a blob this node cannot open is reported
// in Environment.Error.
func (s *Server) renderConfiguration(fc *FunctionConfiguration, c *registry.Config, arn string) {
	eph := c.EphemeralStorage
	*fc = FunctionConfiguration{
		FunctionName:     c.FunctionName,
		FunctionArn:      arn,
		Runtime:          c.Runtime,
		Role:             c.Role,
		Handler:          c.Handler,
		CodeSize:         c.CodeSize,
		Description:      c.Description,
		Timeout:          c.Timeout,
		MemorySize:       c.MemorySize,
		LastModified:     c.LastModified.UTC().Format(lastModifiedLayout),
		CodeSha256:       c.CodeSha256(),
		Version:          c.Version,
		TracingConfig:    TracingConfig{Mode: "PassThrough"},
		RevisionID:       c.RevisionID,
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
		Architectures:    c.Architectures,
		EphemeralStorage: EphemeralStorage{Size: &eph},
		SnapStart:        SnapStartResponse{ApplyOn: "None", OptimizationStatus: "Off"},
		LoggingConfig:    LoggingConfig{LogFormat: "Text", LogGroup: "/aws/lambda/" + c.FunctionName},
		Sandbox:          c.Sandbox,
	}
	if c.Env != nil {
		vars, err := s.opts.Registry.EnvironmentJSON(c)
		if err != nil {
			s.log.Warn("api: environment not decryptable", "function", c.FunctionName, "err", err)
			fc.Environment = &EnvironmentResponse{Error: &EnvironmentError{
				ErrorCode: string(CodeKMSAccessDenied),
				Message:   "moat could not decrypt the environment variables with this node's master key.",
			}}
		} else if len(vars) > 2 { // not "{}"
			fc.Environment = &EnvironmentResponse{Variables: vars}
		}
	}
}

// writeLargeJSON writes v like writeJSON, encoding straight into the
// response instead of through an intermediate copy: list responses run to
// megabytes. The shapes it is used with cannot fail to encode.
func writeLargeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}

// configARN is the FunctionArn Lambda reports for a configuration returned
// by a write: unqualified for $LATEST, qualified for a version.
func (s *Server) configARN(c *registry.Config) string {
	if c.Version == registry.Latest {
		return s.opts.Registry.FunctionARN(c.FunctionName)
	}
	return s.opts.Registry.QualifiedARN(c.FunctionName, c.Version)
}

// page reads the Marker and MaxItems query parameters.
func page(r *http.Request) (marker string, maxItems int, err error) {
	q := r.URL.Query()
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return "", 0, errorf(CodeValidation, "1 validation error detected: Value '"+clipString(v)+"' at 'maxItems' failed to satisfy constraint: Member must be an integer between 1 and 10000")
		}
		if n == 0 {
			return "", 0, errorf(CodeValidation, "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1")
		}
		maxItems = n
	}
	return q.Get("Marker"), maxItems, nil
}

func clipString(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (s *Server) registry() (*registry.Registry, error) {
	if s.opts.Registry == nil {
		return nil, errorf(CodeServiceUnavailable, "the function registry is not available on this node")
	}
	return s.opts.Registry, nil
}

// POST /2015-03-31/functions
func (s *Server) createFunction(w http.ResponseWriter, r *http.Request, body []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
	}
	if req.Environment != nil {
		in.Environment = req.Environment.Variables
	}
	if in.EphemeralStorage, err = ephemeralSize(req.EphemeralStorage); err != nil {
		return err
	}
	c, err := reg.CreateFunction(r.Context(), in)
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusCreated, s.functionConfiguration(c, s.configARN(c)))
}

// GET /2015-03-31/functions
func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	if v := r.URL.Query().Get("FunctionVersion"); v != "" {
		return errorf(CodeInvalidParameterValue, "moat does not support FunctionVersion="+clipString(v)+" in ListFunctions: list versions with ListVersionsByFunction.")
	}
	marker, maxItems, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := reg.List(marker, maxItems)
	if err != nil {
		return registryError(err)
	}
	resp := ListFunctionsResponse{Functions: make([]FunctionConfiguration, len(items)), NextMarker: next}
	for i, c := range items {
		s.renderConfiguration(&resp.Functions[i], c, reg.FunctionARN(c.FunctionName))
	}
	return writeLargeJSON(w, http.StatusOK, resp)
}

// GET /2015-03-31/functions/{name}
func (s *Server) getFunction(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	info, err := reg.Get(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return registryError(err)
	}
	resp := GetFunctionResponse{
		Configuration: s.functionConfiguration(info.Config, info.ARN),
		Code:          FunctionCodeLocation{RepositoryType: "moat", Location: codeURL(r, info.Config.CodeSha256Hex)},
	}
	if s.opts.Isolation != nil {
		resp.Isolation = s.opts.Isolation()
	}
	if info.Reserved >= 0 {
		resp.Concurrency = &Concurrency{ReservedConcurrentExecutions: &info.Reserved}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// codeURL is where this node serves a code package (see getCode).
func codeURL(r *http.Request, sha256hex string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/moat/v1/code/" + sha256hex
}

// getCode serves a code package by its hex sha256:
// GET /moat/v1/code/{sha256}, the Code.Location GetFunction reports.
func (s *Server) getCode(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
func (s *Server) getFunctionConfiguration(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	info, err := reg.Get(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, s.functionConfiguration(info.Config, info.ARN))
}

// DELETE /2015-03-31/functions/{name}
func (s *Server) deleteFunction(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	if err := reg.Delete(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier")); err != nil {
		return registryError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// PUT /2015-03-31/functions/{name}/configuration
func (s *Server) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request, body []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	var req UpdateFunctionConfigurationRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if len(req.Layers) > 0 {
		return noLayers()
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
	if in.EphemeralStorage, err = ephemeralSize(req.EphemeralStorage); err != nil {
		return err
	}
	c, err := reg.UpdateConfiguration(r.Context(), in)
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, s.functionConfiguration(c, s.configARN(c)))
}

// PUT /2015-03-31/functions/{name}/code
func (s *Server) updateFunctionCode(w http.ResponseWriter, r *http.Request, body []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, s.functionConfiguration(c, s.configARN(c)))
}

// POST /2015-03-31/functions/{name}/versions
func (s *Server) publishVersion(w http.ResponseWriter, r *http.Request, body []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusCreated, s.functionConfiguration(c, s.configARN(c)))
}

// GET /2015-03-31/functions/{name}/versions
func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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

// aliasFunction returns the bare function name of the path, which may hold
// an ARN; alias ARNs are built from it.
func aliasFunction(reg *registry.Registry, r *http.Request) (string, error) {
	fn, err := reg.ParseName(r.PathValue("name"))
	return fn, registryError(err)
}

// POST /2015-03-31/functions/{name}/aliases
func (s *Server) createAlias(w http.ResponseWriter, r *http.Request, body []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
	if err != nil {
		return registryError(err)
	}
	fn, err := aliasFunction(reg, r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s.aliasConfiguration(fn, a))
}

// GET /2015-03-31/functions/{name}/aliases/{alias}
func (s *Server) getAlias(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	a, err := reg.GetAlias(r.PathValue("name"), r.PathValue("alias"))
	if err != nil {
		return registryError(err)
	}
	fn, err := aliasFunction(reg, r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.aliasConfiguration(fn, a))
}

// PUT /2015-03-31/functions/{name}/aliases/{alias}
func (s *Server) updateAlias(w http.ResponseWriter, r *http.Request, body []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
	if err != nil {
		return registryError(err)
	}
	fn, err := aliasFunction(reg, r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.aliasConfiguration(fn, a))
}

// DELETE /2015-03-31/functions/{name}/aliases/{alias}
func (s *Server) deleteAlias(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	if err := reg.DeleteAlias(r.Context(), r.PathValue("name"), r.PathValue("alias")); err != nil {
		return registryError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /2015-03-31/functions/{name}/aliases
func (s *Server) listAliases(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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

// PUT /2017-10-31/functions/{name}/concurrency
func (s *Server) putConcurrency(w http.ResponseWriter, r *http.Request, body []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
func (s *Server) getConcurrency(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
func (s *Server) deleteConcurrency(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	if err := reg.DeleteConcurrency(r.Context(), r.PathValue("name")); err != nil {
		return registryError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

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
func (s *Server) putEventInvokeConfig(w http.ResponseWriter, r *http.Request, body []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
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
func (s *Server) getEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	c, arn, err := reg.GetEventInvokeConfig(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, http.StatusOK, eventInvokeConfig(c, arn))
}

// DELETE /2019-09-25/functions/{name}/event-invoke-config
func (s *Server) deleteEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ []byte) error {
	reg, err := s.registry()
	if err != nil {
		return err
	}
	if err := reg.DeleteEventInvokeConfig(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier")); err != nil {
		return registryError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
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

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

// nullValue is AWS's refusal of a missing required member.
func nullValue(field string) error {
	return errorf(CodeValidation, "1 validation error detected: Value null at '"+field+"' failed to satisfy constraint: Member must not be null")
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
			s.log.Warn("environment not decryptable", "function", c.FunctionName, "err", err)
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

// A controlFunc is a control-plane handler: it reads and changes the
// registry.
type controlFunc func(reg *registry.Registry, w http.ResponseWriter, r *http.Request, body []byte) error

// control adapts h to the node's registry, or answers ServiceUnavailable
// on a node without one.
func (s *Server) control(h controlFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, body []byte) error {
		if s.opts.Registry == nil {
			return errorf(CodeServiceUnavailable, "the function registry is not available on this node")
		}
		return h(s.opts.Registry, w, r, body)
	}
}

// writeConfig answers with c's FunctionConfiguration, or with the
// registry's err.
func (s *Server) writeConfig(w http.ResponseWriter, status int, c *registry.Config, err error) error {
	if err != nil {
		return registryError(err)
	}
	return writeJSON(w, status, s.functionConfiguration(c, s.configARN(c)))
}

// noContent answers 204, or the registry's err.
func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return registryError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

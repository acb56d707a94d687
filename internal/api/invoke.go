package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"moat.dev/moat/internal/invoke"
	"moat.dev/moat/internal/registry"
)

// Resolver resolves a function reference and qualifier to what an
// invocation runs; *registry.Registry implements it.
type Resolver interface {
	Resolve(name, qualifier string) (*registry.Target, error)
}

// Invoker runs invocations; *invoke.Dispatcher implements it.
type Invoker interface {
	InvokeTarget(ctx context.Context, t *registry.Target, req *invoke.Request) (*invoke.Response, error)
}

// Enqueuer accepts Event invocations; *invoke.Queue implements it.
type Enqueuer interface {
	Enqueue(ctx context.Context, t *registry.Target, qualifier string, payload []byte, clientContext string) (string, error)
}

// maxClientContext is the largest decoded X-Amz-Client-Context, as AWS.
const maxClientContext = 3583

func (s *Server) invoke(w http.ResponseWriter, r *http.Request, body []byte) error {
	name := r.PathValue("name")
	qualifier := r.URL.Query().Get("Qualifier")
	typ := r.Header.Get("X-Amz-Invocation-Type")
	if typ == "" {
		typ = "RequestResponse"
	}
	if typ != "RequestResponse" && typ != "Event" && typ != "DryRun" {
		return errorf(CodeInvalidParameterValue, "1 validation error detected: Value '"+typ+"' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
	}
	logType := r.Header.Get("X-Amz-Log-Type")
	if logType != "" && logType != "None" && logType != "Tail" {
		return errorf(CodeInvalidParameterValue, "1 validation error detected: Value '"+logType+"' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]")
	}
	var clientCtx string
	if cc := r.Header.Get("X-Amz-Client-Context"); cc != "" {
		raw, err := base64.StdEncoding.DecodeString(cc)
		if err != nil || len(raw) > maxClientContext || !json.Valid(raw) {
			return errorf(CodeInvalidRequestContent, "Client context must be a valid Base64-encoded JSON object of at most 3583 bytes.")
		}
		clientCtx = string(raw)
	}
	if len(body) > 0 && !json.Valid(body) {
		return errorf(CodeInvalidRequestContent, "Could not parse request body into json: the payload is not valid JSON")
	}
	if typ == "Event" && len(body) > MaxAsyncPayload {
		return errorf(CodeRequestTooLarge, "Request must be smaller than 262144 bytes for the InvokeAsync operation")
	}
	if len(body) > MaxSyncPayload {
		return errorf(CodeRequestTooLarge, "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
	}
	if s.opts.Invoker == nil || s.opts.Resolver == nil {
		return errorf(CodeServiceUnavailable, "invocations are not available on this node")
	}
	t, err := s.opts.Resolver.Resolve(name, qualifier)
	if err != nil {
		return registryError(err)
	}
	switch typ {
	case "DryRun":
		w.Header().Set("X-Amz-Executed-Version", t.Config.Version)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case "Event":
		if s.opts.Queue == nil {
			return errorf(CodeServiceUnavailable, "asynchronous invocations are not available on this node")
		}
		id, err := s.opts.Queue.Enqueue(r.Context(), t, qualifier, body, clientCtx)
		if err != nil {
			s.log.Error("enqueue event failed", "function", t.Config.FunctionName, "err", err)
			return errorf(CodeServiceException, "the event could not be stored; it was not accepted")
		}
		w.Header().Set("X-Amzn-RequestId", id)
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	resp, err := s.opts.Invoker.InvokeTarget(r.Context(), t, &invoke.Request{
		FunctionName:  name,
		Qualifier:     qualifier,
		Payload:       body,
		ClientContext: clientCtx,
		WantLog:       logType == "Tail",
	})
	if err != nil {
		return invokeError(err)
	}
	h := w.Header()
	h["X-Amzn-Requestid"] = []string{resp.RequestID}
	h["X-Amz-Executed-Version"] = []string{resp.ExecutedVersion}
	if resp.FunctionError != "" {
		h["X-Amz-Function-Error"] = []string{resp.FunctionError}
	}
	if resp.LogTail != "" {
		h["X-Amz-Log-Result"] = []string{base64.StdEncoding.EncodeToString([]byte(resp.LogTail))}
	}
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(resp.Payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.Payload)
	return nil
}

func invokeError(err error) error {
	var te *invoke.ThrottleError
	switch {
	case errors.As(err, &te):
		return &Error{Code: CodeTooManyRequests, Message: "Rate Exceeded.", Reason: te.Reason, RetryAfter: "1"}
	case errors.Is(err, invoke.ErrClosed):
		return errorf(CodeServiceUnavailable, "moat is shutting down")
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, registry.ErrInvalid):
		return registryError(err)
	}
	return err
}

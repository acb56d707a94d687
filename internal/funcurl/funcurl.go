// Package funcurl serves function URLs: each an HTTP endpoint of its own
// that invokes a function's $LATEST or alias with the request in Lambda's
// payload format 2.0 and turns the function's answer into the HTTP
// response, as Lambda's function URLs do. It owns the translation, CORS
// and the URL's authentication; the URL configurations live in the
// registry and invocations run through the dispatcher, like any other.
//
// A URL is reached by host name, as on AWS
// (<url-id>.lambda-url.<region>.<domain>), or, for clients that cannot set
// a host, by path: /lambda-url/<url-id>/<path>.
package funcurl

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"moat.dev/moat/internal/invoke"
	"moat.dev/moat/internal/registry"
)

// MaxPayload is the largest request and response body, as Lambda's
// synchronous invocations.
const MaxPayload = 6 * 1024 * 1024

// PathPrefix routes a request by path instead of host name.
const PathPrefix = "/lambda-url/"

// Lookup finds what a URL id leads to; *registry.Registry implements it.
type Lookup interface {
	LookupURL(id string) (registry.URLTarget, bool)
}

// Resolver resolves a function and qualifier to what runs.
type Resolver interface {
	Resolve(name, qualifier string) (*registry.Target, error)
}

// Invoker runs a synchronous invocation; the dispatcher implements it.
type Invoker interface {
	InvokeTarget(ctx context.Context, t *registry.Target, req *invoke.Request) (*invoke.Response, error)
}

// Authenticator checks a SigV4 signature (service lambda) over a request
// and its body's SHA-256, for URLs with AuthType AWS_IAM; it returns the
// caller's access key.
type Authenticator interface {
	Authenticate(r *http.Request, payloadSHA256 []byte) (accessKey string, err error)
}

// Options configure a Handler.
type Options struct {
	URLs     Lookup
	Resolver Resolver
	Invoker  Invoker
	Auth     Authenticator
	// AccountID is the account the callers of AWS_IAM URLs belong to.
	AccountID string
	Logger    *slog.Logger
}

// Handler serves every function URL of the node.
type Handler struct {
	opts Options
	log  *slog.Logger
}

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts, log: opts.Logger}
}

// urlID finds the URL id of a request and the path the function sees.
func urlID(r *http.Request) (id, path string) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if label, rest, ok := strings.Cut(host, "."); ok && strings.HasPrefix(rest, "lambda-url.") {
		return label, r.URL.EscapedPath()
	}
	if rest, ok := strings.CutPrefix(r.URL.EscapedPath(), PathPrefix); ok {
		id, p, _ := strings.Cut(rest, "/")
		return id, "/" + p
	}
	return "", ""
}

// message answers with Lambda's error body for function URLs.
func message(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"Message": msg})
	_, _ = w.Write(b)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, path := urlID(r)
	t, ok := h.opts.URLs.LookupURL(id)
	if id == "" || !ok {
		message(w, http.StatusNotFound, "No function URL answers here: address it as <url-id>.lambda-url.<region>.<domain> or "+PathPrefix+"<url-id>/")
		return
	}
	cfg := t.Config
	if preflight(r, cfg.Cors) {
		writePreflight(w, r, cfg.Cors)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayload))
	if err != nil {
		message(w, http.StatusRequestEntityTooLarge, "Request must be smaller than 6291456 bytes")
		return
	}
	var caller *Caller
	if cfg.AuthType == registry.URLAuthIAM {
		sum := sha256.Sum256(body)
		key, err := h.opts.Auth.Authenticate(r, sum[:])
		if err != nil {
			message(w, http.StatusForbidden, "Forbidden")
			return
		}
		caller = &Caller{AccessKey: key, AccountID: h.opts.AccountID}
	}
	target, err := h.opts.Resolver.Resolve(t.Function, t.Qualifier)
	if err != nil {
		message(w, http.StatusNotFound, "The function of this URL is gone")
		return
	}
	ev := Event(r, id, path, body, caller, time.Now())
	payload, err := json.Marshal(ev)
	if err != nil {
		message(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if len(payload) > MaxPayload {
		message(w, http.StatusRequestEntityTooLarge, "Request must be smaller than 6291456 bytes")
		return
	}
	resp, err := h.opts.Invoker.InvokeTarget(r.Context(), target, &invoke.Request{
		FunctionName: t.Function, Qualifier: t.Qualifier, Payload: payload, Source: "url:" + id,
	})
	var te *invoke.ThrottleError
	switch {
	case errors.As(err, &te):
		message(w, http.StatusTooManyRequests, "Rate Exceeded.")
		return
	case err != nil:
		h.log.Warn("function URL invocation failed", "function", t.Function, "err", err)
		message(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	w.Header().Set("X-Amzn-Requestid", resp.RequestID)
	addCors(w, r, cfg.Cors)
	if resp.FunctionError != "" {
		message(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	out, err := Response(resp.Payload)
	if err != nil {
		h.log.Warn("function URL answer unusable", "function", t.Function, "err", err)
		message(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	out.write(w)
}

// Caller is who signed a request to an AWS_IAM URL.
type Caller struct {
	AccessKey, AccountID string
}

// EventV2 is Lambda's payload format 2.0 of a function URL request.
type EventV2 struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        RequestContext    `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

// RequestContext is the requestContext of EventV2.
type RequestContext struct {
	AccountID    string      `json:"accountId"`
	APIID        string      `json:"apiId"`
	Authorizer   *Authorizer `json:"authorizer,omitempty"`
	DomainName   string      `json:"domainName"`
	DomainPrefix string      `json:"domainPrefix"`
	HTTP         HTTPContext `json:"http"`
	RequestID    string      `json:"requestId"`
	RouteKey     string      `json:"routeKey"`
	Stage        string      `json:"stage"`
	Time         string      `json:"time"`
	TimeEpoch    int64       `json:"timeEpoch"`
}

// Authorizer holds the IAM caller of an AWS_IAM URL.
type Authorizer struct {
	IAM *IAMAuthorizer `json:"iam"`
}

// IAMAuthorizer is requestContext.authorizer.iam.
type IAMAuthorizer struct {
	AccessKey string `json:"accessKey"`
	AccountID string `json:"accountId"`
	CallerID  string `json:"callerId"`
	UserARN   string `json:"userArn"`
	UserID    string `json:"userId"`
}

// HTTPContext is requestContext.http.
type HTTPContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// Event builds the payload of a request to URL id: path is the path the
// function sees (its URL's own part removed), caller is nil for an
// AuthType NONE URL.
func Event(r *http.Request, id, path string, body []byte, caller *Caller, now time.Time) *EventV2 {
	ev := &EventV2{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        path,
		RawQueryString: r.URL.RawQuery,
		Headers:        make(map[string]string, len(r.Header)+1),
	}
	for name, values := range r.Header {
		ln := strings.ToLower(name)
		if ln == "cookie" {
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[ln] = strings.Join(values, ",")
	}
	ev.Headers["host"] = r.Host
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if len(body) > 0 {
		if textual(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64Std(body)
			ev.IsBase64Encoded = true
		}
	}
	src := r.RemoteAddr
	if h, _, err := net.SplitHostPort(src); err == nil {
		src = h
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ev.RequestContext = RequestContext{
		AccountID:    "anonymous",
		APIID:        id,
		DomainName:   host,
		DomainPrefix: id,
		HTTP: HTTPContext{Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: src,
			UserAgent: r.UserAgent()},
		RequestID: uuid.NewString(),
		RouteKey:  "$default",
		Stage:     "$default",
		Time:      now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		TimeEpoch: now.UnixMilli(),
	}
	if caller != nil {
		ev.RequestContext.AccountID = caller.AccountID
		ev.RequestContext.Authorizer = &Authorizer{IAM: &IAMAuthorizer{AccessKey: caller.AccessKey, AccountID: caller.AccountID,
			CallerID: caller.AccessKey, UserARN: "arn:aws:iam::" + caller.AccountID + ":user/moat", UserID: caller.AccessKey}}
	}
	return ev
}

// textual reports a content type whose body the function gets as text;
// any other body arrives base64-encoded (isBase64Encoded), as Lambda
// does.
func textual(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	switch {
	case ct == "", strings.HasPrefix(ct, "text/"), strings.HasSuffix(ct, "+json"), strings.HasSuffix(ct, "+xml"):
		return true
	}
	switch ct {
	case "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded",
		"application/graphql", "application/yaml", "application/x-yaml":
		return true
	}
	return false
}

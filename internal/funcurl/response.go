package funcurl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"moat.dev/moat/internal/registry"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// HTTPResponse is what a function's answer becomes.
type HTTPResponse struct {
	Status  int
	Headers map[string]string
	Cookies []string
	Body    []byte
}

// Response turns a function's answer into its HTTP response, as Lambda
// does for payload format 2.0: a JSON object with a statusCode is the
// response (statusCode, headers, cookies, body, isBase64Encoded); any
// other JSON value is a 200 whose body is that JSON. The answer is the
// function's, so every field is checked: an unusable one is an error
// (the caller answers 502).
func Response(payload []byte) (*HTTPResponse, error) {
	payload = bytes.TrimSpace(payload)
	if !json.Valid(payload) {
		return nil, errors.New("the function's answer is not JSON")
	}
	plain := &HTTPResponse{Status: http.StatusOK, Headers: map[string]string{"Content-Type": "application/json"}, Body: payload}
	if len(payload) == 0 || payload[0] != '{' {
		return plain, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil {
		return nil, fmt.Errorf("the function's answer: %w", err)
	}
	raw, ok := obj["statusCode"]
	if !ok {
		return plain, nil
	}
	var out struct {
		StatusCode      int               `json:"statusCode"`
		Headers         map[string]string `json:"headers"`
		Cookies         []string          `json:"cookies"`
		Body            *string           `json:"body"`
		IsBase64Encoded bool              `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(raw, &out.StatusCode); err != nil {
		return nil, fmt.Errorf("statusCode %s is not a number", raw)
	}
	if err := json.Unmarshal(payload, &out); err != nil {
		return nil, fmt.Errorf("the function's answer: %w", err)
	}
	if out.StatusCode < 100 || out.StatusCode > 599 {
		return nil, fmt.Errorf("statusCode %d is not an HTTP status", out.StatusCode)
	}
	r := &HTTPResponse{Status: out.StatusCode, Headers: map[string]string{}, Cookies: out.Cookies}
	for k, v := range out.Headers {
		if !validHeader(k, v) {
			return nil, fmt.Errorf("header %q is not a valid HTTP header", k)
		}
		r.Headers[http.CanonicalHeaderKey(k)] = v
	}
	for _, c := range out.Cookies {
		if strings.ContainsAny(c, "\r\n") {
			return nil, errors.New("a cookie holds a line break")
		}
	}
	if out.Body != nil {
		r.Body = []byte(*out.Body)
		if out.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(*out.Body)
			if err != nil {
				return nil, fmt.Errorf("isBase64Encoded, but the body is not base64: %w", err)
			}
			r.Body = b
		}
	}
	if _, ok := r.Headers["Content-Type"]; !ok && len(r.Body) > 0 {
		r.Headers["Content-Type"] = "application/json"
	}
	return r, nil
}

// validHeader reports a header name and value safe to send.
func validHeader(name, value string) bool {
	if name == "" || strings.ContainsAny(value, "\r\n\x00") {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}

func (r *HTTPResponse) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range r.Headers {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue // the server's to set
		}
		h.Set(k, v)
	}
	for _, c := range r.Cookies {
		h.Add("Set-Cookie", c)
	}
	h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

// preflight reports a CORS preflight request that the URL's Cors
// settings answer (without invoking the function), as Lambda does.
func preflight(r *http.Request, c *registry.Cors) bool {
	return c != nil && r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// allowedOrigin is the Access-Control-Allow-Origin for origin, or "".
func allowedOrigin(c *registry.Cors, origin string) string {
	for _, o := range c.AllowOrigins {
		switch {
		case o == "*" && c.AllowCredentials:
			return origin // with credentials the origin must be named
		case o == "*":
			return "*"
		case strings.EqualFold(o, origin):
			return origin
		}
	}
	return ""
}

func writePreflight(w http.ResponseWriter, r *http.Request, c *registry.Cors) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := allowedOrigin(c, r.Header.Get("Origin"))
	method := r.Header.Get("Access-Control-Request-Method")
	methodOK := slices.Contains(c.AllowMethods, "*") || slices.Contains(c.AllowMethods, method)
	if origin == "" || !methodOK {
		w.WriteHeader(http.StatusOK) // no CORS headers: the browser refuses
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ", "))
	if len(c.AllowHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ", "))
	}
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAge))
	}
	w.WriteHeader(http.StatusOK)
}

// addCors adds the CORS headers of an actual (not preflight) response.
func addCors(w http.ResponseWriter, r *http.Request, c *registry.Cors) {
	origin := r.Header.Get("Origin")
	if c == nil || origin == "" {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	allow := allowedOrigin(c, origin)
	if allow == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
	}
}

package funcurl

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/internal/registry"
)

func TestURLID(t *testing.T) {
	for _, c := range []struct{ host, path, id, rest string }{
		{"abc123.lambda-url.us-east-1.localhost:9002", "/a/b", "abc123", "/a/b"},
		{"abc123.lambda-url.eu-west-1.on.aws", "/", "abc123", "/"},
		{"127.0.0.1:9002", "/lambda-url/abc123/a/b", "abc123", "/a/b"},
		{"127.0.0.1:9002", "/lambda-url/abc123", "abc123", "/"},
		{"127.0.0.1:9002", "/other", "", ""},
	} {
		r := httptest.NewRequest("GET", "http://"+c.host+c.path, nil)
		if id, rest := urlID(r); id != c.id || rest != c.rest {
			t.Errorf("%s%s: %q %q, want %q %q", c.host, c.path, id, rest, c.id, c.rest)
		}
	}
}

func TestEvent(t *testing.T) {
	r := httptest.NewRequest("POST", "http://x.lambda-url.us-east-1.localhost/p/q?a=1&a=2&b=x", strings.NewReader(""))
	r.Header.Add("X-Thing", "one")
	r.Header.Add("X-Thing", "two")
	r.Header.Set("Cookie", "s=1; t=2")
	r.Header.Set("Content-Type", "application/octet-stream")
	r.Header.Set("User-Agent", "moat-test")
	r.RemoteAddr = "10.1.2.3:5555"
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ev := Event(r, "x", "/p/q", []byte{0, 1, 2}, nil, at)
	if ev.Version != "2.0" || ev.RawPath != "/p/q" || ev.RawQueryString != "a=1&a=2&b=x" || ev.Headers["x-thing"] != "one,two" {
		t.Errorf("event %+v", ev)
	}
	if len(ev.Cookies) != 2 || ev.Cookies[1] != "t=2" || ev.Headers["cookie"] != "" {
		t.Errorf("cookies %v, header %q", ev.Cookies, ev.Headers["cookie"])
	}
	if ev.QueryStringParameters["a"] != "1,2" || ev.QueryStringParameters["b"] != "x" {
		t.Errorf("query %v", ev.QueryStringParameters)
	}
	if !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString([]byte{0, 1, 2}) {
		t.Errorf("binary body %q %v", ev.Body, ev.IsBase64Encoded)
	}
	c := ev.RequestContext
	if c.AccountID != "anonymous" || c.HTTP.Method != "POST" || c.HTTP.SourceIP != "10.1.2.3" || c.HTTP.UserAgent != "moat-test" ||
		c.Time != "07/Dec/2026:10:00:00 +0000" || c.TimeEpoch != at.UnixMilli() || c.DomainPrefix != "x" || c.Authorizer != nil {
		t.Errorf("requestContext %+v", c)
	}
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	ev = Event(r, "x", "/", []byte(`{"k":1}`), &Caller{AccessKey: "AKID", AccountID: "000000000000"}, at)
	if ev.IsBase64Encoded || ev.Body != `{"k":1}` || ev.RequestContext.Authorizer.IAM.AccessKey != "AKID" || ev.RequestContext.AccountID != "000000000000" {
		t.Errorf("json body and IAM caller: %+v", ev)
	}
}

func TestResponse(t *testing.T) {
	tests := []struct {
		name, payload string
		status        int
		body          string
		header        string // name=value expected
		bad           bool
	}{
		{"a bare object is a 200 JSON body", `{"hello":"world"}`, 200, `{"hello":"world"}`, "Content-Type=application/json", false},
		{"a string", `"hi"`, 200, `"hi"`, "", false},
		{"full response", `{"statusCode":201,"headers":{"x-a":"b","content-type":"text/plain"},"cookies":["c=1"],"body":"made"}`, 201, "made", "Content-Type=text/plain", false},
		{"base64 body", `{"statusCode":200,"body":"AAEC","isBase64Encoded":true}`, 200, "\x00\x01\x02", "", false},
		{"no body", `{"statusCode":204}`, 204, "", "", false},
		{"not JSON", `hello`, 0, "", "", true},
		{"status out of range", `{"statusCode":42}`, 0, "", "", true},
		{"status not a number", `{"statusCode":"200"}`, 0, "", "", true},
		{"header injection", `{"statusCode":200,"headers":{"x":"a\r\nSet-Cookie: evil=1"}}`, 0, "", "", true},
		{"bad header name", `{"statusCode":200,"headers":{"x y":"a"}}`, 0, "", "", true},
		{"bad base64", `{"statusCode":200,"body":"!!","isBase64Encoded":true}`, 0, "", "", true},
	}
	for _, tt := range tests {
		r, err := Response([]byte(tt.payload))
		if tt.bad {
			if err == nil {
				t.Errorf("%s: accepted %+v", tt.name, r)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if r.Status != tt.status || string(r.Body) != tt.body {
			t.Errorf("%s: %d %q", tt.name, r.Status, r.Body)
		}
		if k, v, ok := strings.Cut(tt.header, "="); ok && r.Headers[k] != v {
			t.Errorf("%s: header %s = %q", tt.name, k, r.Headers[k])
		}
	}
	r, _ := Response([]byte(`{"statusCode":200,"cookies":["a=1","b=2"],"body":"x"}`))
	w := httptest.NewRecorder()
	r.write(w)
	if got := w.Result().Header.Values("Set-Cookie"); len(got) != 2 {
		t.Errorf("Set-Cookie %v", got)
	}
}

func TestCors(t *testing.T) {
	c := &registry.Cors{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"x-token"},
		ExposeHeaders: []string{"x-seen"}, MaxAge: 600}
	pre := func(origin, method string) *http.Response {
		r := httptest.NewRequest("OPTIONS", "/", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		if !preflight(r, c) {
			t.Fatal("not a preflight")
		}
		w := httptest.NewRecorder()
		writePreflight(w, r, c)
		return w.Result()
	}
	if h := pre("https://app.example", "POST").Header; h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Headers") != "x-token" {
		t.Errorf("allowed preflight: %v", h)
	}
	if h := pre("https://evil.example", "POST").Header; h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin allowed: %v", h)
	}
	if h := pre("https://app.example", "DELETE").Header; h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("method not allowed, yet: %v", h)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Origin", "https://app.example")
	w := httptest.NewRecorder()
	addCors(w, r, c)
	if h := w.Result().Header; h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Expose-Headers") != "x-seen" {
		t.Errorf("response CORS: %v", h)
	}
	if preflight(httptest.NewRequest("OPTIONS", "/", nil), nil) {
		t.Error("a URL without Cors answers preflights itself")
	}
}

// FuzzResponse: the function's answer is untrusted: never a panic, never
// a header that could split the response, never a status outside HTTP's.
func FuzzResponse(f *testing.F) {
	f.Add([]byte(`{"statusCode":201,"headers":{"a":"b"},"cookies":["c=1"],"body":"x"}`))
	f.Add([]byte(`{"statusCode":200,"body":"AAEC","isBase64Encoded":true}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Response(b)
		if err != nil {
			return
		}
		if r.Status < 100 || r.Status > 599 {
			t.Fatalf("status %d", r.Status)
		}
		for k, v := range r.Headers {
			if strings.ContainsAny(k+v, "\r\n") {
				t.Fatalf("header %q: %q", k, v)
			}
		}
		for _, c := range r.Cookies {
			if strings.ContainsAny(c, "\r\n") {
				t.Fatalf("cookie %q", c)
			}
		}
	})
}

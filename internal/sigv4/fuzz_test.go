package sigv4

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary Authorization headers, query strings, dates,
// paths and bodies. Verify must not panic, must refuse with one of its codes,
// and must never accept: the seeds are real SDK signatures made with a secret
// other than the verifier's, so mutations reach every check up to the final
// comparison but cannot forge a signature.
func FuzzVerify(f *testing.F) {
	const seedSecret = "seed-secret-not-the-verifiers-0123456789"
	for _, s := range []signSpec{
		{method: "GET", url: endpoint + "/2015-03-31/functions/?MaxItems=10", secret: seedSecret},
		{method: "POST", url: endpoint + "/2015-03-31/functions/" + escapedARN + "/invocations?Qualifier=%24LATEST",
			body: `{"a":1}`, token: testToken, secret: seedSecret},
		{method: "PUT", url: endpoint + "/2015-03-31/functions/f/code", body: "{}", payload: "UNSIGNED-PAYLOAD",
			header: http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}, secret: seedSecret},
		{method: "GET", url: endpoint + "/2015-03-31/functions/f", presign: true, payload: "UNSIGNED-PAYLOAD", secret: seedSecret},
	} {
		r := sdkSign(f, s)
		f.Add(r.Header.Get("Authorization"), r.URL.RawQuery, r.Header.Get("X-Amz-Date"), r.URL.EscapedPath(), []byte(s.body))
	}
	f.Add("AWS4-HMAC-SHA256 Credential=/, SignedHeaders=;, Signature=", "X-Amz-Algorithm=&X-Amz-Credential=%", "20250101T12000Z", "/", []byte{})
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="+testAKID+"%2F20250101%2Fus-east-1%2Flambda%2Faws4_request"+
		"&X-Amz-Date=20250101T120000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature="+strings.Repeat("0", 64),
		"", "/a//b/../c", []byte("x"))

	v := newVerifier(signTime)
	f.Fuzz(func(t *testing.T, authz, rawQuery, date, path string, body []byte) {
		u, err := url.Parse(path)
		if err != nil || u.Scheme != "" || u.Host != "" || u.RawQuery != "" || u.Fragment != "" {
			u = &url.URL{Path: "/"}
		}
		u.RawQuery = rawQuery
		r := &http.Request{Method: "POST", URL: u, Host: "127.0.0.1:9000", Header: http.Header{}, ContentLength: int64(len(body))}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		sum := sha256.Sum256(body)

		akid, err := v.Verify(r, sum[:])
		if err == nil {
			t.Fatalf("Verify accepted a forged request as %q", akid)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Verify error %T %v is not *Error", err, err)
		}
		switch e.Code {
		case CodeMissingAuthenticationToken, CodeIncompleteSignature, CodeInvalidSignature, CodeUnrecognizedClient:
		default:
			t.Fatalf("Verify error has unknown code %q", e.Code)
		}
		if akid != "" || strings.Contains(e.Message, testSecret) {
			t.Fatalf("Verify leaked: akid %q, message %q", akid, e.Message)
		}
	})
}

// FuzzVerifySDKRoundTrip signs arbitrary paths, queries and header values
// with the AWS SDK's signer, sends them through the HTTP wire format, and
// requires that Verify accepts every request the SDK could sign: any
// disagreement on the canonical request is a bug.
func FuzzVerifySDKRoundTrip(f *testing.F) {
	f.Add("/2015-03-31/functions/"+escapedARN+"/invocations", "Qualifier=%24LATEST", "application/json", "{}")
	f.Add("/2015-03-31/functions/f:$LATEST/configuration", "Qualifier=$LATEST&b=1&a=2&a=1", "  a   b  ", "")
	f.Add("/a%2fb/%7E/ü", "x=a+b&y=%2B&z", "\tv\t", "body")
	f.Add("/", "", "", "")
	f.Fuzz(func(t *testing.T, path, rawQuery, value, body string) {
		if !strings.HasPrefix(path, "/") || !validHeaderValue(value) {
			return
		}
		u, err := url.Parse(endpoint + path)
		if err != nil || u.RawQuery != "" || u.Fragment != "" || u.Host != "127.0.0.1:9000" {
			return
		}
		if _, err := url.ParseQuery(rawQuery); err != nil || strings.ContainsAny(rawQuery, "# \x7f") || hasCTL(rawQuery) {
			return
		}
		u.RawQuery = rawQuery
		spec := signSpec{method: "POST", url: u.String(), body: body, header: http.Header{"X-Moat-Test": {value}}}
		req := sdkSign(t, spec)
		var buf bytes.Buffer
		if err := req.Write(&buf); err != nil {
			return
		}
		r, sum := parseRaw(t, buf.String())
		if r.URL.RawQuery != rawQuery {
			return // the request did not survive the wire as signed
		}
		if _, err := newVerifier(signTime).Verify(r, sum); err != nil {
			t.Fatalf("Verify refused an SDK-signed request: %v\nrequest:\n%s", err, buf.String())
		}
	})
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}

// validHeaderValue reports whether v can be sent as a header value: no
// control characters other than tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

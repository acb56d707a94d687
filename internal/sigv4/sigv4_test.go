package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAKID   = "AKIAMOATTESTKEY00001"
	testSecret = "mOaTtEsTsEcReT/0123456789+abcdefghijklmn"
	otherAKID  = "AKIAMOATTESTKEY00002"
	testToken  = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN//////////wEaDExample=="

	fnARN      = "arn:aws:lambda:us-east-1:000000000000:function:f"
	escapedARN = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af"
	endpoint   = "http://127.0.0.1:9000"
)

var signTime = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func secrets(akid string) (string, bool) {
	if akid == testAKID {
		return testSecret, true
	}
	return "", false
}

func newVerifier(now time.Time) *Verifier {
	return &Verifier{Secret: secrets, Now: func() time.Time { return now }}
}

// signSpec describes a request for the AWS SDK's signer to sign.
type signSpec struct {
	method  string
	url     string
	body    string
	header  http.Header
	payload string // payload hash to sign; "" means hex SHA-256 of body
	token   string
	akid    string // "" means testAKID
	secret  string // "" means testSecret
	at      time.Time
	presign bool
	expires string // presigned X-Amz-Expires; "" means 900
}

// sdkSign builds the request and signs it with aws-sdk-go-v2's signer.
func sdkSign(t testing.TB, s signSpec) *http.Request {
	t.Helper()
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	req, err := http.NewRequest(s.method, s.url, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range s.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	payload := s.payload
	if payload == "" {
		sum := sha256.Sum256([]byte(s.body))
		payload = hex.EncodeToString(sum[:])
	}
	at := s.at
	if at.IsZero() {
		at = signTime
	}
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: s.token}
	if s.akid != "" {
		creds.AccessKeyID = s.akid
	}
	if s.secret != "" {
		creds.SecretAccessKey = s.secret
	}
	signer := v4.NewSigner()
	if !s.presign {
		if err := signer.SignHTTP(context.Background(), creds, req, payload, "lambda", "us-east-1", at); err != nil {
			t.Fatalf("sign: %v", err)
		}
		return req
	}
	expires := s.expires
	if expires == "" {
		expires = "900"
	}
	if req.URL.RawQuery != "" {
		req.URL.RawQuery += "&"
	}
	req.URL.RawQuery += "X-Amz-Expires=" + expires
	signed, headers, err := signer.PresignHTTP(context.Background(), creds, req, payload, "lambda", "us-east-1", at)
	if err != nil {
		t.Fatalf("presign: %v", err)
	}
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatalf("parse presigned url: %v", err)
	}
	req.URL = u
	req.Header = headers
	req.Header.Del("Host")
	return req
}

// overWire serializes a client request and parses it back the way the HTTP
// server does, so that tests see what the API edge sees (Host moved out of
// the header, RawPath as sent, and so on). It returns the request and the
// SHA-256 of its body.
func overWire(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatalf("write request: %v", err)
	}
	return parseRaw(t, buf.String())
}

func parseRaw(t testing.TB, raw string) (*http.Request, []byte) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	sum := sha256.Sum256(body)
	return r, sum[:]
}

func TestVerifyAcceptsSDKSignedRequests(t *testing.T) {
	invoke := "/2015-03-31/functions/" + escapedARN + "/invocations"
	tests := []struct {
		name string
		spec signSpec
		now  time.Time // zero means signTime
	}{
		{name: "GET with query", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/?MaxItems=10&Marker=a%2Fb%20c%2Bd&FunctionVersion=ALL",
		}},
		{name: "GET with repeated and empty query keys", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/?b=2&a=&b=1&c",
		}},
		{name: "GET without path", spec: signSpec{method: "GET", url: endpoint}},
		{name: "POST with body", spec: signSpec{
			method: "POST", url: endpoint + "/2015-03-31/functions/f/invocations",
			body:   `{"hello":"world"}`,
			header: http.Header{"Content-Type": {"application/json"}, "X-Amz-Invocation-Type": {"RequestResponse"}},
		}},
		{name: "POST with empty body", spec: signSpec{method: "POST", url: endpoint + "/2015-03-31/functions/f/versions"}},
		{name: "ARN in path escaped", spec: signSpec{
			method: "POST", url: endpoint + invoke, body: `{}`,
		}},
		{name: "ARN in path unescaped", spec: signSpec{
			method: "POST", url: endpoint + "/2015-03-31/functions/" + fnARN + "/invocations", body: `{}`,
		}},
		{name: "ARN with alias qualifier", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/" + escapedARN + "%3Aprod/configuration",
		}},
		{name: "ARN with version qualifier", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/" + escapedARN + "%3A7",
		}},
		{name: "LATEST in query escaped", spec: signSpec{
			method: "POST", url: endpoint + invoke + "?Qualifier=%24LATEST", body: `{"a":1}`,
		}},
		{name: "LATEST in query raw", spec: signSpec{
			method: "POST", url: endpoint + invoke + "?Qualifier=$LATEST", body: `{"a":1}`,
		}},
		{name: "LATEST in path", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/f%3A%24LATEST/configuration",
		}},
		{name: "LATEST raw in path", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/f/aliases/$LATEST",
		}},
		{name: "space and unicode in path", spec: signSpec{
			method: "GET", url: endpoint + "/moat/v1/logs/f%20g%C3%A9",
		}},
		{name: "UNSIGNED-PAYLOAD", spec: signSpec{
			method: "PUT", url: endpoint + "/2015-03-31/functions/f/code", body: `{"ZipFile":"UEsDBA=="}`,
			payload: "UNSIGNED-PAYLOAD", header: http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}},
		}},
		{name: "content sha256 header", spec: signSpec{
			method: "POST", url: endpoint + invoke, body: `{"x":"y"}`,
			header: http.Header{"X-Amz-Content-Sha256": {sha256Hex(`{"x":"y"}`)}},
		}},
		{name: "session token header", spec: signSpec{
			method: "POST", url: endpoint + invoke, body: `{}`, token: testToken,
		}},
		{name: "multi-valued header with runs of spaces", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/",
			header: http.Header{"X-Amz-Client-Context": {"  a   b  c ", "d"}, "X-Empty": {""}},
		}},
		{name: "non-default port host", spec: signSpec{method: "GET", url: "http://localhost:31337/2015-03-31/functions/"}},
		{name: "default port stripped", spec: signSpec{method: "GET", url: "http://localhost:80/2015-03-31/functions/"}},
		{name: "14 minutes behind", spec: signSpec{method: "GET", url: endpoint + "/"}, now: signTime.Add(14 * time.Minute)},
		{name: "14 minutes ahead", spec: signSpec{method: "GET", url: endpoint + "/"}, now: signTime.Add(-14 * time.Minute)},
		{name: "scope date is the request date near midnight", spec: signSpec{
			method: "GET", url: endpoint + "/", at: time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC),
		}, now: time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC)},
		{name: "presigned GET", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/" + escapedARN + "?Qualifier=%24LATEST",
			presign: true, payload: "UNSIGNED-PAYLOAD",
		}},
		{name: "presigned with session token and hoisted header", spec: signSpec{
			method: "GET", url: endpoint + "/2015-03-31/functions/",
			header:  http.Header{"X-Amz-Invocation-Type": {"Event"}},
			presign: true, payload: "UNSIGNED-PAYLOAD", token: testToken,
		}},
		{name: "presigned over the body hash", spec: signSpec{
			method: "POST", url: endpoint + invoke, body: `{"presigned":true}`, presign: true,
		}},
		{name: "presigned near expiry", spec: signSpec{
			method: "GET", url: endpoint + "/", presign: true, payload: "UNSIGNED-PAYLOAD", expires: "60",
		}, now: signTime.Add(60 * time.Second)},
		{name: "presigned for a week", spec: signSpec{
			method: "GET", url: endpoint + "/", presign: true, payload: "UNSIGNED-PAYLOAD", expires: "604800",
		}, now: signTime.Add(6 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = signTime
			}
			r, sum := overWire(t, sdkSign(t, tt.spec))
			akid, err := newVerifier(now).Verify(r, sum)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if akid != testAKID {
				t.Fatalf("Verify returned access key %q, want %q", akid, testAKID)
			}
		})
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestVerifyAWSVectors checks requests from the AWS SigV4 test suite and the
// AWS documentation, signed by AWS, against their published signatures.
func TestVerifyAWSVectors(t *testing.T) {
	files, err := filepath.Glob("testdata/aws-vectors/*.req")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	v := &Verifier{
		Secret: func(akid string) (string, bool) {
			return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", akid == "AKIDEXAMPLE"
		},
		Now: func() time.Time { return time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC) },
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r, sum := parseRaw(t, string(raw))
			if _, err := v.Verify(r, sum); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// TestVerifyDateHeader signs by hand a request dated with Date instead of
// X-Amz-Date, which the SDK signer never produces.
func TestVerifyDateHeader(t *testing.T) {
	for _, date := range []string{signTime.Format(http.TimeFormat), signTime.Format(isoLayout)} {
		t.Run(date, func(t *testing.T) {
			iso := signTime.Format(isoLayout)
			scope := iso[:8] + "/us-east-1/lambda/aws4_request"
			canonical := strings.Join([]string{
				"GET", "/2015-03-31/functions/", "",
				"date:" + date + "\nhost:127.0.0.1:9000\n",
				"date;host", sha256Hex(""),
			}, "\n")
			sts := "AWS4-HMAC-SHA256\n" + iso + "\n" + scope + "\n" + sha256Hex(canonical)
			key := deriveKey(testSecret, iso[:8], "us-east-1", "lambda")
			m := hmac.New(sha256.New, key[:])
			m.Write([]byte(sts))
			raw := "GET /2015-03-31/functions/ HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nDate: " + date +
				"\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" + testAKID + "/" + scope +
				", SignedHeaders=date;host, Signature=" + hex.EncodeToString(m.Sum(nil)) + "\r\n\r\n"
			r, sum := parseRaw(t, raw)
			if _, err := newVerifier(signTime).Verify(r, sum); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// TestVerifyNormalizedPath signs the botocore way: the path's dot segments and
// empty segments removed before the second escaping.
func TestVerifyNormalizedPath(t *testing.T) {
	iso := signTime.Format(isoLayout)
	scope := iso[:8] + "/us-east-1/lambda/aws4_request"
	canonical := strings.Join([]string{
		"GET", "/2015-03-31/functions/f/", "",
		"host:127.0.0.1:9000\nx-amz-date:" + iso + "\n",
		"host;x-amz-date", sha256Hex(""),
	}, "\n")
	sts := "AWS4-HMAC-SHA256\n" + iso + "\n" + scope + "\n" + sha256Hex(canonical)
	key := deriveKey(testSecret, iso[:8], "us-east-1", "lambda")
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(sts))
	raw := "GET /2015-03-31//functions/./g/../f/ HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nX-Amz-Date: " + iso +
		"\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" + testAKID + "/" + scope +
		", SignedHeaders=host;x-amz-date, Signature=" + hex.EncodeToString(m.Sum(nil)) + "\r\n\r\n"
	r, sum := parseRaw(t, raw)
	if _, err := newVerifier(signTime).Verify(r, sum); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// refusal is what a negative case expects.
type refusal struct {
	code string
	msg  string // substring of the message
}

func TestVerifyRefusesTampering(t *testing.T) {
	invoke := endpoint + "/2015-03-31/functions/" + escapedARN + "/invocations?Qualifier=%24LATEST"
	post := signSpec{
		method: "POST", url: invoke, body: `{"amount":1}`,
		header: http.Header{"Content-Type": {"application/json"}, "X-Amz-Invocation-Type": {"RequestResponse"}},
	}
	presigned := signSpec{method: "GET", url: invoke, presign: true, payload: "UNSIGNED-PAYLOAD"}
	mismatch := refusal{CodeInvalidSignature, "does not match"}

	tests := []struct {
		name   string
		spec   signSpec
		tamper func(r *http.Request) // on the signed client request, before it is sent
		body   *string               // body sent instead of the signed one
		now    time.Time
		nilSum bool // the caller does not know the body hash
		want   refusal
	}{
		{name: "tampered body", spec: post, body: ptr(`{"amount":1000}`), want: mismatch},
		{name: "tampered signed header", spec: post, tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Invocation-Type", "Event")
		}, want: mismatch},
		{name: "signed header removed", spec: post, tamper: func(r *http.Request) {
			r.Header.Del("X-Amz-Invocation-Type")
		}, want: refusal{CodeInvalidSignature, "signed header 'x-amz-invocation-type'"}},
		{name: "tampered path", spec: post, tamper: func(r *http.Request) {
			r.URL.Path = strings.Replace(r.URL.Path, "function:f", "function:g", 1)
			r.URL.RawPath = strings.Replace(r.URL.RawPath, "function%3Af", "function%3Ag", 1)
		}, want: mismatch},
		{name: "path escaped differently", spec: post, tamper: func(r *http.Request) {
			r.URL.RawPath = ""
		}, want: mismatch},
		{name: "tampered query", spec: post, tamper: func(r *http.Request) {
			r.URL.RawQuery = "Qualifier=prod"
		}, want: mismatch},
		{name: "added query parameter", spec: post, tamper: func(r *http.Request) {
			r.URL.RawQuery += "&Extra=1"
		}, want: mismatch},
		{name: "tampered method", spec: post, tamper: func(r *http.Request) { r.Method = "PUT" }, want: mismatch},
		{name: "tampered host", spec: post, tamper: func(r *http.Request) { r.Host = "127.0.0.1:9001" }, want: mismatch},
		{name: "tampered date", spec: post, tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", signTime.Add(time.Second).Format(isoLayout))
		}, want: mismatch},
		{name: "unknown access key", spec: signSpec{method: "GET", url: endpoint + "/", akid: otherAKID},
			want: refusal{CodeUnrecognizedClient, "security token included in the request is invalid"}},
		{name: "wrong secret", spec: signSpec{method: "GET", url: endpoint + "/", secret: "not-the-secret"}, want: mismatch},
		{name: "other region still needs the right secret", spec: post, tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "us-east-1", "eu-west-1", 1))
		}, want: mismatch},
		{name: "16 minutes old", spec: post, now: signTime.Add(16 * time.Minute),
			want: refusal{CodeInvalidSignature, "Signature expired: 20250101T120000Z is now earlier than 20250101T120100Z (20250101T121600Z - 15 min.)"}},
		{name: "16 minutes in the future", spec: post, now: signTime.Add(-16 * time.Minute),
			want: refusal{CodeInvalidSignature, "Signature not yet current: 20250101T120000Z is still later than 20250101T115900Z (20250101T114400Z + 15 min.)"}},
		{name: "UNSIGNED-PAYLOAD declared but body signed", spec: post, tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		}, want: mismatch},
		{name: "content sha256 header mismatch", spec: signSpec{
			method: "POST", url: invoke, body: `{}`, header: http.Header{"X-Amz-Content-Sha256": {sha256Hex(`{}`)}},
		}, body: ptr(`{"other":1}`), want: refusal{CodeInvalidSignature, "x-amz-content-sha256"}},
		{name: "content sha256 header garbage", spec: post, tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
		}, want: refusal{CodeInvalidSignature, "x-amz-content-sha256"}},
		{name: "body hash unknown", spec: post, nilSum: true, want: refusal{CodeInvalidSignature, "UNSIGNED-PAYLOAD"}},
		{name: "expired presigned URL", spec: presigned, now: signTime.Add(15*time.Minute + time.Second),
			want: refusal{CodeInvalidSignature, "Signature expired"}},
		{name: "presigned URL not yet current", spec: presigned, now: signTime.Add(-16 * time.Minute),
			want: refusal{CodeInvalidSignature, "Signature not yet current"}},
		{name: "presigned expiry extended", spec: presigned, now: signTime.Add(20 * time.Minute), tamper: func(r *http.Request) {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "X-Amz-Expires=900", "X-Amz-Expires=3600", 1)
		}, want: mismatch},
		{name: "presigned query tampered", spec: presigned, tamper: func(r *http.Request) {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "%24LATEST", "prod", 1)
		}, want: mismatch},
		{name: "presigned with body the URL did not sign", spec: signSpec{
			method: "POST", url: invoke, body: `{"a":1}`, presign: true,
		}, body: ptr(`{"a":2}`), want: mismatch},
		{name: "presigned expires zero", spec: presigned, tamper: setQuery("X-Amz-Expires", "0"),
			want: refusal{CodeIncompleteSignature, "X-Amz-Expires"}},
		{name: "presigned expires over a week", spec: presigned, tamper: setQuery("X-Amz-Expires", "604801"),
			want: refusal{CodeIncompleteSignature, "X-Amz-Expires"}},
		{name: "presigned expires not a number", spec: presigned, tamper: setQuery("X-Amz-Expires", "+900"),
			want: refusal{CodeIncompleteSignature, "X-Amz-Expires"}},
		{name: "presigned wrong algorithm", spec: presigned, tamper: setQuery("X-Amz-Algorithm", "AWS4-HMAC-SHA512"),
			want: refusal{CodeIncompleteSignature, "X-Amz-Algorithm"}},
		{name: "presigned missing signature", spec: presigned, tamper: setQuery("X-Amz-Signature", ""),
			want: refusal{CodeIncompleteSignature, "must include"}},
		{name: "presigned missing expires", spec: presigned, tamper: setQuery("X-Amz-Expires", ""),
			want: refusal{CodeIncompleteSignature, "must include"}},
		{name: "presigned duplicate signature", spec: presigned, tamper: func(r *http.Request) {
			r.URL.RawQuery += "&X-Amz-Signature=" + strings.Repeat("0", 64)
		}, want: refusal{CodeIncompleteSignature, "more than once"}},
		{name: "presigned and Authorization header", spec: presigned, tamper: func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		}, want: refusal{CodeIncompleteSignature, "Only one authentication mechanism"}},
		{name: "presigned host not signed", spec: presigned, tamper: setQuery("X-Amz-SignedHeaders", "x-amz-date"),
			want: refusal{CodeInvalidSignature, "'Host'"}},
		{name: "no authentication", spec: post, tamper: func(r *http.Request) { r.Header.Del("Authorization") },
			want: refusal{CodeMissingAuthenticationToken, "Missing Authentication Token"}},
		{name: "blank Authorization", spec: post, tamper: func(r *http.Request) { r.Header.Set("Authorization", "  ") },
			want: refusal{CodeMissingAuthenticationToken, "Missing Authentication Token"}},
		{name: "two Authorization headers", spec: post, tamper: func(r *http.Request) {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
		}, want: refusal{CodeIncompleteSignature, "more than one Authorization"}},
		{name: "missing X-Amz-Date", spec: post, tamper: func(r *http.Request) { r.Header.Del("X-Amz-Date") },
			want: refusal{CodeIncompleteSignature, "'X-Amz-Date' or a 'Date' header"}},
		{name: "X-Amz-Date not ISO 8601 basic", spec: post, tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", "2025-01-01T12:00:00Z")
		}, want: refusal{CodeIncompleteSignature, "ISO 8601"}},
		{name: "X-Amz-Date out of range", spec: post, tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", "20251301T120000Z")
		}, want: refusal{CodeIncompleteSignature, "ISO 8601"}},
		{name: "scope date differs from request date", spec: post, tamper: editAuth("/20250101/", "/20250102/"),
			want: refusal{CodeInvalidSignature, "'20250102' != '20250101'"}},
		{name: "host not signed", spec: post, tamper: editAuth("SignedHeaders=content-length;content-type;host;", "SignedHeaders=content-length;content-type;"),
			want: refusal{CodeInvalidSignature, "'Host'"}},
		{name: "missing Credential", spec: post, tamper: dropAuthPart("Credential"),
			want: refusal{CodeIncompleteSignature, "requires 'Credential' parameter"}},
		{name: "missing SignedHeaders", spec: post, tamper: dropAuthPart("SignedHeaders"),
			want: refusal{CodeIncompleteSignature, "requires 'SignedHeaders' parameter"}},
		{name: "missing Signature", spec: post, tamper: dropAuthPart("Signature"),
			want: refusal{CodeIncompleteSignature, "requires 'Signature' parameter"}},
		{name: "wrong algorithm", spec: post, tamper: editAuth("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA512 "),
			want: refusal{CodeIncompleteSignature, "algorithm"}},
		{name: "wrong terminator", spec: post, tamper: editAuth("/aws4_request", "/aws4_requesT"),
			want: refusal{CodeIncompleteSignature, "terminator"}},
		{name: "signed headers uppercase", spec: post, tamper: editAuth("content-type", "Content-Type"),
			want: refusal{CodeIncompleteSignature, "SignedHeaders"}},
		{name: "signature not hex", spec: post, tamper: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-64]+strings.Repeat("z", 64))
		}, want: refusal{CodeIncompleteSignature, "hexadecimal"}},
		{name: "signature flipped", spec: post, tamper: func(r *http.Request) {
			a := []byte(r.Header.Get("Authorization"))
			if a[len(a)-1] == '0' {
				a[len(a)-1] = '1'
			} else {
				a[len(a)-1] = '0'
			}
			r.Header.Set("Authorization", string(a))
		}, want: mismatch},
		{name: "query with bad escape", spec: post, tamper: func(r *http.Request) { r.URL.RawQuery += "&a=%zz" },
			want: refusal{CodeInvalidSignature, "malformed"}},
		{name: "query with semicolon", spec: post, tamper: func(r *http.Request) { r.URL.RawQuery += ";a=1" },
			want: refusal{CodeInvalidSignature, "malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sdkSign(t, tt.spec)
			sig := signatureOf(req)
			if tt.tamper != nil {
				tt.tamper(req)
			}
			if tt.body != nil {
				req.Body = io.NopCloser(strings.NewReader(*tt.body))
				req.ContentLength = int64(len(*tt.body))
			}
			r, sum := overWire(t, req)
			if tt.nilSum {
				sum = nil
			}
			now := tt.now
			if now.IsZero() {
				now = signTime
			}
			akid, err := newVerifier(now).Verify(r, sum)
			checkRefusal(t, akid, err, tt.want, sig)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func setQuery(key, value string) func(*http.Request) {
	return func(r *http.Request) {
		q := r.URL.Query()
		if value == "" {
			q.Del(key)
		} else {
			q.Set(key, value)
		}
		r.URL.RawQuery = q.Encode()
	}
}

func editAuth(old, new string) func(*http.Request) {
	return func(r *http.Request) {
		a := r.Header.Get("Authorization")
		if !strings.Contains(a, old) {
			panic(fmt.Sprintf("Authorization %q lacks %q", a, old))
		}
		r.Header.Set("Authorization", strings.Replace(a, old, new, 1))
	}
}

func dropAuthPart(name string) func(*http.Request) {
	return func(r *http.Request) {
		alg, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		var keep []string
		for part := range strings.SplitSeq(rest, ", ") {
			if !strings.HasPrefix(part, name+"=") {
				keep = append(keep, part)
			}
		}
		r.Header.Set("Authorization", alg+" "+strings.Join(keep, ", "))
	}
}

// signatureOf returns the hex signature a signed request carries.
func signatureOf(r *http.Request) string {
	if s := r.URL.Query().Get("X-Amz-Signature"); s != "" {
		return s
	}
	_, s, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
	return s
}

func checkRefusal(t *testing.T, akid string, err error, want refusal, sig string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify accepted the request as %q; want %s", akid, want.code)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Verify error %T %v is not *Error", err, err)
	}
	if e.Code != want.code || !strings.Contains(e.Message, want.msg) {
		t.Fatalf("Verify error = %s: %q; want %s containing %q", e.Code, e.Message, want.code, want.msg)
	}
	if akid != "" {
		t.Fatalf("Verify returned access key %q with an error", akid)
	}
	for _, secret := range []string{testSecret, sig} {
		if secret != "" && strings.Contains(e.Error(), secret) {
			t.Fatalf("error message leaks a secret or signature: %q", e.Error())
		}
	}
}

// TestVerifyRefusesGarbage feeds hand-written Authorization headers.
func TestVerifyRefusesGarbage(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	good := func(cred, signed string) string {
		return "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + signed + ", Signature=" + sig
	}
	cred := testAKID + "/20250101/us-east-1/lambda/aws4_request"
	tests := []struct {
		name string
		auth string
		want refusal
	}{
		{"bearer", "Bearer abc", refusal{CodeIncompleteSignature, "algorithm"}},
		{"algorithm only", "AWS4-HMAC-SHA256", refusal{CodeIncompleteSignature, "malformed"}},
		{"algorithm and space", "AWS4-HMAC-SHA256 ", refusal{CodeIncompleteSignature, "malformed"}},
		{"part without value", "AWS4-HMAC-SHA256 Credential", refusal{CodeIncompleteSignature, "malformed"}},
		{"unknown part", good(cred, "host;x-amz-date") + ", Foo=bar", refusal{CodeIncompleteSignature, "malformed"}},
		{"duplicate part", good(cred, "host;x-amz-date") + ", Signature=" + sig, refusal{CodeIncompleteSignature, "more than once"}},
		{"trailing comma", good(cred, "host;x-amz-date") + ",", refusal{CodeIncompleteSignature, "malformed"}},
		{"lowercase algorithm", strings.ToLower(good(cred, "host;x-amz-date")), refusal{CodeIncompleteSignature, "algorithm"}},
		{"SigV2", "AWS " + testAKID + ":c2lnbmF0dXJl", refusal{CodeIncompleteSignature, "algorithm"}},
		{"credential without scope", good(testAKID, "host"), refusal{CodeIncompleteSignature, "Credential must have the form"}},
		{"credential short scope", good(testAKID+"/20250101/us-east-1/aws4_request", "host"), refusal{CodeIncompleteSignature, "Credential must have the form"}},
		{"credential long scope", good(cred+"/x", "host"), refusal{CodeIncompleteSignature, "Credential must have the form"}},
		{"credential empty key", good("/20250101/us-east-1/lambda/aws4_request", "host"), refusal{CodeIncompleteSignature, "Credential must have the form"}},
		{"credential empty region", good(testAKID+"/20250101//lambda/aws4_request", "host"), refusal{CodeIncompleteSignature, "Credential must have the form"}},
		{"credential bad date", good(testAKID+"/2025-1-1/us-east-1/lambda/aws4_request", "host"), refusal{CodeIncompleteSignature, "valid date"}},
		{"signed headers empty", good(cred, ""), refusal{CodeIncompleteSignature, "SignedHeaders"}},
		{"signed headers empty name", good(cred, "host;;x-amz-date"), refusal{CodeIncompleteSignature, "SignedHeaders"}},
		{"signed headers with space", good(cred, "host; x-amz-date"), refusal{CodeIncompleteSignature, "SignedHeaders"}},
		{"signature short", "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host, Signature=abcd", refusal{CodeIncompleteSignature, "hexadecimal"}},
		{"well formed but forged", good(cred, "host;x-amz-date"), refusal{CodeInvalidSignature, "does not match"}},
		{"listed header absent", good(cred, "host;x-amz-date;x-amz-target"), refusal{CodeInvalidSignature, "signed header 'x-amz-target'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "GET /2015-03-31/functions/ HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nX-Amz-Date: 20250101T120000Z\r\n" +
				"Authorization: " + tt.auth + "\r\n\r\n"
			r, sum := parseRaw(t, raw)
			akid, err := newVerifier(signTime).Verify(r, sum)
			checkRefusal(t, akid, err, tt.want, sig)
		})
	}
}

func TestVerifierDefaults(t *testing.T) {
	t.Run("nil Secret knows no key", func(t *testing.T) {
		r, sum := overWire(t, sdkSign(t, signSpec{method: "GET", url: endpoint + "/", at: time.Now()}))
		_, err := (&Verifier{}).Verify(r, sum)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeUnrecognizedClient {
			t.Fatalf("Verify = %v; want %s", err, CodeUnrecognizedClient)
		}
	})
	t.Run("nil Now is the wall clock", func(t *testing.T) {
		r, sum := overWire(t, sdkSign(t, signSpec{method: "GET", url: endpoint + "/", at: time.Now()}))
		if _, err := (&Verifier{Secret: secrets}).Verify(r, sum); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("MaxSkew", func(t *testing.T) {
		r, sum := overWire(t, sdkSign(t, signSpec{method: "GET", url: endpoint + "/"}))
		v := &Verifier{Secret: secrets, Now: func() time.Time { return signTime.Add(90 * time.Second) }, MaxSkew: time.Minute}
		_, err := v.Verify(r, sum)
		checkRefusal(t, "", err, refusal{CodeInvalidSignature, "(20250101T120130Z - 1 min.)"}, "")
		v.MaxSkew = 2 * time.Minute
		if _, err := v.Verify(r, sum); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func TestKeyCache(t *testing.T) {
	t.Run("rotated secret does not reuse the old key", func(t *testing.T) {
		secret := testSecret
		v := &Verifier{
			Secret: func(string) (string, bool) { return secret, true },
			Now:    func() time.Time { return signTime },
		}
		r, sum := overWire(t, sdkSign(t, signSpec{method: "GET", url: endpoint + "/"}))
		if _, err := v.Verify(r, sum); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if n := v.keys.len(); n != 1 {
			t.Fatalf("cache holds %d keys, want 1", n)
		}
		secret = "rotated"
		_, err := v.Verify(r, sum)
		checkRefusal(t, "", err, refusal{CodeInvalidSignature, "does not match"}, "")
	})
	t.Run("failed requests are not cached", func(t *testing.T) {
		v := newVerifier(signTime)
		r, sum := overWire(t, sdkSign(t, signSpec{method: "GET", url: endpoint + "/", secret: "wrong"}))
		if _, err := v.Verify(r, sum); err == nil {
			t.Fatal("Verify accepted a wrong secret")
		}
		if n := v.keys.len(); n != 0 {
			t.Fatalf("cache holds %d keys, want 0", n)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		var c keyCache
		for i := range 3 * keyCacheSize {
			c.put(scopeKey{secret: "s", date: "20250101", region: fmt.Sprint("r", i), service: "lambda"}, [32]byte{byte(i)})
		}
		if n := c.len(); n != keyCacheSize {
			t.Fatalf("cache holds %d keys, want %d", n, keyCacheSize)
		}
	})
	t.Run("derived key matches a fresh derivation", func(t *testing.T) {
		v := newVerifier(signTime)
		r, sum := overWire(t, sdkSign(t, signSpec{method: "GET", url: endpoint + "/"}))
		for range 3 {
			if _, err := v.Verify(r, sum); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		}
		got, ok := v.keys.get(scopeKey{testSecret, "20250101", "us-east-1", "lambda"})
		if want := deriveKey(testSecret, "20250101", "us-east-1", "lambda"); !ok || got != want {
			t.Fatalf("cached key = %x, %v; want %x", got, ok, want)
		}
	})
}

func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(signTime)
	type job struct {
		r    *http.Request
		sum  []byte
		good bool
	}
	var jobs []job
	for i := range 8 {
		spec := signSpec{method: "POST", url: endpoint + "/2015-03-31/functions/f/invocations", body: fmt.Sprint(i)}
		if i%2 == 1 {
			spec.secret = "wrong"
		}
		r, sum := overWire(t, sdkSign(t, spec))
		jobs = append(jobs, job{r, sum, i%2 == 0})
	}
	errs := make([]error, 64)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			j := jobs[i%len(jobs)]
			_, errs[i] = v.Verify(j.r, j.sum)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if good := jobs[i%len(jobs)].good; (err == nil) != good {
			t.Errorf("request %d: Verify = %v, want success %v", i, err, good)
		}
	}
}

func TestCanonicalPieces(t *testing.T) {
	t.Run("normalizePath", func(t *testing.T) {
		for in, want := range map[string]string{
			"/":                "/",
			"/a/b":             "/a/b",
			"/a//b":            "/a/b",
			"//a/b/":           "/a/b/",
			"/a/./b":           "/a/b",
			"/a/../b":          "/b",
			"/../a":            "/a",
			"/a/b/..":          "/a",
			"/a/b/../":         "/a/",
			"/./":              "/",
			"/.hidden/x":       "/.hidden/x",
			"/%2E%2E/x":        "/%2E%2E/x",
			"/2015-03-31/fns/": "/2015-03-31/fns/",
		} {
			if got := normalizePath(in); got != want {
				t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
			}
		}
	})
	t.Run("escape", func(t *testing.T) {
		for _, c := range []struct {
			in        string
			keepSlash bool
			want      string
		}{
			{"AZaz09-._~", false, "AZaz09-._~"},
			{"a b+c", false, "a%20b%2Bc"},
			{"/a/b", false, "%2Fa%2Fb"},
			{"/a/b", true, "/a/b"},
			{"/f%3A%24LATEST", true, "/f%253A%2524LATEST"},
			{"é", false, "%C3%A9"},
			{"$LATEST", false, "%24LATEST"},
		} {
			if got := escape(c.in, c.keepSlash); got != c.want {
				t.Errorf("escape(%q, %v) = %q, want %q", c.in, c.keepSlash, got, c.want)
			}
		}
	})
	t.Run("escapedPath", func(t *testing.T) {
		for _, c := range []struct {
			u    *url.URL
			want string
		}{
			{&url.URL{Path: ""}, "/"},
			{&url.URL{Path: "/a:b", RawPath: "/a%3Ab"}, "/a%3Ab"},
			{&url.URL{Path: "/a:b"}, "/a:b"},
			{&url.URL{Scheme: "http", Host: "h", Opaque: "//h/a%3Ab?x=1"}, "/a%3Ab"},
			{&url.URL{Scheme: "http", Opaque: "//h"}, "/"},
		} {
			if got := escapedPath(c.u); got != c.want {
				t.Errorf("escapedPath(%#v) = %q, want %q", c.u, got, c.want)
			}
		}
	})
	t.Run("headerValues", func(t *testing.T) {
		r := &http.Request{
			Host:             "from-request:1",
			URL:              &url.URL{Host: "from-url:2"},
			Header:           http.Header{"x-lower": {"raw key"}, "X-Lower": {"canonical key"}},
			ContentLength:    42,
			TransferEncoding: []string{"chunked"},
		}
		for name, want := range map[string]string{
			"host":              "from-request:1",
			"x-lower":           "canonical key",
			"content-length":    "42",
			"transfer-encoding": "chunked",
		} {
			if got, ok := headerValues(r, name); !ok || strings.Join(got, ",") != want {
				t.Errorf("headerValues(%q) = %q, %v; want %q", name, got, ok, want)
			}
		}
		r.Header.Set("Host", "from-header:3")
		delete(r.Header, "X-Lower")
		r.Host = ""
		for name, want := range map[string]string{"host": "from-header:3", "x-lower": "raw key"} {
			if got, ok := headerValues(r, name); !ok || strings.Join(got, ",") != want {
				t.Errorf("headerValues(%q) = %q, %v; want %q", name, got, ok, want)
			}
		}
		delete(r.Header, "Host")
		if got, _ := headerValues(r, "host"); strings.Join(got, ",") != "from-url:2" {
			t.Errorf("headerValues(host) without Host = %q, want the URL's host", got)
		}
		r.ContentLength = 0
		if got, ok := headerValues(r, "content-length"); ok {
			t.Errorf("headerValues(content-length) with no length = %q", got)
		}
	})
	t.Run("canonicalKey", func(t *testing.T) {
		for _, name := range []string{"host", "x-amz-date", "content-type", "x-", "-x", "a--b", "x_y-z1", "etag", "www-authenticate"} {
			if got, want := string(canonicalKey(nil, name)), textproto.CanonicalMIMEHeaderKey(name); got != want {
				t.Errorf("canonicalKey(%q) = %q, want %q", name, got, want)
			}
		}
	})
	t.Run("appendTrimmed", func(t *testing.T) {
		for in, want := range map[string]string{
			"":            "",
			"  a  ":       "a",
			"a   b    c":  "a b c",
			"\ta \t b\t":  "a \t b",
			"no-change":   "no-change",
			"  lead-only": "lead-only",
		} {
			if got := string(appendTrimmed(nil, in)); got != want {
				t.Errorf("appendTrimmed(%q) = %q, want %q", in, got, want)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	cases := []struct {
		name string
		spec signSpec
	}{
		{"invoke", signSpec{
			method: "POST", url: endpoint + "/2015-03-31/functions/" + escapedARN + "/invocations?Qualifier=%24LATEST",
			body:   `{"key":"value"}`,
			header: http.Header{"Content-Type": {"application/json"}, "X-Amz-Invocation-Type": {"RequestResponse"}},
			token:  testToken,
		}},
		{"presigned", signSpec{method: "GET", url: endpoint + "/2015-03-31/functions/f", presign: true, payload: "UNSIGNED-PAYLOAD"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r, sum := overWire(b, sdkSign(b, c.spec))
			v := newVerifier(signTime)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r, sum); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("invoke/uncached-key", func(b *testing.B) {
		r, sum := overWire(b, sdkSign(b, cases[0].spec))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := newVerifier(signTime).Verify(r, sum); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("invoke/parallel", func(b *testing.B) {
		r, sum := overWire(b, sdkSign(b, cases[0].spec))
		v := newVerifier(signTime)
		var failures atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(r, sum); err != nil {
					failures.Add(1)
				}
			}
		})
		if n := failures.Load(); n > 0 {
			b.Fatalf("%d verifications failed", n)
		}
	})
}

// TestVerifyScope: a verifier told its region and service refuses a
// signature scoped to another, as AWS does; told nothing, it takes any.
func TestVerifyScope(t *testing.T) {
	req := func() *http.Request {
		return sdkSign(t, signSpec{method: "GET", url: endpoint + "/2015-03-31/functions/"})
	}
	sum := sha256.Sum256(nil)
	for _, c := range []struct {
		region, service string
		ok              bool
		want            string
	}{
		{"", "", true, ""},
		{"us-east-1", "lambda", true, ""},
		{"eu-west-1", "lambda", false, "scoped to a valid region"},
		{"us-east-1", "s3", false, "scoped to correct service: 's3'"},
	} {
		v := newVerifier(signTime)
		v.Region, v.Service = c.region, c.service
		_, err := v.Verify(req(), sum[:])
		if c.ok != (err == nil) {
			t.Errorf("%s/%s: err %v", c.region, c.service, err)
			continue
		}
		var e *Error
		if !c.ok && (!errors.As(err, &e) || e.Code != CodeInvalidSignature || !strings.Contains(e.Message, c.want)) {
			t.Errorf("%s/%s: %v, want InvalidSignatureException %q", c.region, c.service, err, c.want)
		}
	}
}

package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/fixture"
)

// TestFunctionURLs: a function written for Lambda function URLs
// (aws-lambda-go's event types) deployed and given a URL with the AWS
// SDK, then called over HTTP as a browser or curl would: by host name and
// by path, with a query, a header, cookies, a JSON and a binary body; its
// answer becomes the response (status, headers, cookies, base64 bodies);
// a function error is a 502, CORS preflights are answered by the URL; an
// AWS_IAM URL takes only SigV4-signed requests, and tells the function
// who signed; a deleted URL answers no more.
func TestFunctionURLs(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	n.create(t, "web", fixture.GoZip(t, "testdata/functions/web"), nil)
	out, err := n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{
		FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone,
		Cors: &types.Cors{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "POST"}, MaxAge: aws.Int32(600)},
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(aws.ToString(out.FunctionUrl))
	if err != nil || !strings.Contains(u.Host, ".lambda-url.us-east-1.localhost:") || out.InvokeMode != types.InvokeModeBuffered {
		t.Fatalf("FunctionUrl %q (%v), InvokeMode %s", aws.ToString(out.FunctionUrl), err, out.InvokeMode)
	}
	id, _, _ := strings.Cut(u.Host, ".")
	// Every request goes to the URL listener, whatever host it names.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+u.Port())
	}}, Timeout: 30 * time.Second}
	call := func(method, target, ctype, body string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, target, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	type seen struct {
		Method, Path, RawQuery, Body, Thing, AccessKey, SourceIP, APIID string
		Query                                                           map[string]string
		IsBase64Encoded                                                 bool
		Cookies                                                         []string
	}
	decode := func(b []byte) seen {
		t.Helper()
		var s seen
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("body %s: %v", b, err)
		}
		return s
	}

	base := aws.ToString(out.FunctionUrl)
	resp, b := call("POST", base+"orders/7?x=1&x=2", "application/json", `{"qty":3}`,
		map[string]string{"X-Thing": "abc", "Cookie": "a=1; b=2", "Origin": "https://app.example"})
	s := decode(b)
	if resp.StatusCode != 201 || resp.Header.Get("X-Seen-Path") != "/orders/7" || resp.Header.Get("Set-Cookie") != "seen=1; Path=/" ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("response %d %v", resp.StatusCode, resp.Header)
	}
	if s.Method != "POST" || s.Path != "/orders/7" || s.RawQuery != "x=1&x=2" || s.Query["x"] != "1,2" || s.Body != `{"qty":3}` ||
		s.IsBase64Encoded || s.Thing != "abc" || len(s.Cookies) != 2 || s.SourceIP != "127.0.0.1" || s.APIID != id || s.AccessKey != "" {
		t.Errorf("the function saw %+v", s)
	}
	// The invocation's forensic record says a URL triggered it.
	reqID := resp.Header.Get("X-Amzn-Requestid")
	for deadline := time.Now().Add(10 * time.Second); ; pause(100 * time.Millisecond) {
		tr := n.signed(t, "GET", "/moat/v1/traces/"+reqID, nil)
		var body struct{ Records []struct{ Source string } }
		err := json.NewDecoder(tr.Body).Decode(&body)
		tr.Body.Close()
		if tr.StatusCode == 200 && err == nil && len(body.Records) == 1 && body.Records[0].Source == "url:"+id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record of %s with source url:%s: %d %+v %v", reqID, id, tr.StatusCode, body, err)
		}
	}
	// By path, and a binary body.
	resp, b = call("PUT", "http://127.0.0.1:"+u.Port()+"/lambda-url/"+id+"/blob", "application/octet-stream", "\x00\x01", nil)
	if s := decode(b); resp.StatusCode != 201 || s.Path != "/blob" || !s.IsBase64Encoded || s.Body != "AAE=" {
		t.Errorf("by path, binary: %d %+v", resp.StatusCode, s)
	}
	if resp, b := call("GET", base+"bare", "", "", nil); resp.StatusCode != 200 || string(b) != `{"bare":true}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("bare answer: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if resp, b := call("GET", base+"binary", "", "", nil); resp.StatusCode != 200 || string(b) != "\x00\x01\x02\xff" {
		t.Errorf("binary answer: %d %q", resp.StatusCode, b)
	}
	if resp, b := call("GET", base+"error", "", "", nil); resp.StatusCode != 502 || !strings.Contains(string(b), "Internal Server Error") {
		t.Errorf("function error: %d %s", resp.StatusCode, b)
	}
	// A preflight is the URL's to answer.
	resp, _ = call("OPTIONS", base+"orders", "", "", map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = call("OPTIONS", base+"orders", "", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of a foreign origin allowed: %v", resp.Header)
	}
	if resp, _ := call("GET", "http://nosuchid.lambda-url.us-east-1.localhost/", "", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown URL: %d", resp.StatusCode)
	}

	// AWS_IAM: unsigned is refused; signed by moat's key goes through.
	if _, err := n.client.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeAwsIam}); err != nil {
		t.Fatal(err)
	}
	if resp, b := call("GET", base+"x", "", "", nil); resp.StatusCode != 403 {
		t.Errorf("unsigned request to an AWS_IAM URL: %d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest("POST", base+"signed", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(`{}`))
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: n.key.AccessKeyID, SecretAccessKey: n.key.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	sresp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := io.ReadAll(sresp.Body)
	sresp.Body.Close()
	if s := decode(sb); sresp.StatusCode != 201 || s.AccessKey != n.key.AccessKeyID {
		t.Errorf("signed request: %d %+v", sresp.StatusCode, s)
	}

	// Get, List, Delete.
	got, err := n.client.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")})
	if err != nil || aws.ToString(got.FunctionUrl) != base || got.AuthType != types.FunctionUrlAuthTypeAwsIam || got.Cors == nil || aws.ToInt32(got.Cors.MaxAge) != 600 {
		t.Errorf("get = %+v, %v", got, err)
	}
	list, err := n.client.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web")})
	if err != nil || len(list.FunctionUrlConfigs) != 1 || aws.ToString(list.FunctionUrlConfigs[0].FunctionUrl) != base {
		t.Errorf("list = %+v, %v", list, err)
	}
	if _, err := n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone}); err == nil ||
		!strings.Contains(err.Error(), "ResourceConflictException") {
		t.Errorf("a second URL for $LATEST: %v", err)
	}
	if _, err := n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("1"), AuthType: types.FunctionUrlAuthTypeNone}); err == nil {
		t.Error("a URL for a version number was accepted")
	}
	if _, err := n.client.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := call("GET", base, "", "", nil); resp.StatusCode != 404 {
		t.Errorf("deleted URL answers %d", resp.StatusCode)
	}
	if _, err := n.client.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); err == nil ||
		!strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("get of a deleted URL: %v", err)
	}
}

// TestSignedForAnotherRegion: a request signed for another region than
// the node's is refused, as AWS refuses it, and says why.
func TestSignedForAnotherRegion(t *testing.T) {
	n := startNode(t, nil)
	other := lambda.New(lambda.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(n.url),
		Credentials:  awscreds.NewStaticCredentialsProvider(n.key.AccessKeyID, n.key.SecretAccessKey, ""),
	})
	_, err := other.ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") || !strings.Contains(err.Error(), "'us-east-1', not 'eu-west-1'") {
		t.Errorf("ListFunctions signed for eu-west-1: %v", err)
	}
	if _, err := n.client.ListFunctions(context.Background(), &lambda.ListFunctionsInput{}); err != nil {
		t.Errorf("signed for the node's region: %v", err)
	}
}

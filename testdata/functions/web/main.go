// Command web is a Lambda function written for function URLs with
// aws-lambda-go's own event types, as such functions are written for AWS:
// it answers with what it received, so that a test can check the request
// it was given (payload format 2.0) and the response it made.
//
//	/error   the invocation fails (a function error)
//	/bare    answers a bare JSON object (no statusCode): a 200 JSON body
//	/binary  answers four bytes, base64-encoded
//	other    201 with headers, a cookie and a JSON body describing the request
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// seen is what the function tells of its request.
type seen struct {
	Method          string            `json:"method"`
	Path            string            `json:"path"`
	Query           map[string]string `json:"query"`
	RawQuery        string            `json:"rawQuery"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	Cookies         []string          `json:"cookies"`
	Thing           string            `json:"thing"`
	AccessKey       string            `json:"accessKey"`
	SourceIP        string            `json:"sourceIp"`
	APIID           string            `json:"apiId"`
}

func handle(_ context.Context, req events.LambdaFunctionURLRequest) (any, error) {
	switch req.RawPath {
	case "/error":
		return nil, errors.New("asked to fail")
	case "/bare":
		return map[string]any{"bare": true}, nil
	case "/binary":
		return events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{"content-type": "application/octet-stream"},
			Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}), IsBase64Encoded: true}, nil
	}
	s := seen{Method: req.RequestContext.HTTP.Method, Path: req.RawPath, Query: req.QueryStringParameters, RawQuery: req.RawQueryString,
		Body: req.Body, IsBase64Encoded: req.IsBase64Encoded, Cookies: req.Cookies, Thing: req.Headers["x-thing"],
		SourceIP: req.RequestContext.HTTP.SourceIP, APIID: req.RequestContext.APIID}
	if req.RequestContext.Authorizer != nil && req.RequestContext.Authorizer.IAM != nil {
		s.AccessKey = req.RequestContext.Authorizer.IAM.AccessKey
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return events.LambdaFunctionURLResponse{StatusCode: 201, Headers: map[string]string{"content-type": "application/json", "x-seen-path": req.RawPath},
		Cookies: []string{"seen=1; Path=/"}, Body: string(b)}, nil
}

func main() { lambda.Start(handle) }

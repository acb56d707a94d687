package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
)

// Fuzz targets for the control-plane request decoders: whatever the body,
// the handler answers 2xx or 4xx with a JSON body, and never panics.

func fuzzControl(f *testing.F, method, path string, seeds ...string) {
	fx := newCtlFixture(f)
	fx.create(f, "fz", nil)
	if resp := fx.do(f, "POST", "/2015-03-31/functions/fz/versions", nil); resp.status != http.StatusCreated {
		f.Fatalf("publish: %d %s", resp.status, resp.body)
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(""))
	f.Add([]byte("null"))
	f.Add([]byte("[]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := fx.do(t, method, path, body)
		if resp.status < 200 || resp.status >= 500 {
			t.Fatalf("status %d for %q: %s", resp.status, body, resp.body)
		}
		if len(resp.body) > 0 && !json.Valid(resp.body) {
			t.Fatalf("response is not JSON: %s", resp.body)
		}
	})
}

func FuzzCreateFunctionBody(f *testing.F) {
	zip := base64.StdEncoding.EncodeToString(ctlZip(f))
	fuzzControl(f, "POST", "/2015-03-31/functions",
		`{"FunctionName":"a","Runtime":"provided.al2023","Handler":"h","Code":{"ZipFile":"`+zip+`"}}`,
		`{"FunctionName":"b","Runtime":"provided","Handler":"h","Code":{"ZipFile":"`+zip+`"},"MemorySize":256,"Timeout":30,"Environment":{"Variables":{"K1":"v"}},"EphemeralStorage":{"Size":1024},"Architectures":["arm64"],"Publish":true}`,
		`{"FunctionName":"arn:aws:lambda:us-east-1:000000000000:function:c","Runtime":"provided.al2","Handler":"h","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}`,
		`{"FunctionName":"d","Code":{"S3Bucket":"b"}}`,
		`{"FunctionName":"e","Runtime":"provided.al2023","Handler":"h","Code":{"ZipFile":"`+zip+`"},"Environment":{"Variables":{"AWS_REGION":"x"}}}`,
	)
}

func FuzzUpdateFunctionConfigurationBody(f *testing.F) {
	fuzzControl(f, "PUT", "/2015-03-31/functions/fz/configuration",
		`{"Timeout":10,"MemorySize":512}`,
		`{"Environment":{"Variables":{"A1":"x"}},"Description":"d","Handler":"bootstrap"}`,
		`{"Environment":{},"RevisionId":"nope"}`,
		`{"Runtime":"provided.al2","EphemeralStorage":{"Size":600},"Role":"arn:aws:iam::000000000000:role/r"}`,
	)
}

func FuzzUpdateFunctionCodeBody(f *testing.F) {
	zip := base64.StdEncoding.EncodeToString(ctlZip(f, "x"))
	fuzzControl(f, "PUT", "/2015-03-31/functions/fz/code",
		`{"ZipFile":"`+zip+`"}`,
		`{"ZipFile":"`+zip+`","Publish":true,"DryRun":true,"Architectures":["x86_64"]}`,
		`{"ZipFile":"UEsDBA=="}`,
	)
}

func FuzzPublishVersionBody(f *testing.F) {
	fuzzControl(f, "POST", "/2015-03-31/functions/fz/versions",
		`{"Description":"v","CodeSha256":"abc","RevisionId":"r"}`,
	)
}

func FuzzCreateAliasBody(f *testing.F) {
	fuzzControl(f, "POST", "/2015-03-31/functions/fz/aliases",
		`{"Name":"live","FunctionVersion":"1"}`,
		`{"Name":"canary","FunctionVersion":"$LATEST","Description":"d"}`,
		`{"Name":"w","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"1":0.5}}}`,
	)
}

func FuzzUpdateAliasBody(f *testing.F) {
	fuzzControl(f, "PUT", "/2015-03-31/functions/fz/aliases/live",
		`{"FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{}}}`,
		`{"Description":"x","RevisionId":"r"}`,
	)
}

func FuzzConcurrencyBody(f *testing.F) {
	fuzzControl(f, "PUT", "/2017-10-31/functions/fz/concurrency",
		`{"ReservedConcurrentExecutions":5}`,
		`{"ReservedConcurrentExecutions":-1}`,
	)
}

func FuzzEventInvokeConfigBody(f *testing.F) {
	fuzzControl(f, "PUT", "/2019-09-25/functions/fz/event-invoke-config",
		`{"MaximumRetryAttempts":1,"MaximumEventAgeInSeconds":60}`,
		`{"DestinationConfig":{"OnSuccess":{"Destination":"arn:aws:sqs:us-east-1:000000000000:q"},"OnFailure":{"Destination":"arn:aws:lambda:us-east-1:000000000000:function:f:1"}}}`,
		`{"DestinationConfig":{"OnFailure":{}}}`,
	)
}

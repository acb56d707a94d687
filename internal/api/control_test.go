package api

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"moat.dev/moat/internal/events/schedule"
	"moat.dev/moat/internal/registry"
	"moat.dev/moat/internal/secrets"
	"moat.dev/moat/internal/store"
)

// ctlAllowAll is an Authenticator that accepts every request.
type ctlAllowAll struct{}

func (ctlAllowAll) Authenticate(*http.Request, []byte) (string, error) { return "AKIDTEST", nil }

// ctlZip builds a deployment package with a bootstrap and extra files.
func ctlZip(t testing.TB, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range append([]string{"bootstrap"}, files...) {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "#!/bin/sh\n# %s\n", name)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type ctlFixture struct {
	reg *registry.Registry
	srv *Server
}

// newCtlFixture serves the API over a real registry on a real embedded
// store.
func newCtlFixture(t testing.TB, mod ...func(*registry.Options)) *ctlFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	keys, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	opts := registry.Options{KV: st.Functions, Code: st.Code, Keys: keys}
	for _, m := range mod {
		m(&opts)
	}
	reg, err := registry.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return &ctlFixture{reg: reg, srv: New(Options{Registry: reg, Auth: ctlAllowAll{},
		Scheduler: &SchedulerOptions{Store: schedule.NewStore(st.Schedules), Auth: ctlAllowAll{}, Region: "us-east-1", AccountID: "000000000000"}})}
}

type ctlResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r ctlResponse) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
	return m
}

// do sends a request; body is sent as is if it is a string or []byte, and
// as JSON otherwise.
func (f *ctlFixture) do(t testing.TB, method, path string, body any) ctlResponse {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return ctlResponse{rec.Code, rec.Header(), rec.Body.Bytes()}
}

func (f *ctlFixture) create(t testing.TB, name string, extra map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{
		"FunctionName": name,
		"Runtime":      "provided.al2023",
		"Role":         "arn:aws:iam::000000000000:role/moat",
		"Handler":      "bootstrap",
		"Code":         map[string]any{"ZipFile": ctlZip(t)},
	}
	for k, v := range extra {
		body[k] = v
	}
	resp := f.do(t, "POST", "/2015-03-31/functions", body)
	if resp.status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", name, resp.status, resp.body)
	}
	return resp.json(t)
}

func TestControlCreateAndGetShapes(t *testing.T) {
	f := newCtlFixture(t)
	zipData := ctlZip(t)
	sum := sha256.Sum256(zipData)
	created := f.create(t, "shapes", map[string]any{
		"Environment": map[string]any{"Variables": map[string]string{"GREETING": "hi"}},
		"Description": "a function",
	})
	want := map[string]any{
		"FunctionName":     "shapes",
		"FunctionArn":      "arn:aws:lambda:us-east-1:000000000000:function:shapes",
		"Runtime":          "provided.al2023",
		"Role":             "arn:aws:iam::000000000000:role/moat",
		"Handler":          "bootstrap",
		"CodeSize":         float64(len(zipData)),
		"Description":      "a function",
		"Timeout":          float64(3),
		"MemorySize":       float64(128),
		"CodeSha256":       base64.StdEncoding.EncodeToString(sum[:]),
		"Version":          "$LATEST",
		"State":            "Active",
		"LastUpdateStatus": "Successful",
		"PackageType":      "Zip",
	}
	for k, v := range want {
		if created[k] != v {
			t.Errorf("%s = %v, want %v", k, created[k], v)
		}
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$`).MatchString(created["LastModified"].(string)) {
		t.Errorf("LastModified = %v", created["LastModified"])
	}
	if fmt.Sprint(created["Environment"]) != "map[Variables:map[GREETING:hi]]" ||
		fmt.Sprint(created["TracingConfig"]) != "map[Mode:PassThrough]" ||
		fmt.Sprint(created["Architectures"]) != "["+registry.HostArchitecture()+"]" ||
		fmt.Sprint(created["EphemeralStorage"]) != "map[Size:512]" {
		t.Errorf("nested shapes: %v %v %v %v", created["Environment"], created["TracingConfig"], created["Architectures"], created["EphemeralStorage"])
	}
	if rid, _ := created["RevisionId"].(string); len(rid) != 36 {
		t.Errorf("RevisionId = %v", created["RevisionId"])
	}

	got := f.do(t, "GET", "/2015-03-31/functions/shapes", nil)
	if got.status != http.StatusOK {
		t.Fatalf("get: %d %s", got.status, got.body)
	}
	m := got.json(t)
	code := m["Code"].(map[string]any)
	if code["RepositoryType"] != "moat" || !strings.HasSuffix(code["Location"].(string), "/moat/v1/code/"+fmt.Sprintf("%x", sum)) {
		t.Errorf("Code = %v", code)
	}
	if _, ok := m["Concurrency"]; ok {
		t.Error("Concurrency reported without a reservation")
	}
	if cfg := m["Configuration"].(map[string]any); cfg["RevisionId"] != created["RevisionId"] {
		t.Errorf("Configuration = %v", cfg)
	}
	if resp := f.do(t, "PUT", "/2017-10-31/functions/shapes/concurrency", `{"ReservedConcurrentExecutions":7}`); resp.status != 200 {
		t.Fatalf("put concurrency: %d %s", resp.status, resp.body)
	}
	m = f.do(t, "GET", "/2015-03-31/functions/shapes", nil).json(t)
	if fmt.Sprint(m["Concurrency"]) != "map[ReservedConcurrentExecutions:7]" {
		t.Errorf("Concurrency = %v", m["Concurrency"])
	}
	// The code location serves the package.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/moat/v1/code/"+fmt.Sprintf("%x", sum), nil)
	req.SetPathValue("sha256", fmt.Sprintf("%x", sum))
	if err := f.srv.control(f.srv.getCode)(rec, req, nil); err != nil || !bytes.Equal(rec.Body.Bytes(), zipData) {
		t.Errorf("getCode: %v, %d bytes", err, rec.Body.Len())
	}
}

func TestControlErrors(t *testing.T) {
	f := newCtlFixture(t)
	f.create(t, "exists", nil)
	valid := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"FunctionName": "new", "Runtime": "provided.al2", "Handler": "h", "Code": map[string]any{"ZipFile": ctlZip(t)}}
		mod(m)
		return m
	}
	const fns = "/2015-03-31/functions"
	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         Code
		message      string
	}{
		{"malformed json", "POST", fns, `{"FunctionName":`, 400, CodeInvalidRequestContent, "Could not parse request body into json"},
		{"wrong type", "POST", fns, `{"FunctionName":"x","Timeout":"3"}`, 400, CodeInvalidRequestContent, "Could not parse request body into json"},
		{"empty body", "POST", fns, "", 400, CodeInvalidRequestContent, "empty"},
		{"trailing data", "POST", fns, `{"FunctionName":"x"} {}`, 400, CodeInvalidRequestContent, "after top-level value"},
		{"trailing brace", "POST", fns, `{"FunctionName":"x"}}`, 400, CodeInvalidRequestContent, "after top-level value"},
		{"bad base64", "POST", fns, `{"FunctionName":"x","Code":{"ZipFile":"%%%"}}`, 400, CodeInvalidRequestContent, ""},
		{"no name", "POST", fns, `{"Code":{}}`, 400, CodeValidation, "Value null at 'functionName'"},
		{"no code", "POST", fns, `{"FunctionName":"x"}`, 400, CodeValidation, "Value null at 'code'"},
		{"s3 code", "POST", fns, valid(func(m map[string]any) { m["Code"] = map[string]any{"S3Bucket": "b", "S3Key": "k"} }), 400, CodeInvalidParameterValue, "moat accepts Code.ZipFile only"},
		{"image", "POST", fns, valid(func(m map[string]any) { m["PackageType"] = "Image" }), 400, CodeInvalidParameterValue, "Code.ZipFile only"},
		{"layers", "POST", fns, valid(func(m map[string]any) { m["Layers"] = []string{"arn:aws:lambda:us-east-1:000000000000:layer:l:1"} }), 400, CodeInvalidParameterValue, "layers"},
		{"runtime", "POST", fns, valid(func(m map[string]any) { m["Runtime"] = "nodejs22.x" }), 400, CodeInvalidParameterValue, "not supported by moat"},
		{"memory", "POST", fns, valid(func(m map[string]any) { m["MemorySize"] = 64 }), 400, CodeValidation, "Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128"},
		{"ephemeral null", "POST", fns, valid(func(m map[string]any) { m["EphemeralStorage"] = map[string]any{} }), 400, CodeValidation, "ephemeralStorage.size"},
		{"reserved env", "POST", fns, valid(func(m map[string]any) {
			m["Environment"] = map[string]any{"Variables": map[string]string{"AWS_SECRET_ACCESS_KEY": "x"}}
		}), 400, CodeInvalidParameterValue, "Reserved keys used in this request: AWS_SECRET_ACCESS_KEY"},
		{"bad zip", "POST", fns, valid(func(m map[string]any) { m["Code"] = map[string]any{"ZipFile": []byte("not a zip")} }), 400, CodeInvalidParameterValue, "Could not unzip uploaded file"},
		{"duplicate", "POST", fns, valid(func(m map[string]any) { m["FunctionName"] = "exists" }), 409, CodeResourceConflict, "Function already exist: exists"},
		{"get missing", "GET", fns + "/nope", nil, 404, CodeResourceNotFound, "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"},
		{"get missing version", "GET", fns + "/exists?Qualifier=4", nil, 404, CodeResourceNotFound, "function:exists:4"},
		{"get bad name", "GET", fns + "/bad%20name", nil, 400, CodeValidation, "functionName"},
		{"qualifier mismatch", "GET", fns + "/exists:1/configuration?Qualifier=2", nil, 400, CodeInvalidParameterValue, "does not match"},
		{"other region", "GET", fns + "/" + url.PathEscape("arn:aws:lambda:eu-west-1:000000000000:function:exists"), nil, 404, CodeResourceNotFound, "Function not found"},
		{"max items 0", "GET", fns + "?MaxItems=0", nil, 400, CodeValidation, "maxItems"},
		{"max items text", "GET", fns + "?MaxItems=ten", nil, 400, CodeValidation, "maxItems"},
		{"max items big", "GET", fns + "?MaxItems=10001", nil, 400, CodeValidation, "maxItems"},
		{"bad marker", "GET", fns + "?Marker=%21%21", nil, 400, CodeInvalidParameterValue, "marker"},
		{"create in a VPC", "POST", fns, []byte(`{"FunctionName":"v","Runtime":"provided.al2023","Role":"r","Handler":"h","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},"VpcConfig":{"SubnetIds":["subnet-1"]}}`), 400, CodeInvalidParameterValue, "Sandbox.Egress"},
		{"list with an unknown FunctionVersion", "GET", fns + "?FunctionVersion=SOME", nil, 400, CodeValidation, "enum value set: [ALL]"},
		{"stale revision", "PUT", fns + "/exists/configuration", `{"RevisionId":"old","Timeout":5}`, 412, CodePreconditionFailed, "Revision Id"},
		{"update missing", "PUT", fns + "/nope/configuration", `{"Timeout":5}`, 404, CodeResourceNotFound, "function:nope"},
		{"update timeout", "PUT", fns + "/exists/configuration", `{"Timeout":901}`, 400, CodeValidation, "'timeout'"},
		{"update code s3", "PUT", fns + "/exists/code", `{"S3Bucket":"b"}`, 400, CodeInvalidParameterValue, "ZipFile only"},
		{"update code none", "PUT", fns + "/exists/code", `{}`, 400, CodeInvalidParameterValue, "source for function code"},
		{"delete latest", "DELETE", fns + "/exists?Qualifier=$LATEST", nil, 400, CodeInvalidParameterValue, "$LATEST version cannot be deleted"},
		{"delete missing", "DELETE", fns + "/nope", nil, 404, CodeResourceNotFound, "function:nope"},
		{"publish bad sha", "POST", fns + "/exists/versions", `{"CodeSha256":"abc"}`, 400, CodeInvalidParameterValue, "CodeSHA256 (abc) is different"},
		{"alias no version", "POST", fns + "/exists/aliases", `{"Name":"a"}`, 400, CodeValidation, "functionVersion"},
		{"alias missing version", "POST", fns + "/exists/aliases", `{"Name":"a","FunctionVersion":"3"}`, 404, CodeResourceNotFound, "function:exists:3"},
		{"alias weighted latest", "POST", fns + "/exists/aliases", `{"Name":"a","FunctionVersion":"$LATEST","RoutingConfig":{"AdditionalVersionWeights":{"1":0.5}}}`, 400, CodeInvalidParameterValue, "$LATEST"},
		{"alias weight type", "POST", fns + "/exists/aliases", `{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"1":"x"}}}`, 400, CodeInvalidRequestContent, ""},
		{"get alias missing", "GET", fns + "/exists/aliases/nope", nil, 404, CodeResourceNotFound, "Alias not found: arn:aws:lambda:us-east-1:000000000000:function:exists:nope"},
		{"concurrency null", "PUT", "/2017-10-31/functions/exists/concurrency", `{}`, 400, CodeValidation, "reservedConcurrentExecutions"},
		{"concurrency negative", "PUT", "/2017-10-31/functions/exists/concurrency", `{"ReservedConcurrentExecutions":-1}`, 400, CodeValidation, "greater than or equal to 0"},
		{"concurrency over", "PUT", "/2017-10-31/functions/exists/concurrency", `{"ReservedConcurrentExecutions":901}`, 400, CodeInvalidParameterValue, "UnreservedConcurrentExecution"},
		{"event retries", "PUT", "/2019-09-25/functions/exists/event-invoke-config", `{"MaximumRetryAttempts":3}`, 400, CodeValidation, "maximumRetryAttempts"},
		{"event destination", "PUT", "/2019-09-25/functions/exists/event-invoke-config", `{"DestinationConfig":{"OnFailure":{"Destination":"arn:aws:sns:us-east-1:000000000000:t"}}}`, 400, CodeInvalidParameterValue, "not supported by moat"},
		{"event missing", "GET", "/2019-09-25/functions/exists/event-invoke-config", nil, 404, CodeResourceNotFound, "doesn't have an EventInvokeConfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(t, tt.method, tt.path, tt.body)
			if resp.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			if got := resp.header.Get("X-Amzn-ErrorType"); got != string(tt.code) {
				t.Errorf("X-Amzn-ErrorType = %q, want %q", got, tt.code)
			}
			m := resp.json(t)
			if m["Type"] != "User" {
				t.Errorf("Type = %v", m["Type"])
			}
			if msg, _ := m["Message"].(string); !strings.Contains(msg, tt.message) {
				t.Errorf("Message = %q, want it to contain %q", msg, tt.message)
			}
		})
	}
}

func TestControlPagination(t *testing.T) {
	f := newCtlFixture(t)
	for i := range 7 {
		f.create(t, fmt.Sprintf("p%02d", 6-i), nil)
	}
	var names []string
	path := "/2015-03-31/functions?MaxItems=3"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		m := f.do(t, "GET", path, nil).json(t)
		for _, fn := range m["Functions"].([]any) {
			names = append(names, fn.(map[string]any)["FunctionName"].(string))
		}
		next, _ := m["NextMarker"].(string)
		if next == "" {
			break
		}
		path = "/2015-03-31/functions?MaxItems=3&Marker=" + url.QueryEscape(next)
	}
	if strings.Join(names, ",") != "p00,p01,p02,p03,p04,p05,p06" {
		t.Errorf("listed %v", names)
	}
	empty := newCtlFixture(t).do(t, "GET", "/2015-03-31/functions", nil)
	if string(bytes.TrimSpace(empty.body)) != `{"Functions":[]}` {
		t.Errorf("empty list = %s", empty.body)
	}
}

func TestControlVersionsAliasesAndARNs(t *testing.T) {
	f := newCtlFixture(t)
	f.create(t, "va", nil)
	const arn = "arn:aws:lambda:us-east-1:000000000000:function:va"
	v1 := f.do(t, "POST", "/2015-03-31/functions/va/versions", nil)
	if v1.status != 201 || v1.json(t)["FunctionArn"] != arn+":1" || v1.json(t)["Version"] != "1" {
		t.Fatalf("publish: %d %s", v1.status, v1.body)
	}
	f.do(t, "PUT", "/2015-03-31/functions/va/configuration", `{"Timeout":9}`)
	if v2 := f.do(t, "POST", "/2015-03-31/functions/va/versions", `{"Description":"two"}`).json(t); v2["Version"] != "2" || v2["Description"] != "two" {
		t.Fatalf("publish 2: %v", v2)
	}
	vs := f.do(t, "GET", "/2015-03-31/functions/va/versions", nil).json(t)["Versions"].([]any)
	if len(vs) != 3 || vs[0].(map[string]any)["FunctionArn"] != arn+":$LATEST" || vs[2].(map[string]any)["FunctionArn"] != arn+":2" {
		t.Errorf("versions = %v", vs)
	}
	a := f.do(t, "POST", "/2015-03-31/functions/"+url.PathEscape(arn)+"/aliases",
		`{"Name":"live","FunctionVersion":"1","Description":"d","RoutingConfig":{"AdditionalVersionWeights":{"2":0.25}}}`)
	if a.status != 201 {
		t.Fatalf("create alias: %d %s", a.status, a.body)
	}
	am := a.json(t)
	if am["AliasArn"] != arn+":live" || am["FunctionVersion"] != "1" || fmt.Sprint(am["RoutingConfig"]) != "map[AdditionalVersionWeights:map[2:0.25]]" {
		t.Errorf("alias = %v", am)
	}
	// The alias qualifies Get: the primary version's configuration under
	// the alias ARN.
	cfg := f.do(t, "GET", "/2015-03-31/functions/va/configuration?Qualifier=live", nil).json(t)
	if cfg["FunctionArn"] != arn+":live" || cfg["Version"] != "1" || cfg["Timeout"] != float64(3) {
		t.Errorf("get alias configuration = %v", cfg)
	}
	// Qualified ARN in the path.
	cfg = f.do(t, "GET", "/2015-03-31/functions/"+url.PathEscape(arn+":2")+"/configuration", nil).json(t)
	if cfg["Version"] != "2" {
		t.Errorf("qualified ARN path = %v", cfg)
	}
	if resp := f.do(t, "DELETE", "/2015-03-31/functions/va?Qualifier=2", nil); resp.status != 409 || resp.header.Get("X-Amzn-ErrorType") != string(CodeResourceConflict) {
		t.Errorf("delete aliased version: %d %s", resp.status, resp.body)
	}
	up := f.do(t, "PUT", "/2015-03-31/functions/va/aliases/live", `{"RoutingConfig":{"AdditionalVersionWeights":{}}}`).json(t)
	if _, ok := up["RoutingConfig"]; ok || up["RevisionId"] == am["RevisionId"] {
		t.Errorf("update alias = %v", up)
	}
	list := f.do(t, "GET", "/2015-03-31/functions/va/aliases?FunctionVersion=1", nil).json(t)
	if len(list["Aliases"].([]any)) != 1 {
		t.Errorf("list aliases = %v", list)
	}
	if resp := f.do(t, "DELETE", "/2015-03-31/functions/va/aliases/live", nil); resp.status != 204 || len(resp.body) != 0 {
		t.Errorf("delete alias: %d %s", resp.status, resp.body)
	}
	if resp := f.do(t, "DELETE", "/2015-03-31/functions/va?Qualifier=2", nil); resp.status != 204 {
		t.Errorf("delete version: %d %s", resp.status, resp.body)
	}
	if resp := f.do(t, "DELETE", "/2015-03-31/functions/va", nil); resp.status != 204 {
		t.Errorf("delete function: %d %s", resp.status, resp.body)
	}
}

func TestControlEventInvokeConfigPutAndUpdate(t *testing.T) {
	f := newCtlFixture(t)
	f.create(t, "ev", nil)
	const path = "/2019-09-25/functions/ev/event-invoke-config"
	const q = "arn:aws:sqs:us-east-1:000000000000:dlq"
	put := f.do(t, "PUT", path, `{"MaximumRetryAttempts":0,"DestinationConfig":{"OnFailure":{"Destination":"`+q+`"}}}`)
	if put.status != 200 {
		t.Fatalf("put: %d %s", put.status, put.body)
	}
	m := put.json(t)
	if m["FunctionArn"] != "arn:aws:lambda:us-east-1:000000000000:function:ev:$LATEST" || m["MaximumRetryAttempts"] != float64(0) ||
		fmt.Sprint(m["DestinationConfig"]) != "map[OnFailure:map[Destination:"+q+"] OnSuccess:map[]]" {
		t.Errorf("put = %s", put.body)
	}
	if _, ok := m["LastModified"].(float64); !ok {
		t.Errorf("LastModified = %v", m["LastModified"])
	}
	// POST merges.
	m = f.do(t, "POST", path, `{"MaximumEventAgeInSeconds":100}`).json(t)
	if m["MaximumRetryAttempts"] != float64(0) || m["MaximumEventAgeInSeconds"] != float64(100) {
		t.Errorf("update = %v", m)
	}
	// PUT replaces.
	m = f.do(t, "PUT", path, `{"MaximumEventAgeInSeconds":200}`).json(t)
	if _, ok := m["MaximumRetryAttempts"]; ok || fmt.Sprint(m["DestinationConfig"]) != "map[OnFailure:map[] OnSuccess:map[]]" {
		t.Errorf("put replace = %v", m)
	}
	if tg, _ := f.reg.Resolve("ev", ""); tg.Async.MaximumEventAgeInSeconds != 200 || tg.Async.MaximumRetryAttempts != 2 {
		t.Errorf("Target.Async = %+v", tg.Async)
	}
	if resp := f.do(t, "DELETE", path, nil); resp.status != 204 {
		t.Errorf("delete: %d", resp.status)
	}
	if resp := f.do(t, "GET", path, nil); resp.status != 404 {
		t.Errorf("get after delete: %d", resp.status)
	}
}

func TestControlEnvironmentNotShownWithWrongKey(t *testing.T) {
	// A record this node's key cannot open is reported, not fatal.
	f := newCtlFixture(t)
	f.create(t, "enc", map[string]any{"Environment": map[string]any{"Variables": map[string]string{"K1": "v"}}})
	info, err := f.reg.Get("enc", "")
	if err != nil {
		t.Fatal(err)
	}
	c := *info.Config
	c.FunctionName = "elsewhere" // the sealed blob is bound to "enc"
	fc := f.srv.functionConfiguration(&c, "arn")
	if fc.Environment == nil || fc.Environment.Error == nil || fc.Environment.Variables != nil {
		t.Errorf("Environment = %+v", fc.Environment)
	}
}

func TestRegistryErrorMapping(t *testing.T) {
	f := newCtlFixture(t)
	_, err := f.reg.Resolve("missing", "")
	var e *Error
	if mapped := registryError(err); !asError(mapped, &e) || e.Code != CodeResourceNotFound || e.Message != err.Error() {
		t.Errorf("not found mapped to %v", mapped)
	}
	if registryError(nil) != nil {
		t.Error("nil mapped to an error")
	}
	plain := fmt.Errorf("kv down")
	if registryError(plain) != plain {
		t.Error("a platform error was given an API code")
	}
}

func asError(err error, e **Error) bool {
	v, ok := err.(*Error)
	*e = v
	return ok
}

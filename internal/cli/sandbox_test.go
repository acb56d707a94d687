package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withSandbox is fnConfig's function with a Sandbox field of sb's JSON.
func withSandbox(name, sb string) string {
	c := fmt.Sprintf(fnConfig, name, 128)
	return strings.TrimSuffix(c, "}") + `,"RevisionId":"rev-7","Sandbox":` + sb + `}`
}

const pinnedSandbox = `{"Ephemeral":"per-invocation","Egress":["198.51.100.0/24:443","api.example.com:443"],` +
	`"Resolved":["198.51.100.0/24:443","203.0.113.7:443","[2001:db8::5]:443"],` +
	`"Hosts":{"api.example.com":["203.0.113.7","2001:db8::5"]}}`

// sandboxEcho answers a sandbox update with the function configured as the
// body asked (unpinned); any other configuration update with fnConfig.
func sandboxEcho(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req struct{ Sandbox json.RawMessage }
	if json.Unmarshal(b, &req) == nil && req.Sandbox != nil {
		reply(200, withSandbox("hello", string(req.Sandbox)))(w, r)
		return
	}
	reply(200, fmt.Sprintf(fnConfig, "hello", 512))(w, r)
}

func TestDeploySandbox(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	const (
		getConfig = "GET /2015-03-31/functions/hello/configuration"
		create    = "POST /2015-03-31/functions"
		putCode   = "PUT /2015-03-31/functions/hello/code"
		putConfig = "PUT /2015-03-31/functions/hello/configuration"
	)
	tests := []struct {
		name     string
		exists   string // the current configuration, "" for a new function
		args     []string
		calls    []string
		wantBody string // of the last request, exactly
		wantOut  string
	}{
		{name: "new with grants and per-invocation",
			args:     []string{"--egress", "198.51.100.0/24:443", "--egress", "api.example.com:443", "--ephemeral", "per-invocation"},
			calls:    []string{getConfig, create, putConfig},
			wantBody: `{"Sandbox":{"Ephemeral":"per-invocation","Mode":"","OnDenial":"","Egress":["198.51.100.0/24:443","api.example.com:443"]}}`,
			wantOut: "created hello (42 bytes, sha256 c29tZQ==)\n" +
				"sandbox: ephemeral per-invocation; mode monitor; on denial report; egress 198.51.100.0/24:443; api.example.com:443\n"},
		{name: "new with egress none",
			args:     []string{"--egress", "none"},
			calls:    []string{getConfig, create, putConfig},
			wantBody: `{"Sandbox":{"Ephemeral":"","Mode":"","OnDenial":"","Egress":[]}}`,
			wantOut:  "created hello (42 bytes, sha256 c29tZQ==)\nsandbox: ephemeral reuse; mode monitor; on denial report; egress none\n"},
		{name: "new with only ephemeral",
			args:     []string{"--ephemeral", "per-invocation"},
			calls:    []string{getConfig, create, putConfig},
			wantBody: `{"Sandbox":{"Ephemeral":"per-invocation","Mode":"","OnDenial":"","Egress":[]}}`,
			wantOut:  "created hello (42 bytes, sha256 c29tZQ==)\nsandbox: ephemeral per-invocation; mode monitor; on denial report; egress none\n"},
		{name: "existing with both and another flag",
			exists:   withSandbox("hello", pinnedSandbox),
			args:     []string{"--memory", "512", "--ephemeral", "reuse", "--egress", "none"},
			calls:    []string{getConfig, getConfig, putConfig, putCode, putConfig},
			wantBody: `{"Sandbox":{"Ephemeral":"","Mode":"","OnDenial":"","Egress":[]},"RevisionId":"rev-7"}`,
			wantOut:  "updated hello (42 bytes, sha256 c29tZQ==)\nsandbox: ephemeral reuse; mode monitor; on denial report; egress none\n"},
		{name: "existing keeps its grants",
			exists:   withSandbox("hello", pinnedSandbox),
			args:     []string{"--ephemeral", "reuse"},
			calls:    []string{getConfig, getConfig, putConfig, putCode},
			wantBody: `{"Sandbox":{"Ephemeral":"","Mode":"","OnDenial":"","Egress":["198.51.100.0/24:443","api.example.com:443"]},"RevisionId":"rev-7"}`,
			wantOut: "updated hello (42 bytes, sha256 c29tZQ==)\n" +
				"sandbox: ephemeral reuse; mode monitor; on denial report; egress 198.51.100.0/24:443; api.example.com:443\n"},
		{name: "existing keeps per-invocation",
			exists:   withSandbox("hello", pinnedSandbox),
			args:     []string{"--egress", "[2001:db8::1]:8000-8100/udp"},
			calls:    []string{getConfig, getConfig, putConfig, putCode},
			wantBody: `{"Sandbox":{"Ephemeral":"per-invocation","Mode":"","OnDenial":"","Egress":["[2001:db8::1]:8000-8100/udp"]},"RevisionId":"rev-7"}`,
			wantOut: "updated hello (42 bytes, sha256 c29tZQ==)\n" +
				"sandbox: ephemeral per-invocation; mode monitor; on denial report; egress [2001:db8::1]:8000-8100/udp\n"},
		{name: "existing turns on enforce mode",
			exists:   withSandbox("hello", pinnedSandbox),
			args:     []string{"--mode", "enforce"},
			calls:    []string{getConfig, getConfig, putConfig, putCode},
			wantBody: `{"Sandbox":{"Ephemeral":"per-invocation","Mode":"enforce","OnDenial":"","Egress":["198.51.100.0/24:443","api.example.com:443"]},"RevisionId":"rev-7"}`,
			wantOut: "updated hello (42 bytes, sha256 c29tZQ==)\n" +
				"sandbox: ephemeral per-invocation; mode enforce; on denial report; egress 198.51.100.0/24:443; api.example.com:443\n"},
		{name: "existing turns on recycle and keeps the rest",
			exists:   withSandbox("hello", pinnedSandbox),
			args:     []string{"--on-denial", "recycle"},
			calls:    []string{getConfig, getConfig, putConfig, putCode},
			wantBody: `{"Sandbox":{"Ephemeral":"per-invocation","Mode":"","OnDenial":"recycle","Egress":["198.51.100.0/24:443","api.example.com:443"]},"RevisionId":"rev-7"}`,
			wantOut: "updated hello (42 bytes, sha256 c29tZQ==)\n" +
				"sandbox: ephemeral per-invocation; mode monitor; on denial recycle; egress 198.51.100.0/24:443; api.example.com:443\n"},
		{name: "existing without a sandbox",
			exists:   fmt.Sprintf(fnConfig, "hello", 128),
			args:     []string{"--ephemeral", "per-invocation"},
			calls:    []string{getConfig, getConfig, putConfig, putCode},
			wantBody: `{"Sandbox":{"Ephemeral":"per-invocation","Mode":"","OnDenial":"","Egress":[]}}`,
			wantOut:  "updated hello (42 bytes, sha256 c29tZQ==)\nsandbox: ephemeral per-invocation; mode monitor; on denial report; egress none\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMoat(t)
			if tt.exists == "" {
				f.handle(getConfig, awsError(404, "ResourceNotFoundException", "Function not found: hello"))
			} else {
				f.handle(getConfig, reply(200, tt.exists))
			}
			f.handle(create, reply(201, fmt.Sprintf(fnConfig, "hello", 128)))
			f.handle(putCode, reply(200, fmt.Sprintf(fnConfig, "hello", 128)))
			f.handle(putConfig, sandboxEcho)
			r := f.run(t, append([]string{"deploy", "hello", dir}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if r.stdout != tt.wantOut {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantOut)
			}
			reqs := f.wantCalls(t, tt.calls...)
			// The sandbox body is the first configuration update.
			last := reqs[len(reqs)-1]
			for _, r := range reqs {
				if r.method+" "+r.path == putConfig {
					last = r
					break
				}
			}
			if string(last.body) != tt.wantBody {
				t.Errorf("sandbox body %s, want %s", last.body, tt.wantBody)
			}
			if ct := last.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if len(reqs) == 5 && reqs[4].method == "PUT" {
				if body := decodeBody(t, reqs[4]); body["MemorySize"] != 512.0 || body["Sandbox"] != nil {
					t.Errorf("configuration body %v, want MemorySize without Sandbox", body)
				}
			}
		})
	}
}

func TestDeploySandboxJSON(t *testing.T) {
	f := newFakeMoat(t)
	f.handle("GET /2015-03-31/functions/hello/configuration", awsError(404, "ResourceNotFoundException", "Function not found: hello"))
	f.handle("POST /2015-03-31/functions", reply(201, fmt.Sprintf(fnConfig, "hello", 128)))
	f.handle("PUT /2015-03-31/functions/hello/configuration", reply(200, withSandbox("hello", pinnedSandbox)))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	r := f.run(t, "deploy", "hello", dir, "--egress", "api.example.com:443", "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var v functionView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Sandbox == nil ||
		fmt.Sprint(v.Sandbox.Resolved) != "[198.51.100.0/24:443 203.0.113.7:443 [2001:db8::5]:443]" {
		t.Errorf("json output %q: %v", r.stdout, err)
	}
}

func TestDeploySandboxRefused(t *testing.T) {
	const refusal = `Sandbox.Egress entry "198.51.100.0/33:443": grant "198.51.100.0/33:443": invalid CIDR`
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	tests := []struct {
		name    string
		exists  bool
		wantErr string
	}{
		{"new function", false, "moat: UpdateFunctionConfiguration: InvalidParameterValueException: " + refusal + "\n" +
			"moat: deploy: function hello was not created: its sandbox settings were refused\n"},
		{"existing function", true, "moat: UpdateFunctionConfiguration: InvalidParameterValueException: " + refusal + "\n" +
			"moat: deploy: function hello was not changed: its sandbox settings were refused, so neither its code nor its configuration was updated\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMoat(t)
			calls := []string{"GET /2015-03-31/functions/hello/configuration"}
			if tt.exists {
				f.handle("GET /2015-03-31/functions/hello/configuration", reply(200, fmt.Sprintf(fnConfig, "hello", 128)))
				// The function's current sandbox is read back, so that
				// settings not given (--mode) are kept; the refusal
				// comes before the code is touched.
				calls = append(calls, "GET /2015-03-31/functions/hello/configuration", "PUT /2015-03-31/functions/hello/configuration")
			} else {
				f.handle("GET /2015-03-31/functions/hello/configuration", awsError(404, "ResourceNotFoundException", "Function not found: hello"))
				f.handle("POST /2015-03-31/functions", reply(201, fmt.Sprintf(fnConfig, "hello", 128)))
				f.handle("DELETE /2015-03-31/functions/hello", reply(204, ""))
				// Created, refused, deleted again.
				calls = append(calls, "POST /2015-03-31/functions", "PUT /2015-03-31/functions/hello/configuration", "DELETE /2015-03-31/functions/hello")
			}
			f.handle("PUT /2015-03-31/functions/hello/configuration", awsError(400, "InvalidParameterValueException", refusal))

			r := f.run(t, "deploy", "hello", dir, "--egress", "198.51.100.0/33:443", "--ephemeral", "per-invocation")
			if r.code != 1 || r.stderr != tt.wantErr || r.stdout != "" {
				t.Errorf("exit %d stdout %q stderr:\n%s\nwant 1 and:\n%s", r.code, r.stdout, r.stderr, tt.wantErr)
			}
			f.wantCalls(t, calls...)
		})
	}
}

func getResponse(sandbox, isolation string) string {
	return `{"Configuration":` + strings.TrimSuffix(fmt.Sprintf(fnConfig, "hello", 256), "}") +
		`,"Description":"greets","State":"Active","RevisionId":"rev-7","EphemeralStorage":{"Size":512},` +
		`"Environment":{"Variables":{"B":"secret-b","A":"secret-a"}}` + sandbox + `},` +
		`"Code":{"RepositoryType":"moat","Location":"http://127.0.0.1:9000/moat/v1/code/abc"},` +
		`"Concurrency":{"ReservedConcurrentExecutions":5}` + isolation + `}`
}

func TestGet(t *testing.T) {
	full := getResponse(`,"Sandbox":`+pinnedSandbox,
		`,"Isolation":{"applied":{"seccomp":true,"landlockABI":4,"userNamespace":true},"missing":{"cgroups":"no memory or pids controller"}}`)
	tests := []struct {
		name    string
		args    []string
		body    string
		wantOut string
		wantQ   string
	}{
		{name: "text", args: nil, body: full, wantOut: `FunctionName:        hello
FunctionArn:         arn:aws:lambda:us-east-1:000000000000:function:hello
Version:             $LATEST
Runtime:             provided.al2023
Handler:             bootstrap
Description:         greets
MemorySize:          256 MB
Timeout:             3 s
EphemeralStorage:    512 MB
CodeSize:            42 bytes
CodeSha256:          c29tZQ==
LastModified:        2026-01-02T03:04:05.000+0000
State:               Active
RevisionId:          rev-7
Environment:         A, B (values: --output json)
ReservedConcurrency: 5
Sandbox:
  Ephemeral: per-invocation
  Mode:      monitor
  OnDenial:  report
  Egress:    198.51.100.0/24:443
             api.example.com:443 -> 203.0.113.7, 2001:db8::5
  Resolved:  198.51.100.0/24:443
             203.0.113.7:443
             [2001:db8::5]:443
Isolation:
  applied.landlockABI: 4
  applied.seccomp: true
  applied.userNamespace: true
  missing.cgroups: no memory or pids controller
`},
		{name: "text defaults, qualifier", args: []string{"--qualifier", "live"},
			body: getResponse("", `,"Isolation":{"applied":{"seccomp":true},"missing":{}}`), wantQ: "Qualifier=live",
			wantOut: "Sandbox:\n  Ephemeral: reuse\n  Mode:      monitor\n  OnDenial:  report\n  Egress:    none\nIsolation:\n  applied.seccomp: true\n  missing: none\n"},
		{name: "no isolation report", body: getResponse("", ""),
			wantOut: "Isolation:\n  not reported\n"},
		{name: "json", args: []string{"--output", "json"}, body: full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMoat(t)
			f.handle("GET /2015-03-31/functions/hello", reply(200, tt.body))
			r := f.run(t, append([]string{"get", "hello"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if tt.name == "json" {
				var got, want any
				if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
					t.Fatalf("json output %q: %v", r.stdout, err)
				}
				json.Unmarshal([]byte(tt.body), &want)
				if fmt.Sprint(got) != fmt.Sprint(want) || !strings.HasSuffix(r.stdout, "}\n") {
					t.Errorf("json output %s, want the response as sent", r.stdout)
				}
			} else if !strings.HasSuffix(r.stdout, tt.wantOut) {
				t.Errorf("stdout:\n%s\nwant it to end:\n%s", r.stdout, tt.wantOut)
			}
			if strings.Contains(r.stdout, "secret-") && tt.name != "json" {
				t.Errorf("text output shows environment values:\n%s", r.stdout)
			}
			reqs := f.wantCalls(t, "GET /2015-03-31/functions/hello")
			if q := strings.TrimPrefix(strings.TrimPrefix(reqs[0].uri, reqs[0].path), "?"); q != tt.wantQ {
				t.Errorf("query %q, want %q", q, tt.wantQ)
			}
		})
	}
}

func TestGetError(t *testing.T) {
	f := newFakeMoat(t)
	f.handle("GET /2015-03-31/functions/ghost", awsError(404, "ResourceNotFoundException", "Function not found: ghost"))
	r := f.run(t, "get", "ghost")
	if r.code != 1 || r.stderr != "moat: GetFunction: ResourceNotFoundException: Function not found: ghost\n" || r.stdout != "" {
		t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	f.requests(t) // signature check
}

func TestListEgressColumn(t *testing.T) {
	f := newFakeMoat(t)
	f.handle("GET /2015-03-31/functions", reply(200, `{"Functions":[`+
		withSandbox("a", pinnedSandbox)+`,`+fmt.Sprintf(fnConfig, "b", 128)+`]}`))
	r := f.run(t, "ls")
	want := "NAME  RUNTIME          MEMORY  TIMEOUT  CODE SIZE  LAST MODIFIED                 EGRESS\n" +
		"a     provided.al2023  128 MB  3 s      42         2026-01-02T03:04:05.000+0000  2\n" +
		"b     provided.al2023  128 MB  3 s      42         2026-01-02T03:04:05.000+0000  0\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d stdout:\n%s\nwant:\n%s(stderr %q)", r.code, r.stdout, want, r.stderr)
	}
	r = f.run(t, "ls", "--output", "json")
	var out struct{ Functions []functionView }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Functions) != 2 ||
		out.Functions[0].Sandbox == nil || out.Functions[0].Sandbox.Ephemeral != "per-invocation" {
		t.Errorf("json %q: %v", r.stdout, err)
	}
	f.wantCalls(t, "GET /2015-03-31/functions", "GET /2015-03-31/functions")
}

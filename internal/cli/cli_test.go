package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// result is what one run of the command line produced.
type result struct {
	code           int
	stdout, stderr string
}

// testApp is an app wired to buffers and a fixed environment.
func testApp(env map[string]string, stdin string) (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	a := &app{
		stdin:    strings.NewReader(stdin),
		stdout:   &out,
		stderr:   &errb,
		getenv:   func(k string) string { return env[k] },
		examples: fstest.MapFS{},
	}
	return a, &out, &errb
}

func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return runIn(t, env, "", args...)
}

func runIn(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	a, out, errb := testApp(env, stdin)
	code := a.main(context.Background(), args)
	return result{code, out.String(), errb.String()}
}

func TestTopLevelHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := run(t, nil, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d", args, r.code)
		}
		for _, c := range commands {
			if !strings.Contains(r.stdout, "\n  "+c.name+" ") {
				t.Errorf("%v: help does not list %s:\n%s", args, c.name, r.stdout)
			}
		}
	}
	r := run(t, nil)
	if r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no arguments: exit %d, stderr %q; want 2 and the help", r.code, r.stderr)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			if c.summary == "" || strings.TrimSpace(c.help) == "" || c.group == "" {
				t.Errorf("%s lacks a summary, help text or group", c.name)
			}
			for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
				r := run(t, nil, args...)
				if r.code != 0 || r.stderr != "" {
					t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
				}
				if !strings.HasPrefix(r.stdout, "Usage: moat "+c.name) {
					t.Errorf("%v: help starts %q", args, firstLine(r.stdout))
				}
			}
			r := run(t, nil, c.name, "-h")
			if c.name != "version" && !strings.Contains(r.stdout, "\nFlags:\n  --") {
				t.Errorf("%s help lists no flags:\n%s", c.name, r.stdout)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"help for unknown command", []string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"ls", "--frob"}, "flag provided but not defined: --frob"},
		{"bad flag value", []string{"deploy", "f", ".", "--memory", "lots"}, `invalid value "lots"`},
		{"missing argument", []string{"invoke"}, "missing arguments"},
		{"extra argument", []string{"ls", "extra"}, `unexpected argument "extra"`},
		{"bad output", []string{"ls", "--output", "yaml"}, "--output must be text or json"},
		{"bad env", []string{"deploy", "f", ".", "--env", "NOVALUE"}, `"NOVALUE" is not KEY=VALUE`},
		{"bad payload", []string{"invoke", "f", "--payload", "{nope"}, "--payload: invalid JSON"},
		{"async and dry run", []string{"invoke", "f", "--async", "--dry-run"}, "exclude each other"},
		{"alias op", []string{"alias", "f", "frob"}, `unknown alias operation "frob"`},
		{"alias create without version", []string{"alias", "f", "create", "live"}, "needs --version"},
		{"url auth", []string{"url", "f", "--auth", "open"}, "--auth must be none or iam"},
		{"url delete and set", []string{"url", "f", "--delete", "--auth", "none"}, "--delete takes no other settings"},
		{"url cors without auth", []string{"url", "f", "--cors-origin", "*"}, "go with --auth"},
		{"concurrency N", []string{"concurrency", "f", "many"}, "N must be a whole number"},
		{"concurrency N and delete", []string{"concurrency", "f", "3", "--delete"}, "not both"},
		{"async-config delete and set", []string{"async-config", "f", "--delete", "--max-retries", "1"}, "--delete takes no other settings"},
		{"async-config retries", []string{"async-config", "f", "--max-retries", "5"}, "--max-retries must be"},
		{"logs since", []string{"logs", "f", "--since", "yesterday"}, "--since"},
		{"sandbox pool", []string{"up", "--sandbox-pool", "-1"}, "--sandbox-pool must be between 0 and 1000"},
		{"deploy not a zip", []string{"deploy", "f", "cli.go"}, "neither a directory nor a zip"},
		{"deploy missing path", []string{"deploy", "f", "does-not-exist"}, "does-not-exist"},
		{"up log level", []string{"up", "--log-level", "loud"}, "--log-level"},
		{"bad endpoint", []string{"ls", "--endpoint", "ftp://x"}, "not an http or https URL"},
		{"bad ephemeral", []string{"deploy", "f", ".", "--ephemeral", "always"}, `--ephemeral must be per-invocation or reuse, not "always"`},
		{"bad mode", []string{"deploy", "f", ".", "--mode", "audit"}, `--mode must be monitor or enforce, not "audit"`},
		{"bad on-denial", []string{"deploy", "f", ".", "--on-denial", "kill"}, `--on-denial must be report or recycle, not "kill"`},
		{"egress none and a grant", []string{"deploy", "f", ".", "--egress", "none", "--egress", "10.0.0.1:443"}, "none cannot be combined with grants"},
		{"empty egress", []string{"deploy", "f", ".", "--egress", " "}, "empty grant"},
		{"get without name", []string{"get"}, "missing arguments"},
	}
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "MOAT_DATA_DIR": "/nonexistent"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, env, tt.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

func TestParseIntersperse(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantMem int
	}{
		{[]string{"fn", "dir", "--memory", "256"}, []string{"fn", "dir"}, 256},
		{[]string{"--memory", "256", "fn", "dir"}, []string{"fn", "dir"}, 256},
		{[]string{"fn", "--memory=256", "dir"}, []string{"fn", "dir"}, 256},
		{[]string{"fn", "--", "--memory"}, []string{"fn", "--memory"}, 0},
		{[]string{"-", "x"}, []string{"-", "x"}, 0},
	}
	for _, tt := range tests {
		a, _, _ := testApp(nil, "")
		c := &cmdCtx{app: a, cmd: deployCommand, args: tt.args}
		c.fs = newFlagSet("t")
		mem := c.fs.Int("memory", 0, "")
		pos, err := c.parse()
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if strings.Join(pos, " ") != strings.Join(tt.wantPos, " ") || *mem != tt.wantMem {
			t.Errorf("%v: positional %q memory %d, want %q %d", tt.args, pos, *mem, tt.wantPos, tt.wantMem)
		}
	}
}

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"MOAT_DATA_DIR wins", map[string]string{"MOAT_DATA_DIR": "/d", "XDG_DATA_HOME": "/x", "HOME": "/h"}, "/d"},
		{"XDG_DATA_HOME", map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/moat"},
		{"relative XDG_DATA_HOME is ignored", map[string]string{"XDG_DATA_HOME": "x", "HOME": "/h"}, "/h/.local/share/moat"},
		{"HOME", map[string]string{"HOME": "/h"}, "/h/.local/share/moat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultDataDir(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func writeCredentials(t *testing.T, dir string, profiles map[string][2]string) {
	t.Helper()
	var b strings.Builder
	for name, k := range profiles {
		b.WriteString("[" + name + "]\naws_access_key_id = " + k[0] + "\naws_secret_access_key = " + k[1] + "\n\n")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestResolveClient(t *testing.T) {
	withFile := t.TempDir()
	writeCredentials(t, withFile, map[string][2]string{"moat": {"AKMOAT", "SKMOAT"}, "other": {"AKOTHER", "SKOTHER"}})
	xdg := t.TempDir()
	writeCredentials(t, filepath.Join(xdg, "moat"), map[string][2]string{"moat": {"AKXDG", "SKXDG"}})
	empty := t.TempDir()
	awsEnv := map[string]string{"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "SKENV", "AWS_SESSION_TOKEN": "TOK"}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}

	tests := []struct {
		name                string
		env                 map[string]string
		flags               clientFlags
		wantKey, wantToken  string
		wantEndpoint        string
		wantRegion, wantErr string
	}{
		{name: "file profile beats env keys", env: merge(awsEnv, map[string]string{"MOAT_DATA_DIR": withFile}),
			wantKey: "AKMOAT", wantEndpoint: defaultEndpoint, wantRegion: "us-east-1"},
		{name: "--data-dir beats MOAT_DATA_DIR", env: map[string]string{"MOAT_DATA_DIR": empty},
			flags: clientFlags{dataDir: withFile}, wantKey: "AKMOAT", wantEndpoint: defaultEndpoint, wantRegion: "us-east-1"},
		{name: "XDG data dir", env: map[string]string{"XDG_DATA_HOME": xdg},
			wantKey: "AKXDG", wantEndpoint: defaultEndpoint, wantRegion: "us-east-1"},
		{name: "MOAT_PROFILE", env: map[string]string{"MOAT_DATA_DIR": withFile, "MOAT_PROFILE": "other"},
			wantKey: "AKOTHER", wantEndpoint: defaultEndpoint, wantRegion: "us-east-1"},
		{name: "--profile beats MOAT_PROFILE", env: map[string]string{"MOAT_DATA_DIR": withFile, "MOAT_PROFILE": "nope"},
			flags: clientFlags{profile: "other"}, wantKey: "AKOTHER", wantEndpoint: defaultEndpoint, wantRegion: "us-east-1"},
		{name: "missing profile", env: map[string]string{"MOAT_DATA_DIR": withFile},
			flags: clientFlags{profile: "ghost"}, wantErr: `no profile "ghost"`},
		{name: "no file: env keys", env: merge(awsEnv, map[string]string{"MOAT_DATA_DIR": empty}),
			wantKey: "AKENV", wantToken: "TOK", wantEndpoint: defaultEndpoint, wantRegion: "us-east-1"},
		{name: "no file, no env", env: map[string]string{"MOAT_DATA_DIR": empty}, wantErr: "no credentials"},
		{name: "MOAT_ENDPOINT and AWS_REGION", env: merge(awsEnv, map[string]string{
			"MOAT_DATA_DIR": empty, "MOAT_ENDPOINT": "http://10.0.0.1:9000/", "AWS_REGION": "eu-west-1"}),
			wantKey: "AKENV", wantToken: "TOK", wantEndpoint: "http://10.0.0.1:9000", wantRegion: "eu-west-1"},
		{name: "flags beat env", env: merge(awsEnv, map[string]string{
			"MOAT_DATA_DIR": empty, "MOAT_ENDPOINT": "http://10.0.0.1:9000", "AWS_REGION": "eu-west-1"}),
			flags:   clientFlags{endpoint: "moat.internal:443", region: "ap-south-1"},
			wantKey: "AKENV", wantToken: "TOK", wantEndpoint: "http://moat.internal:443", wantRegion: "ap-south-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := resolveClient(func(k string) string { return tt.env[k] }, tt.flags)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Creds.AccessKeyID != tt.wantKey || cfg.Creds.SessionToken != tt.wantToken ||
				cfg.Endpoint != tt.wantEndpoint || cfg.Region != tt.wantRegion {
				t.Errorf("got key %q token %q endpoint %q region %q", cfg.Creds.AccessKeyID, cfg.Creds.SessionToken, cfg.Endpoint, cfg.Region)
			}
		})
	}
}

func TestReadPayload(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "event.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte(`{"from":"file"}`), 0o600)
	os.WriteFile(bad, []byte(`{"from":`), 0o600)
	tests := []struct {
		name, arg, stdin, want string
		usage                  bool
	}{
		{name: "inline object", arg: `{"a":1}`, want: `{"a":1}`},
		{name: "inline string", arg: `"hi"`, want: `"hi"`},
		{name: "inline number", arg: `42`, want: `42`},
		{name: "file", arg: "@" + good, want: `{"from":"file"}`},
		{name: "stdin", arg: "-", stdin: "[1, 2]\n", want: "[1, 2]\n"},
		{name: "invalid inline", arg: `{a:1}`, usage: true},
		{name: "two values", arg: `{} {}`, usage: true},
		{name: "empty", arg: ``, usage: true},
		{name: "invalid file", arg: "@" + bad, usage: true},
		{name: "missing file", arg: "@" + filepath.Join(dir, "nope.json"), usage: true},
		{name: "invalid stdin", arg: "-", stdin: "not json", usage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := readPayload(tt.arg, strings.NewReader(tt.stdin))
			var ue *usageError
			if tt.usage {
				if !errors.As(err, &ue) {
					t.Fatalf("err %v, want a usage error", err)
				}
				return
			}
			if err != nil || string(b) != tt.want {
				t.Fatalf("got %q, %v; want %q", b, err, tt.want)
			}
		})
	}
}

func TestEnvFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]string
		err  string
	}{
		{"one", []string{"A=1"}, map[string]string{"A": "1"}, ""},
		{"value with =", []string{"URL=a=b=c"}, map[string]string{"URL": "a=b=c"}, ""},
		{"empty value", []string{"EMPTY="}, map[string]string{"EMPTY": ""}, ""},
		{"several", []string{"A=1", "B_2=x y"}, map[string]string{"A": "1", "B_2": "x y"}, ""},
		{"no =", []string{"A"}, nil, "not KEY=VALUE"},
		{"empty key", []string{"=1"}, nil, "not a valid variable name"},
		{"digit first", []string{"1A=1"}, nil, "not a valid variable name"},
		{"dash", []string{"A-B=1"}, nil, "not a valid variable name"},
		{"twice", []string{"A=1", "A=2"}, nil, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e envFlag
			var err error
			for _, a := range tt.args {
				if err = e.Set(a); err != nil {
					break
				}
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || len(e.vars) != len(tt.want) {
				t.Fatalf("got %v, %v", e.vars, err)
			}
			for k, v := range tt.want {
				if e.vars[k] != v {
					t.Errorf("%s = %q, want %q", k, e.vars[k], v)
				}
			}
		})
	}
}

func TestEgressFlag(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		grants []string
		err    string
	}{
		{"grants kept as given", []string{"198.51.100.0/24:443", " api.example.com:443/tcp "}, []string{"198.51.100.0/24:443", "api.example.com:443/tcp"}, ""},
		{"not checked here", []string{"10.0.0.0/33:99999"}, []string{"10.0.0.0/33:99999"}, ""},
		{"none", []string{"none"}, []string{}, ""},
		{"none twice", []string{"none", "none"}, []string{}, ""},
		{"none after a grant", []string{"10.0.0.1:443", "none"}, nil, "none cannot be combined"},
		{"a grant after none", []string{"none", "10.0.0.1:443"}, nil, "none cannot be combined"},
		{"empty", []string{""}, nil, "empty grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e egressFlag
			var err error
			for _, a := range tt.args {
				if err = e.Set(a); err != nil {
					break
				}
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !e.set || strings.Join(e.grants, " ") != strings.Join(tt.grants, " ") {
				t.Errorf("got %+v, %v; want grants %q", e, err, tt.grants)
			}
		})
	}
}

func TestWeightFlag(t *testing.T) {
	var w weightFlag
	if err := w.Set("2=0.25"); err != nil || w.weights["2"] != 0.25 {
		t.Fatalf("2=0.25: %v %v", w.weights, err)
	}
	for _, bad := range []string{"2", "=0.1", "2=1.5", "2=-0.1", "2=x"} {
		if err := w.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := formatWeights(&routingConfig{AdditionalVersionWeights: map[string]float64{"3": 0.1, "2": 0.05}}); got != "2=5%, 3=10%" {
		t.Errorf("formatWeights = %q", got)
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9000": "127.0.0.1:9000",
		"0.0.0.0:9000":   "127.0.0.1:9000",
		"[::]:9000":      "[::1]:9000",
		"10.1.2.3:80":    "10.1.2.3:80",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVersion(t *testing.T) {
	r := run(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "moat ") {
		t.Errorf("version: %d %q", r.code, r.stdout)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

package credentials

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
)

var (
	accessKeyIDShape = regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	secretShape      = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
)

const (
	fileSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	moatFile   = "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = other\n\n" +
		"[moat]\naws_access_key_id = AKIAMOAT\naws_secret_access_key = " + fileSecret + "\n"
)

func TestEnsureCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "moat")
	path := filepath.Join(dir, "credentials")

	k, err := Ensure(path)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !accessKeyIDShape.MatchString(k.AccessKeyID) || !secretShape.MatchString(k.SecretAccessKey) {
		t.Fatalf("generated key has the wrong shape: id %q, secret of %d chars", k.AccessKeyID, len(k.SecretAccessKey))
	}
	for p, want := range map[string]fs.FileMode{path: 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %04o, want %04o", p, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the credentials file", len(entries))
	}

	profiles, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := map[string]Key{Profile: k}; !maps.Equal(profiles, want) {
		t.Fatalf("Load = %v, want %v", profiles, want)
	}

	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Ensure(path)
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if again != k || !bytes.Equal(before, after) {
		t.Fatalf("second Ensure changed the key or the file")
	}
}

func TestEnsureGeneratesDistinctKeys(t *testing.T) {
	dir := t.TempDir()
	a, err := Ensure(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Ensure(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKeyID == b.AccessKeyID || a.SecretAccessKey == b.SecretAccessKey {
		t.Fatalf("two generated keys share a part: %q, %q", a.AccessKeyID, b.AccessKeyID)
	}
}

func TestEnsureExisting(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    fs.FileMode
		want    Key
		wantErr error  // errors.Is target; nil means success
		msg     string // substring of the error
	}{
		{name: "moat among other profiles", content: moatFile, mode: 0o600,
			want: Key{"AKIAMOAT", fileSecret}},
		{name: "read-only for the owner", content: moatFile, mode: 0o400,
			want: Key{"AKIAMOAT", fileSecret}},
		{name: "world-readable", content: moatFile, mode: 0o644, wantErr: ErrInsecureFile, msg: "chmod 600"},
		{name: "group-readable", content: moatFile, mode: 0o640, wantErr: ErrInsecureFile, msg: "mode 0640"},
		{name: "other-readable", content: moatFile, mode: 0o604, wantErr: ErrInsecureFile, msg: "chmod 600"},
		{name: "group-writable", content: moatFile, mode: 0o620, wantErr: ErrInsecureFile, msg: "chmod 600"},
		{name: "no moat profile", content: "[default]\naws_access_key_id = A\naws_secret_access_key = " + fileSecret + "\n",
			mode: 0o600, wantErr: ErrNoProfile, msg: "holds only [default] and no [moat]"},
		{name: "empty file", content: "", mode: 0o600, wantErr: ErrNoProfile, msg: "holds no profiles"},
		{name: "moat without secret", content: "[moat]\naws_access_key_id = AKIAMOAT\n", mode: 0o600,
			wantErr: ErrNoProfile, msg: "has no aws_secret_access_key"},
		{name: "moat with empty values", content: "[moat]\naws_access_key_id =\naws_secret_access_key=\n", mode: 0o600,
			wantErr: ErrNoProfile, msg: "has no aws_access_key_id or aws_secret_access_key"},
		{name: "malformed", content: "[moat]\naws_access_key_id = AKIAMOAT\n" + fileSecret + "\n", mode: 0o600,
			msg: "line 3: expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "credentials")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			k, err := Ensure(path)
			after, rerr := os.ReadFile(path)
			if rerr != nil || string(after) != tt.content {
				t.Fatalf("Ensure changed an existing file (read error %v)", rerr)
			}
			if tt.msg == "" {
				if err != nil || k != tt.want {
					t.Fatalf("Ensure = %v, %v; want %v", k, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Ensure = %v; want an error", k)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Ensure error %q does not wrap %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Ensure error %q lacks %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), fileSecret) {
				t.Errorf("Ensure error leaks the secret: %q", err)
			}
		})
	}
}

func TestEnsureRefusesNonRegularFile(t *testing.T) {
	path := t.TempDir()
	if _, err := Ensure(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Ensure(directory) = %v; want a not-a-regular-file error", err)
	}
}

func TestEnsureConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	keys := make([]Key, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = Ensure(path) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || keys[i] != keys[0] {
			t.Fatalf("Ensure %d = %v, %v; want the key all callers share, %v", i, keys[i], errs[i], keys[0])
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after concurrent Ensure, want 1", len(entries))
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v; want fs.ErrNotExist", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]Key
		sdk  bool // the AWS SDK for Go must read the same [moat] key
	}{
		{name: "empty", in: "", want: map[string]Key{}},
		{name: "comments only", in: "# a\n; b\n   # c\n\n", want: map[string]Key{}},
		{name: "what Ensure writes", in: string(encode(Key{"AKIAAAAAAAAAAAAAAAAA", fileSecret})),
			want: map[string]Key{"moat": {"AKIAAAAAAAAAAAAAAAAA", fileSecret}}, sdk: true},
		{name: "several profiles", in: moatFile,
			want: map[string]Key{"default": {"AKIADEFAULT", "other"}, "moat": {"AKIAMOAT", fileSecret}}, sdk: true},
		{name: "whitespace around delimiter and value", in: "[moat]\n  aws_access_key_id=AKIA1  \n\taws_secret_access_key   =   s e c  \n",
			want: map[string]Key{"moat": {"AKIA1", "s e c"}}, sdk: true},
		{name: "CRLF", in: "[moat]\r\naws_access_key_id = AKIA1\r\naws_secret_access_key = s\r\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "byte order mark", in: "\xef\xbb\xbf[moat]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}},
		{name: "no final newline", in: "[moat]\naws_access_key_id = AKIA1\naws_secret_access_key = s",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "session token and other settings ignored", in: "[moat]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n" +
			"aws_session_token = FwoG/+abc==\nregion = us-east-1\noutput = json\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "setting names are case-insensitive", in: "[moat]\nAWS_ACCESS_KEY_ID = AKIA1\nAws_Secret_Access_Key = s\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "colon delimiter", in: "[moat]\naws_access_key_id: AKIA1\naws_secret_access_key : s\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "value keeps later delimiters and hashes", in: "[moat]\naws_access_key_id = AKIA1\naws_secret_access_key = a=b:c#d;e\n",
			want: map[string]Key{"moat": {"AKIA1", "a=b:c#d;e"}}, sdk: true},
		{name: "comment after header", in: "[moat] # node key\naws_access_key_id = AKIA1\naws_secret_access_key = s\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "spaces inside header", in: "[ moat ]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "profile without settings", in: "[empty]\n[moat]\n",
			want: map[string]Key{"empty": {}, "moat": {}}},
		{name: "nested block", in: "[moat]\naws_access_key_id = AKIA1\ns3 =\n  max_concurrent_requests = 20\n  signature_version = s3v4\naws_secret_access_key = s\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "indented settings", in: "[moat]\n  aws_access_key_id = AKIA1\n  aws_secret_access_key = s\n",
			want: map[string]Key{"moat": {"AKIA1", "s"}}, sdk: true},
		{name: "config-file style header is a literal name", in: "[profile moat]\naws_access_key_id = AKIA1\n",
			want: map[string]Key{"profile moat": {"AKIA1", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("Parse = %v, want %v", got, tt.want)
			}
			if tt.sdk {
				if sdk := sdkRead(t, tt.in); sdk != tt.want[Profile] {
					t.Fatalf("the AWS SDK reads [moat] as %v, Parse as %v", sdk, tt.want[Profile])
				}
			}
		})
	}
}

// sdkRead returns the [moat] key as the AWS SDK for Go reads the file.
func sdkRead(t *testing.T, content string) Key {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadSharedConfigProfile(context.Background(), Profile, func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{path}
		o.ConfigFiles = []string{}
	})
	if err != nil {
		t.Fatalf("SDK LoadSharedConfigProfile: %v", err)
	}
	return Key{cfg.Credentials.AccessKeyID, cfg.Credentials.SecretAccessKey}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"setting before any profile", "aws_access_key_id = A\n", "line 1: setting aws_access_key_id comes before any [profile] header"},
		{"line without delimiter", "[moat]\n\n" + fileSecret + "\n", "line 3: expected a [profile] header"},
		{"unclosed header", "# c\n[moat\n", "line 2: profile header lacks its closing ']'"},
		{"text after header", "[moat] extra\n", "line 1: unexpected text after the profile header"},
		{"empty header", "[ ]\n", "line 1: empty profile name"},
		{"bracket in name", "[mo[at]\n", "line 1: profile name contains '['"},
		{"doubled brackets", "[[moat]]\n", "line 1: unexpected text after the profile header"},
		{"duplicate profile", "[moat]\n[other]\n[moat]\n", "line 3: profile [moat] repeats the one on line 1"},
		{"duplicate setting", "[moat]\naws_access_key_id = A\nAWS_ACCESS_KEY_ID = B\n", "line 3: setting aws_access_key_id repeats the one on line 2 in profile [moat]"},
		{"duplicate unknown setting", "[moat]\n" + fileSecret + " = 1\n" + fileSecret + " = 2\n", "line 3: setting (a setting) repeats"},
		{"setting without name", "[moat]\n = value\n", "line 2: setting has no name before '='"},
		{"secret continues", "[moat]\naws_secret_access_key = abc\n   def\n", "line 3: the value of aws_secret_access_key continues"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, %v; want a *SyntaxError", got, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), fileSecret) || strings.Contains(err.Error(), strings.ToLower(fileSecret)) {
				t.Fatalf("Parse error leaks a secret: %q", err)
			}
		})
	}
}

func TestLoadWrapsSyntaxError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(path, []byte("[moat]\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 || !strings.Contains(err.Error(), path+": line 2:") {
		t.Fatalf("Load = %v; want a wrapped *SyntaxError at line 2 naming the file", err)
	}
}

// TestAWSToolsReadEnsuredFile checks that the AWS SDK for Go and, when it is
// installed, the AWS CLI read the file Ensure writes.
func TestAWSToolsReadEnsuredFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	k, err := Ensure(path)
	if err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := sdkRead(t, string(content)); got != k {
		t.Fatalf("the AWS SDK reads %v, Ensure returned %v", got, k)
	}

	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the aws CLI is not installed")
	}
	if testing.Short() {
		t.Skip("starting the aws CLI is slow")
	}
	env := []string{"AWS_SHARED_CREDENTIALS_FILE=" + path, "AWS_CONFIG_FILE=" + filepath.Join(t.TempDir(), "config")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	for setting, want := range map[string]string{keyAccessKeyID: k.AccessKeyID, keySecretAccessKey: k.SecretAccessKey} {
		cmd := exec.CommandContext(t.Context(), awsCLI, "configure", "get", setting, "--profile", Profile)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws configure get %s: %v", setting, err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Fatalf("aws configure get %s = %q, want the generated value", setting, got)
		}
	}
}

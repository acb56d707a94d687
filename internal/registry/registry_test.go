package registry

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"moat.dev/moat/internal/secrets"
	"moat.dev/moat/internal/store"
)

// testZip builds a package with a bootstrap and the given extra files.
func testZip(t testing.TB, files ...string) []byte {
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
		fmt.Fprintf(w, "#!/bin/sh\necho %s\n", name)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type testEnv struct {
	st   *store.Store
	keys *secrets.Keyring
}

func newTestStore(t testing.TB) *testEnv {
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
	return &testEnv{st: st, keys: keys}
}

func (e *testEnv) open(t testing.TB, mod ...func(*Options)) *Registry {
	t.Helper()
	opts := Options{KV: e.st.Functions, Code: e.st.Code, Keys: e.keys, ConcurrencyLimit: 1000}
	for _, m := range mod {
		m(&opts)
	}
	r, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func newTestRegistry(t testing.TB) *Registry { return newTestStore(t).open(t) }

func create(t testing.TB, r *Registry, name string, mod ...func(*CreateInput)) *Config {
	t.Helper()
	in := CreateInput{FunctionName: name, Runtime: "provided.al2023", Handler: "bootstrap", ZipFile: testZip(t)}
	for _, m := range mod {
		m(&in)
	}
	c, err := r.CreateFunction(context.Background(), in)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return c
}

// waitFor blocks until pred, evaluated with the cache locked, holds.
func (r *Registry) waitFor(t testing.TB, pred func() bool) {
	t.Helper()
	timedOut := false
	timer := time.AfterFunc(10*time.Second, func() {
		r.mu.Lock()
		timedOut = true
		r.changed.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !pred() {
		if timedOut {
			t.Fatal("condition not reached in 10s")
		}
		r.changed.Wait()
	}
}

func wantErr(t testing.TB, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
}

func TestCreateDefaultsAndGet(t *testing.T) {
	r := newTestRegistry(t)
	c := create(t, r, "hello")
	if c.Version != Latest || c.MemorySize != 128 || c.Timeout != 3 || c.EphemeralStorage != 512 ||
		len(c.Architectures) != 1 || c.Architectures[0] != HostArchitecture() || c.RevisionID == "" || c.CodeSize == 0 {
		t.Errorf("defaults not applied: %+v", c)
	}
	if len(c.RevisionID) != 36 || c.RevisionID[14] != '4' {
		t.Errorf("RevisionId %q is not a UUID v4", c.RevisionID)
	}
	info, err := r.Get("hello", "")
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.RevisionID != c.RevisionID || info.Config.CodeSha256Hex != c.CodeSha256Hex || info.Reserved != -1 || info.ARN != "arn:aws:lambda:us-east-1:000000000000:function:hello" {
		t.Errorf("Get = %+v", info)
	}
	zip, err := r.CodeZip(context.Background(), c.CodeSha256Hex)
	if err != nil || !bytes.Equal(zip, testZip(t)) {
		t.Errorf("CodeZip = %d bytes, %v", len(zip), err)
	}
	if c.CodeSha256() == "" {
		t.Error("no base64 sha")
	}
	_, err = r.CreateFunction(context.Background(), CreateInput{FunctionName: "hello", Runtime: "provided", Handler: "x", ZipFile: testZip(t)})
	wantErr(t, err, ErrExists)
	if err.Error() != "Function already exist: hello" {
		t.Errorf("message = %q", err)
	}
}

func TestCreateValidation(t *testing.T) {
	r := newTestRegistry(t)
	long := strings.Repeat("a", 65)
	tests := []struct {
		name    string
		mod     func(*CreateInput)
		want    error
		message string
	}{
		{"bad name", func(in *CreateInput) { in.FunctionName = "no spaces" }, ErrValidation, "at 'functionName'"},
		{"long name", func(in *CreateInput) { in.FunctionName = long }, ErrValidation, "functionName"},
		{"memory low", func(in *CreateInput) { in.MemorySize = new(127) }, ErrValidation, "Value '127' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128"},
		{"memory high", func(in *CreateInput) { in.MemorySize = new(10241) }, ErrValidation, "less than or equal to 10240"},
		{"timeout", func(in *CreateInput) { in.Timeout = new(901) }, ErrValidation, "'timeout'"},
		{"timeout zero", func(in *CreateInput) { in.Timeout = new(0) }, ErrValidation, "'timeout'"},
		{"two errors", func(in *CreateInput) { in.Timeout = new(0); in.MemorySize = new(1) }, ErrValidation, "2 validation errors detected"},
		{"ephemeral", func(in *CreateInput) { in.EphemeralStorage = new(511) }, ErrValidation, "ephemeralStorage.size"},
		{"arch", func(in *CreateInput) { in.Architectures = []string{"mips"} }, ErrValidation, "enum value set"},
		{"two archs", func(in *CreateInput) { in.Architectures = []string{"x86_64", "arm64"} }, ErrValidation, "architectures"},
		{"another architecture than the host's", func(in *CreateInput) { in.Architectures = []string{otherArch()} }, ErrInvalid, "not served here"},
		{"handler long", func(in *CreateInput) { in.Handler = strings.Repeat("h", 129) }, ErrValidation, "handler"},
		{"handler space", func(in *CreateInput) { in.Handler = "a b" }, ErrValidation, "handler"},
		{"no handler", func(in *CreateInput) { in.Handler = "" }, ErrInvalid, "Handler is required"},
		{"description", func(in *CreateInput) { in.Description = strings.Repeat("d", 257) }, ErrValidation, "description"},
		{"role", func(in *CreateInput) { in.Role = "admin" }, ErrValidation, "role"},
		{"runtime", func(in *CreateInput) { in.Runtime = "python3.12" }, ErrInvalid, "not supported by moat"},
		{"no runtime", func(in *CreateInput) { in.Runtime = "" }, ErrInvalid, "Runtime is required"},
		{"env key", func(in *CreateInput) { in.Environment = map[string]string{"1BAD": "v"} }, ErrValidation, "Map keys must satisfy"},
		{"env key short", func(in *CreateInput) { in.Environment = map[string]string{"A": "v"} }, ErrValidation, "Map keys"},
		{"env reserved", func(in *CreateInput) { in.Environment = map[string]string{"AWS_REGION": "x", "OK": "y"} }, ErrInvalid, "Reserved keys used in this request: AWS_REGION"},
		{"env reserved lambda", func(in *CreateInput) { in.Environment = map[string]string{"AWS_LAMBDA_RUNTIME_API": "x"} }, ErrInvalid, "reserved keys"},
		{"env size", func(in *CreateInput) { in.Environment = map[string]string{"BIG": strings.Repeat("s", 4090)} }, ErrInvalid, "exceeded the 4KB limit"},
		{"no zip", func(in *CreateInput) { in.ZipFile = nil }, ErrInvalidZip, "empty"},
		{"not a zip", func(in *CreateInput) { in.ZipFile = []byte("hello") }, ErrInvalidZip, "invalid zip file"},
		{"no bootstrap", func(in *CreateInput) {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, _ := zw.Create("main")
			w.Write([]byte("x"))
			zw.Close()
			in.ZipFile = buf.Bytes()
		}, ErrInvalidZip, "bootstrap"},
		{"zip too large", func(in *CreateInput) { in.ZipFile = make([]byte, 50<<20+1) }, ErrCodeTooLarge, "exceeds"},
		{"qualified", func(in *CreateInput) { in.FunctionName = "f:1" }, ErrInvalid, "qualified"},
		{"other account", func(in *CreateInput) { in.FunctionName = "arn:aws:lambda:us-east-1:111111111111:function:f" }, ErrNotFound, "Function not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := CreateInput{FunctionName: "f", Runtime: "provided.al2023", Handler: "bootstrap", ZipFile: testZip(t)}
			tt.mod(&in)
			_, err := r.CreateFunction(context.Background(), in)
			wantErr(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("message %q does not contain %q", err, tt.message)
			}
			if strings.Contains(err.Error(), strings.Repeat("s", 100)) {
				t.Error("message leaks an environment value")
			}
		})
	}
	if items, _, _ := r.List("", 0); len(items) != 0 {
		t.Errorf("a refused create stored %d functions", len(items))
	}
	// Allowed edge values and ARN input forms.
	for i, name := range []string{
		"arn:aws:lambda:us-east-1:000000000000:function:arnform",
		"000000000000:function:partial",
		"edge_-" + strings.Repeat("x", 58),
	} {
		c := create(t, r, name, func(in *CreateInput) {
			in.MemorySize, in.Timeout, in.EphemeralStorage = new(10240), new(900), new(10240)
			in.Architectures = []string{HostArchitecture()}
			in.Role = "arn:aws:iam::123456789012:role/service-role/x"
			in.Environment = map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/w", "ab": strings.Repeat("v", 4000)}
		})
		if strings.Contains(c.FunctionName, ":") || c.MemorySize != 10240 {
			t.Errorf("%d: %+v", i, c)
		}
	}
}

func TestEnvironmentSealed(t *testing.T) {
	env := newTestStore(t)
	r := env.open(t)
	c := create(t, r, "sec", func(in *CreateInput) {
		in.Environment = map[string]string{"DB_PASSWORD": "hunter2-very-secret"}
	})
	got, err := r.Environment(c)
	if err != nil || got["DB_PASSWORD"] != "hunter2-very-secret" || len(got) != 1 {
		t.Fatalf("Environment = %v, %v", got, err)
	}
	raw, err := env.st.Functions.Get(context.Background(), "fn.sec")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Value(), []byte("hunter2")) {
		t.Error("plaintext environment stored in the KV bucket")
	}
	// A record copied to another function does not open.
	moved := *c
	moved.FunctionName = "other"
	if _, err := r.Environment(&moved); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("moved record opened: %v", err)
	}
	// Another node's master key does not open it.
	other := newTestStore(t)
	r2, err := Open(context.Background(), Options{KV: env.st.Functions, Code: env.st.Code, Keys: other.keys})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Environment(c); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Errorf("foreign key opened: %v", err)
	}
	// No environment: an empty map.
	plain := create(t, r, "plain")
	if m, err := r.Environment(plain); err != nil || len(m) != 0 {
		t.Errorf("Environment = %v, %v", m, err)
	}
}

func TestUpdateConfigurationAndCode(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	c0 := create(t, r, "up", func(in *CreateInput) { in.Environment = map[string]string{"A1": "x"} })
	c1, err := r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "up", MemorySize: new(256), Description: new("d")})
	if err != nil {
		t.Fatal(err)
	}
	if c1.MemorySize != 256 || c1.Description != "d" || c1.Timeout != 3 || c1.RevisionID == c0.RevisionID {
		t.Errorf("update = %+v", c1)
	}
	if env, _ := r.Environment(c1); env["A1"] != "x" {
		t.Error("environment lost by an unrelated update")
	}
	if c0.MemorySize != 128 {
		t.Error("a handed-out config was modified")
	}
	_, err = r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "up", RevisionID: c0.RevisionID, Timeout: new(5)})
	wantErr(t, err, ErrPreconditionFailed)
	c2, err := r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "up", RevisionID: c1.RevisionID, Environment: &map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Env != nil {
		t.Error("empty Environment did not clear the variables")
	}
	_, err = r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "up", Handler: new("")})
	wantErr(t, err, ErrValidation)
	_, err = r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "nope", Timeout: new(5)})
	wantErr(t, err, ErrNotFound)

	c3, err := r.UpdateCode(ctx, UpdateCodeInput{FunctionName: "up", ZipFile: testZip(t, "lib.so")})
	if err != nil {
		t.Fatal(err)
	}
	if c3.CodeSha256Hex == c2.CodeSha256Hex || c3.RevisionID == c2.RevisionID || c3.MemorySize != 256 {
		t.Errorf("update code = %+v", c3)
	}
	dry, err := r.UpdateCode(ctx, UpdateCodeInput{FunctionName: "up", ZipFile: testZip(t), DryRun: true})
	if err != nil || dry.CodeSha256Hex != c2.CodeSha256Hex {
		t.Fatalf("dry run = %v, %v", dry, err)
	}
	if info, _ := r.Get("up", ""); info.Config.CodeSha256Hex != c3.CodeSha256Hex {
		t.Error("dry run stored its code")
	}
	_, err = r.UpdateCode(ctx, UpdateCodeInput{FunctionName: "up", ZipFile: []byte("PK junk")})
	wantErr(t, err, ErrInvalidZip)
}

func TestVersionsAndPublish(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	c := create(t, r, "pv", func(in *CreateInput) { in.Description = "fn desc" })
	v1, err := r.PublishVersion(ctx, PublishInput{FunctionName: "pv"})
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != "1" || v1.Description != "fn desc" || v1.CodeSha256Hex != c.CodeSha256Hex {
		t.Errorf("v1 = %+v", v1)
	}
	again, err := r.PublishVersion(ctx, PublishInput{FunctionName: "pv", Description: "other"})
	if err != nil || again.Version != "1" {
		t.Fatalf("publishing an unchanged $LATEST = %+v, %v", again, err)
	}
	_, err = r.PublishVersion(ctx, PublishInput{FunctionName: "pv", CodeSha256: "AAAA"})
	wantErr(t, err, ErrInvalid)
	_, err = r.PublishVersion(ctx, PublishInput{FunctionName: "pv", RevisionID: "nope"})
	wantErr(t, err, ErrPreconditionFailed)

	if _, err := r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "pv", Timeout: new(10)}); err != nil {
		t.Fatal(err)
	}
	v2, err := r.PublishVersion(ctx, PublishInput{FunctionName: "pv", Description: "second", CodeSha256: c.CodeSha256()})
	if err != nil || v2.Version != "2" || v2.Timeout != 10 || v2.Description != "second" {
		t.Fatalf("v2 = %+v, %v", v2, err)
	}
	upd, err := r.UpdateCode(ctx, UpdateCodeInput{FunctionName: "pv", ZipFile: testZip(t, "x"), Publish: true})
	if err != nil || upd.Version != "3" {
		t.Fatalf("update code with publish = %+v, %v", upd, err)
	}
	// Uploading the same code again publishes nothing new.
	same, err := r.UpdateCode(ctx, UpdateCodeInput{FunctionName: "pv", ZipFile: testZip(t, "x"), Publish: true})
	if err != nil || same.Version != "3" {
		t.Fatalf("republishing identical code = %+v, %v", same, err)
	}
	// Versions are immutable.
	if info, _ := r.Get("pv", "1"); info.Config.Timeout != 3 || info.ARN != "arn:aws:lambda:us-east-1:000000000000:function:pv:1" {
		t.Errorf("version 1 = %+v", info)
	}
	// Pagination: $LATEST first.
	var got []string
	marker := ""
	for {
		page, next, err := r.ListVersions(ctx, "pv", marker, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			got = append(got, c.Version)
		}
		if next == "" {
			break
		}
		marker = next
	}
	if strings.Join(got, ",") != "$LATEST,1,2,3" {
		t.Errorf("versions = %v", got)
	}
	// Delete a version; the next one keeps counting.
	if err := r.Delete(ctx, "pv", "3"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.Delete(ctx, "pv", "3"), ErrNotFound)
	wantErr(t, r.Delete(ctx, "pv", Latest), ErrInvalid)
	if _, err := r.Resolve("pv", "3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted version resolves: %v", err)
	}
	if _, err := r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "pv", Timeout: new(11)}); err != nil {
		t.Fatal(err)
	}
	if v4, err := r.PublishVersion(ctx, PublishInput{FunctionName: "pv"}); err != nil || v4.Version != "4" {
		t.Errorf("after delete: %+v, %v", v4, err)
	}
	// Create with Publish returns version 1.
	pc := create(t, r, "pubcreate", func(in *CreateInput) { in.Publish = true })
	if pc.Version != "1" {
		t.Errorf("create with Publish = %s", pc.Version)
	}
}

func TestAliasesAndRouting(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	create(t, r, "al")
	for i := range 2 {
		if _, err := r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "al", Timeout: new(10 + i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.PublishVersion(ctx, PublishInput{FunctionName: "al"}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := r.CreateAlias(ctx, "al", AliasInput{Name: "live", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"2": 0.3}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.CreateAlias(ctx, "al", AliasInput{Name: "live", FunctionVersion: "1"})
	wantErr(t, err, ErrExists)
	tests := []struct {
		name string
		in   AliasInput
		want error
	}{
		{"digits", AliasInput{Name: "123", FunctionVersion: "1"}, ErrValidation},
		{"bad version", AliasInput{Name: "x", FunctionVersion: "v1"}, ErrValidation},
		{"missing version", AliasInput{Name: "x", FunctionVersion: "9"}, ErrNotFound},
		{"weight > 1", AliasInput{Name: "x", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"2": 1.5}}, ErrValidation},
		{"two extra", AliasInput{Name: "x", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"2": 0.1, "3": 0.1}}, ErrValidation},
		{"latest weighted", AliasInput{Name: "x", FunctionVersion: Latest, AdditionalVersionWeights: map[string]float64{"2": 0.1}}, ErrInvalid},
		{"self weighted", AliasInput{Name: "x", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"1": 0.1}}, ErrInvalid},
		{"extra missing", AliasInput{Name: "x", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"7": 0.1}}, ErrInvalid},
		{"no function", AliasInput{Name: "x", FunctionVersion: "1"}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := "al"
			if tt.name == "no function" {
				fn = "nofn"
			}
			_, err := r.CreateAlias(ctx, fn, tt.in)
			wantErr(t, err, tt.want)
		})
	}
	// Weighted routing picks version 2 about 30% of the time.
	const n = 20000
	hits := 0
	for range n {
		tg, err := r.Resolve("al", "live")
		if err != nil {
			t.Fatal(err)
		}
		if tg.InvokedARN != "arn:aws:lambda:us-east-1:000000000000:function:al:live" || tg.Qualifier != "live" {
			t.Fatalf("target = %+v", tg)
		}
		if tg.Config.Version == "2" {
			hits++
		}
	}
	if share := float64(hits) / n; share < 0.27 || share > 0.33 {
		t.Errorf("version 2 share = %.3f, want ~0.3", share)
	}
	// A version an alias routes to cannot be deleted.
	err = r.Delete(ctx, "al", "2")
	wantErr(t, err, ErrConflict)
	if !strings.Contains(err.Error(), "[live]") {
		t.Errorf("message = %q", err)
	}
	// Update with revision check, then remove the routing.
	_, err = r.UpdateAlias(ctx, "al", "live", AliasUpdate{RevisionID: "stale", Description: new("x")})
	wantErr(t, err, ErrPreconditionFailed)
	a2, err := r.UpdateAlias(ctx, "al", "live", AliasUpdate{RevisionID: a.RevisionID, AdditionalVersionWeights: &map[string]float64{}})
	if err != nil || a2.AdditionalVersionWeights != nil || a2.RevisionID == a.RevisionID || a2.FunctionVersion != "1" {
		t.Fatalf("update alias = %+v, %v", a2, err)
	}
	if got, _ := r.GetAlias("al", "live"); got.AdditionalVersionWeights != nil {
		t.Error("GetAlias still has weights")
	}
	for range 100 {
		if tg, _ := r.Resolve("al", "live"); tg.Config.Version != "1" {
			t.Fatal("routing not removed")
		}
	}
	if err := r.Delete(ctx, "al", "2"); err != nil {
		t.Errorf("delete unreferenced version: %v", err)
	}
	// Listing and filtering.
	for _, an := range []string{"b", "c", "d"} {
		if _, err := r.CreateAlias(ctx, "al", AliasInput{Name: an, FunctionVersion: Latest}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	marker := ""
	for {
		page, next, err := r.ListAliases("al", "", marker, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			names = append(names, a.Name)
		}
		if next == "" {
			break
		}
		marker = next
	}
	if strings.Join(names, ",") != "b,c,d,live" {
		t.Errorf("aliases = %v", names)
	}
	if page, _, _ := r.ListAliases("al", "1", "", 0); len(page) != 1 || page[0].Name != "live" {
		t.Errorf("filter by version = %v", page)
	}
	if err := r.DeleteAlias(ctx, "al", "b"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.DeleteAlias(ctx, "al", "b"), ErrNotFound)
	if _, err := r.Resolve("al", "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted alias resolves: %v", err)
	}
	if tg, err := r.Resolve("al", "c"); err != nil || tg.Config.Version != Latest {
		t.Errorf("alias to $LATEST = %+v, %v", tg, err)
	}
}

func TestResolveForms(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	create(t, r, "rf")
	if _, err := r.PublishVersion(ctx, PublishInput{FunctionName: "rf"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "rf", AliasInput{Name: "prod", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:lambda:us-east-1:000000000000:function:rf"
	tests := []struct {
		name, qualifier string
		version, arn    string
		err             error
	}{
		{"rf", "", Latest, arn, nil},
		{"rf", Latest, Latest, arn + ":$LATEST", nil},
		{"rf", "1", "1", arn + ":1", nil},
		{"rf", "prod", "1", arn + ":prod", nil},
		{"rf:prod", "", "1", arn + ":prod", nil},
		{"rf:1", "1", "1", arn + ":1", nil},
		{arn, "", Latest, arn, nil},
		{arn + ":prod", "", "1", arn + ":prod", nil},
		{"000000000000:function:rf:1", "", "1", arn + ":1", nil},
		{"rf:1", "2", "", "", ErrInvalid},
		{"rf", "2", "", "", ErrNotFound},
		{"rf", "nope", "", "", ErrNotFound},
		{"missing", "", "", "", ErrNotFound},
		{"arn:aws:lambda:eu-west-1:000000000000:function:rf", "", "", "", ErrNotFound},
		{"bad name!", "", "", "", ErrInvalid},
		{"rf", "bad/q", "", "", ErrInvalid},
		{"arn:aws:s3:us-east-1:000000000000:function:rf", "", "", "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.qualifier, func(t *testing.T) {
			tg, err := r.Resolve(tt.name, tt.qualifier)
			if tt.err != nil {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.Config.Version != tt.version || tg.InvokedARN != tt.arn || tg.Reserved != -1 ||
				tg.Async.MaximumRetryAttempts != 2 || tg.Async.MaximumEventAgeInSeconds != 21600 {
				t.Errorf("target = %+v", tg)
			}
		})
	}
	_, err := r.Resolve("missing", "")
	if err.Error() != "Function not found: "+strings.Replace(arn, "rf", "missing", 1) {
		t.Errorf("message = %q", err)
	}
}

func TestListPagination(t *testing.T) {
	r := newTestRegistry(t)
	names := []string{"c", "a", "e", "b", "d"}
	for _, n := range names {
		create(t, r, n)
	}
	var got []string
	marker := ""
	for {
		page, next, err := r.List(marker, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			got = append(got, c.FunctionName)
		}
		if next == "" {
			break
		}
		if len(page) != 2 {
			t.Fatalf("short page before the end: %d", len(page))
		}
		marker = next
		// A function created behind the marker is not listed twice; one
		// ahead of it is.
		if marker != "" && len(got) == 2 {
			create(t, r, "aa")
			create(t, r, "bb")
		}
	}
	if strings.Join(got, ",") != "a,b,bb,c,d,e" {
		t.Errorf("listed %v", got)
	}
	for _, bad := range []int{-1, 10001} {
		_, _, err := r.List("", bad)
		wantErr(t, err, ErrValidation)
	}
	_, _, err := r.List("!!notbase64", 0)
	wantErr(t, err, ErrInvalid)
	all, next, _ := r.List("", 0)
	if len(all) != 7 || next != "" {
		t.Errorf("default page = %d items, next %q", len(all), next)
	}
}

func TestDeleteFunctionRemovesEverything(t *testing.T) {
	env := newTestStore(t)
	r := env.open(t)
	ctx := context.Background()
	create(t, r, "gone", func(in *CreateInput) { in.Publish = true })
	if _, err := r.CreateAlias(ctx, "gone", AliasInput{Name: "a", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutConcurrency(ctx, "gone", 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.PutEventInvokeConfig(ctx, "gone", "a", EventInvokeUpdate{MaximumRetryAttempts: new(0)}, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "gone", ""); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.Delete(ctx, "gone", ""), ErrNotFound)
	if _, err := r.Get("gone", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after delete: %v", err)
	}
	keys, err := env.st.Functions.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		t.Errorf("key %s left after delete", k)
	}
	// Re-created, it starts afresh.
	create(t, r, "gone")
	if _, err := r.GetAlias("gone", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("alias survived: %v", err)
	}
	if n, _ := r.GetConcurrency("gone"); n != -1 {
		t.Errorf("reserved concurrency survived: %d", n)
	}
	if _, err := r.Resolve("gone", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("version survived: %v", err)
	}
	if v, err := r.PublishVersion(ctx, PublishInput{FunctionName: "gone"}); err != nil || v.Version != "1" {
		t.Errorf("publish after re-create = %+v, %v", v, err)
	}
}

func TestStaleVersionRecordIgnored(t *testing.T) {
	// A version record left by an earlier function of the same name (its
	// purge failed) is never served for the new one.
	env := newTestStore(t)
	r := env.open(t)
	ctx := context.Background()
	create(t, r, "stale", func(in *CreateInput) { in.Publish = true })
	old, _ := env.st.Functions.Get(ctx, "ver.stale.1")
	if err := r.Delete(ctx, "stale", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := env.st.Functions.Put(ctx, "ver.stale.1", old.Value()); err != nil {
		t.Fatal(err)
	}
	create(t, r, "stale")
	r.mu.Lock()
	r.fns["stale"].rec.Versions = []int{1} // as if listed
	r.mu.Unlock()
	if _, err := r.Resolve("stale", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("stale version served: %v", err)
	}
}

func TestConcurrency(t *testing.T) {
	env := newTestStore(t)
	r := env.open(t, func(o *Options) { o.ConcurrencyLimit = 100 })
	ctx := context.Background()
	create(t, r, "c1")
	create(t, r, "c2")
	if n, err := r.PutConcurrency(ctx, "c1", 50); err != nil || n != 50 {
		t.Fatalf("put = %d, %v", n, err)
	}
	if tg, _ := r.Resolve("c1", ""); tg.Reserved != 50 {
		t.Errorf("Target.Reserved = %d", tg.Reserved)
	}
	_, err := r.PutConcurrency(ctx, "c2", 41) // 50+41 > 100-10
	wantErr(t, err, ErrInvalid)
	if !strings.Contains(err.Error(), "minimum value of [10]") {
		t.Errorf("message = %q", err)
	}
	if _, err := r.PutConcurrency(ctx, "c2", 40); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutConcurrency(ctx, "c1", 0); err != nil {
		t.Fatal(err)
	}
	_, err = r.PutConcurrency(ctx, "c1", -1)
	wantErr(t, err, ErrValidation)
	if n, _ := r.GetConcurrency("c1"); n != 0 {
		t.Errorf("get = %d", n)
	}
	if err := r.DeleteConcurrency(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.GetConcurrency("c1"); n != -1 {
		t.Errorf("after delete = %d", n)
	}
	_, err = r.PutConcurrency(ctx, "nope", 1)
	wantErr(t, err, ErrNotFound)
}

func TestEventInvokeConfig(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	create(t, r, "ev", func(in *CreateInput) { in.Publish = true })
	if _, err := r.CreateAlias(ctx, "ev", AliasInput{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	const fnARN = "arn:aws:lambda:us-east-1:000000000000:function:target"
	const sqs = "arn:aws:sqs:us-east-1:000000000000:failures"
	c, arn, err := r.PutEventInvokeConfig(ctx, "ev", "", EventInvokeUpdate{
		MaximumRetryAttempts: new(1), OnFailure: new(sqs), OnSuccess: new(fnARN + ":live"),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if arn != "arn:aws:lambda:us-east-1:000000000000:function:ev:$LATEST" || *c.MaximumRetryAttempts != 1 || c.MaximumEventAgeInSeconds != nil {
		t.Errorf("put = %+v %s", c, arn)
	}
	tg, _ := r.Resolve("ev", "")
	if tg.Async != (AsyncConfig{1, 21600, fnARN + ":live", sqs}) {
		t.Errorf("Target.Async = %+v", tg.Async)
	}
	if tg, _ := r.Resolve("ev", "live"); tg.Async.MaximumRetryAttempts != 2 {
		t.Error("the $LATEST config applied to an alias")
	}
	// Merge keeps unset fields; put replaces.
	c, _, err = r.PutEventInvokeConfig(ctx, "ev", Latest, EventInvokeUpdate{MaximumEventAgeInSeconds: new(60)}, true)
	if err != nil || *c.MaximumRetryAttempts != 1 || *c.MaximumEventAgeInSeconds != 60 || c.OnFailure != sqs {
		t.Fatalf("merge = %+v, %v", c, err)
	}
	c, _, err = r.PutEventInvokeConfig(ctx, "ev", "", EventInvokeUpdate{MaximumEventAgeInSeconds: new(120)}, false)
	if err != nil || c.MaximumRetryAttempts != nil || c.OnFailure != "" {
		t.Fatalf("replace = %+v, %v", c, err)
	}
	if _, _, err := r.PutEventInvokeConfig(ctx, "ev", "live", EventInvokeUpdate{}, false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    string
		in   EventInvokeUpdate
		want error
	}{
		{"retries", "", EventInvokeUpdate{MaximumRetryAttempts: new(3)}, ErrValidation},
		{"age low", "", EventInvokeUpdate{MaximumEventAgeInSeconds: new(59)}, ErrValidation},
		{"age high", "", EventInvokeUpdate{MaximumEventAgeInSeconds: new(21601)}, ErrValidation},
		{"sns", "", EventInvokeUpdate{OnFailure: new("arn:aws:sns:us-east-1:000000000000:topic")}, ErrInvalid},
		{"fifo", "", EventInvokeUpdate{OnFailure: new("arn:aws:sqs:us-east-1:000000000000:q.fifo")}, ErrInvalid},
		{"garbage", "", EventInvokeUpdate{OnSuccess: new("target")}, ErrInvalid},
		{"missing alias", "nope", EventInvokeUpdate{}, ErrNotFound},
		{"missing version", "9", EventInvokeUpdate{}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.PutEventInvokeConfig(ctx, "ev", tt.q, tt.in, false)
			wantErr(t, err, tt.want)
		})
	}
	if _, _, err := r.GetEventInvokeConfig("ev", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get unset = %v", err)
	}
	if err := r.DeleteEventInvokeConfig(ctx, "ev", ""); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.DeleteEventInvokeConfig(ctx, "ev", ""), ErrNotFound)
	if err := r.DeleteAlias(ctx, "ev", "live"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "ev", AliasInput{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.GetEventInvokeConfig("ev", "live"); !errors.Is(err, ErrNotFound) {
		t.Errorf("alias config survived the alias: %v", err)
	}
}

func TestConcurrentUpdatesNeverLoseWrites(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	create(t, r, "race")
	const workers = 8
	var wg sync.WaitGroup
	results := make([]*Config, workers)
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			results[i], errs[i] = r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "race", Description: new(fmt.Sprint("w", i))})
		})
	}
	wg.Wait()
	won := 0
	var last *Config
	for i := range workers {
		switch {
		case errs[i] == nil:
			won++
			last = results[i]
		case errors.Is(errs[i], ErrConflict):
			if !strings.HasPrefix(errs[i].Error(), "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:") {
				t.Errorf("conflict message = %q", errs[i])
			}
		default:
			t.Errorf("worker %d: %v", i, errs[i])
		}
	}
	if won == 0 {
		t.Fatal("no update won")
	}
	// Each winner's write was the state at some point: a winner's
	// description persists only if no later winner overwrote it, and the
	// final state is one of the winners.
	info, _ := r.Get("race", "")
	found := false
	for i := range workers {
		if errs[i] == nil && results[i].RevisionID == info.Config.RevisionID {
			found = true
			if results[i].Description != info.Config.Description {
				t.Error("stored record differs from the winner's")
			}
		}
	}
	if !found {
		t.Errorf("final revision %s is no winner's (last winner %s)", info.Config.RevisionID, last.RevisionID)
	}
}

func TestConcurrentPublishAndAliases(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	create(t, r, "cp")
	var wg sync.WaitGroup
	const workers = 6
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			if i%2 == 0 {
				_, errs[i] = r.PublishVersion(ctx, PublishInput{FunctionName: "cp"})
			} else {
				_, errs[i] = r.CreateAlias(ctx, "cp", AliasInput{Name: fmt.Sprint("a", i), FunctionVersion: Latest})
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, ErrConflict) {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	// Whatever won, the listed versions all resolve.
	vs, _, err := r.ListVersions(ctx, "cp", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if _, err := r.Resolve("cp", v.Version); err != nil {
			t.Errorf("version %s: %v", v.Version, err)
		}
	}
	if len(vs) > 2 {
		t.Errorf("an unchanged $LATEST was published %d times", len(vs)-1)
	}
}

func TestTwoNodesShareState(t *testing.T) {
	env := newTestStore(t)
	a := env.open(t)
	b := env.open(t)
	ctx := context.Background()
	create(t, a, "shared", func(in *CreateInput) { in.Publish = true })
	// b learns about it through the watch.
	b.waitFor(t, func() bool { e := b.fns["shared"]; return e != nil && e.rec != nil && len(e.rec.Versions) == 1 })
	if tg, err := b.Resolve("shared", "1"); err != nil || tg.Config.Version != "1" {
		t.Fatalf("node b resolve = %+v, %v", tg, err)
	}
	// A change on b, immediately followed by one on a, is no conflict:
	// writes read the stored record, not the cache.
	if _, err := b.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "shared", Timeout: new(7)}); err != nil {
		t.Fatal(err)
	}
	c, err := a.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "shared", MemorySize: new(512)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 7 || c.MemorySize != 512 {
		t.Errorf("a lost b's write: %+v", c)
	}
	b.waitFor(t, func() bool { return b.fns["shared"].rec.Latest.MemorySize == 512 })
	if err := a.Delete(ctx, "shared", ""); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, func() bool { return b.fns["shared"].rec == nil })
	if items, _, _ := b.List("", 0); len(items) != 0 {
		t.Errorf("b lists %d functions after delete", len(items))
	}
	// A reopened registry loads the stored state.
	create(t, a, "again")
	c2 := env.open(t)
	if _, err := c2.Resolve("again", ""); err != nil {
		t.Errorf("reopened registry: %v", err)
	}
}

func TestCacheIgnoresStaleUpdates(t *testing.T) {
	r := newTestRegistry(t)
	r.applyFn("x", 10, &fnRecord{Latest: Config{Description: "new"}})
	r.applyFn("x", 9, &fnRecord{Latest: Config{Description: "old"}})
	if r.fns["x"].rec.Latest.Description != "new" {
		t.Error("older revision overwrote a newer one")
	}
	r.applyFn("x", 11, nil)
	r.applyFn("x", 10, &fnRecord{Latest: Config{Description: "new"}})
	if r.fns["x"].rec != nil {
		t.Error("older revision resurrected a deleted function")
	}
	if items, _, _ := r.List("", 0); len(items) != 0 {
		t.Error("tombstoned function listed")
	}
}

func BenchmarkResolve(b *testing.B) {
	r := newTestRegistry(b)
	ctx := context.Background()
	for i := range 100 {
		create(b, r, fmt.Sprint("fn", i))
	}
	if _, err := r.PublishVersion(ctx, PublishInput{FunctionName: "fn7"}); err != nil {
		b.Fatal(err)
	}
	if _, err := r.UpdateConfiguration(ctx, UpdateConfigInput{FunctionName: "fn7", Timeout: new(9)}); err != nil {
		b.Fatal(err)
	}
	if _, err := r.PublishVersion(ctx, PublishInput{FunctionName: "fn7"}); err != nil {
		b.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "fn7", AliasInput{Name: "live", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"2": 0.1}}); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, fn, q string }{
		{"latest", "fn42", ""},
		{"version", "fn7", "2"},
		{"weighted-alias", "fn7", "live"},
		{"arn", "arn:aws:lambda:us-east-1:000000000000:function:fn7:live", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.Resolve(bc.fn, bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Resolve("fn7", "live"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// TestCodeZip reads packages back from the object store: one of many
// chunks, read into a buffer of its stored size, and one that is missing.
func TestCodeZip(t *testing.T) {
	r := newTestRegistry(t)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, size := range map[string]int{"bootstrap": 64, "data.bin": 600 << 10} {
		h := &zip.FileHeader{Name: name, Method: zip.Store} // random bytes do not deflate
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		_, _ = rand.Read(b)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	big := buf.Bytes()
	c := create(t, r, "big", func(in *CreateInput) { in.ZipFile = big })

	tests := []struct {
		name    string
		sha256  string
		want    []byte
		wantErr error
	}{
		{"many chunks", c.CodeSha256Hex, big, nil},
		{"missing", strings.Repeat("0", 64), nil, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.CodeZip(t.Context(), tt.sha256)
			if tt.wantErr != nil {
				wantErr(t, err, tt.wantErr)
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("CodeZip = %d bytes, %v; want %d bytes", len(got), err, len(tt.want))
			}
		})
	}
}

// otherArch is the architecture this host does not run.
func otherArch() string {
	if HostArchitecture() == "arm64" {
		return "x86_64"
	}
	return "arm64"
}

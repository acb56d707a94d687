package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/fixture"
)

type escapeResult struct {
	Name    string `json:"name"`
	Escaped bool   `json:"escaped"`
	Detail  string `json:"detail"`
}

type escapeReport struct {
	Results []escapeResult `json:"results"`
	Escaped []string       `json:"escaped"`
}

// TestEscapeSuite deploys testdata/functions/escape through the normal API
// and lets it try to break out of its instance in every way it knows. No
// attempt may succeed, and the host must be unchanged afterwards.
func TestEscapeSuite(t *testing.T) {
	n := startNode(t, nil)
	n.create(t, "escape", fixture.GoZip(t, "testdata/functions/escape"), func(in *lambda.CreateFunctionInput) {
		in.Timeout = aws.Int32(120)
		// /tmp is a tmpfs charged to the instance's memory: leave room to
		// fill it without the OOM killer ending the function.
		in.MemorySize = aws.Int32(1024)
		in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(512)}
	})
	n.create(t, "other", fixture.GoZip(t, "testdata/functions/behave"), nil)
	other := n.invoke(t, "other", map[string]any{"action": "pid"}, nil)
	if other.FunctionError != nil {
		t.Fatalf("other function: %s", other.Payload)
	}

	hostname, _ := os.ReadFile("/proc/sys/kernel/hostname")
	nonce := fmt.Sprintf("n%d", time.Now().UnixNano())
	codeDirs, _ := filepath.Glob(filepath.Join(n.dir, "code", "*"))
	params := map[string]any{
		"host_paths": append([]string{
			n.dir, filepath.Join(n.dir, "credentials"), filepath.Join(n.dir, "master.key"),
			filepath.Join(n.dir, "jetstream"), "/etc/shadow", "/root",
		}, codeDirs...),
		"host_pids":    []int{os.Getpid(), 1},
		"api_addr":     strings.TrimPrefix(n.url, "http://"),
		"other_addrs":  []string{strings.TrimPrefix(n.url, "http://")},
		"memory_mb":    1024,
		"tmp_limit_mb": 512,
		"nonce":        nonce,
	}
	out := n.invoke(t, "escape", map[string]any{"params": params}, nil)
	if out.FunctionError != nil {
		t.Fatalf("escape function failed: %s", out.Payload)
	}
	var rep escapeReport
	if err := json.Unmarshal(out.Payload, &rep); err != nil {
		t.Fatalf("bad report %s: %v", out.Payload, err)
	}
	if len(rep.Results) < 30 {
		t.Fatalf("only %d escape attempts ran", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Escaped {
			t.Errorf("ESCAPED %s: %s", r.Name, r.Detail)
		} else {
			t.Logf("held  %-22s %s", r.Name, r.Detail)
		}
	}

	// The host is unchanged.
	if now, _ := os.ReadFile("/proc/sys/kernel/hostname"); string(now) != string(hostname) {
		t.Errorf("host name changed from %q to %q", hostname, now)
	}
	// The leftover process dies with its instance.
	if _, err := n.client.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{FunctionName: aws.String("escape")}); err != nil {
		t.Fatal(err)
	}
	n.stop()
	if pids := processesWith(nonce); len(pids) > 0 {
		t.Errorf("processes of the instance survive it: %v", pids)
	}
}

// processesWith lists host processes whose command line contains s.
func processesWith(s string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			found = append(found, e.Name())
		}
	}
	return found
}

// TestPerInvocationTmp checks that with Ephemeral per-invocation a second
// invocation cannot see what the first left in /tmp.
func TestPerInvocationTmp(t *testing.T) {
	n := startNode(t, nil)
	n.create(t, "single", fixture.GoZip(t, "testdata/functions/escape"), nil)
	resp := n.signed(t, "PUT", "/2015-03-31/functions/single/configuration", []byte(`{"Sandbox":{"Ephemeral":"per-invocation"}}`))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("set per-invocation: %d", resp.StatusCode)
	}
	marker := fmt.Sprintf("m%d", time.Now().UnixNano())
	first := n.invoke(t, "single", map[string]any{"checks": []string{"tmp_cross_invocation"}, "params": map[string]any{"write_marker": marker}}, nil)
	second := n.invoke(t, "single", map[string]any{"checks": []string{"tmp_cross_invocation"}, "params": map[string]any{"read_marker": marker}}, nil)
	for _, out := range []*lambda.InvokeOutput{first, second} {
		var rep escapeReport
		if err := json.Unmarshal(out.Payload, &rep); err != nil || len(rep.Results) != 1 {
			t.Fatalf("bad report %s", out.Payload)
		}
		if rep.Results[0].Escaped {
			t.Fatalf("/tmp leaked across invocations: %s", rep.Results[0].Detail)
		}
	}
}

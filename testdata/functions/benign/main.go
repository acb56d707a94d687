// Command benign is a Lambda function doing ordinary work, for the
// detection tests' zero-false-positive run: JSON in and out, hashing and
// sorting, scratch files with generated names in /tmp, and one HTTP GET to
// the URL the event names (the test host the function is granted). It
// executes nothing and reads nothing sensitive.
//
// Event: {"n": N, "url": URL}; response: {"ok", "n", "status", "sha"}.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	N   int    `json:"n"`
	URL string `json:"url"`
}

type response struct {
	OK     bool   `json:"ok"`
	N      int    `json:"n"`
	Status int    `json:"status,omitempty"`
	SHA    string `json:"sha"`
}

var client = &http.Client{Timeout: 2 * time.Second}

func handle(_ context.Context, ev event) (response, error) {
	// Some JSON work.
	items := make([]map[string]any, 0, 16)
	for i := 0; i < 16; i++ {
		items = append(items, map[string]any{"id": (ev.N*31 + i*7) % 101, "name": fmt.Sprintf("item-%d", i)})
	}
	sort.Slice(items, func(i, j int) bool { return items[i]["id"].(int) < items[j]["id"].(int) })
	doc, err := json.Marshal(map[string]any{"n": ev.N, "items": items})
	if err != nil {
		return response{}, err
	}
	sum := sha256.Sum256(doc)

	// Scratch files with generated names.
	f, err := os.CreateTemp("", "scratch-*.json")
	if err != nil {
		return response{}, fmt.Errorf("scratch file: %w", err)
	}
	name := f.Name()
	_, err = f.Write(doc)
	f.Close()
	if err != nil {
		return response{}, err
	}
	back, err := os.ReadFile(name)
	os.Remove(name)
	if err != nil || len(back) != len(doc) {
		return response{}, fmt.Errorf("read back scratch file: %v", err)
	}
	if ev.N%5 == 0 {
		dir, err := os.MkdirTemp("", "job-*")
		if err != nil {
			return response{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, "out.txt"), doc[:32], 0o600); err != nil {
			return response{}, err
		}
		os.RemoveAll(dir)
	}

	out := response{OK: true, N: ev.N, SHA: hex.EncodeToString(sum[:8])}
	if ev.URL != "" {
		resp, err := client.Get(ev.URL)
		if err != nil {
			return response{}, fmt.Errorf("get %s: %w", ev.URL, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		out.Status = resp.StatusCode
	}
	return out, nil
}

func main() { lambda.Start(handle) }

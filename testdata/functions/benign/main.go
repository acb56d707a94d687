// Command benign is a Lambda function doing ordinary work, for the
// detection tests' zero-false-positive run: JSON in and out, sorting and
// hashing, a scratch file with a generated name in /tmp (and, every fourth
// invocation, a scratch directory), and one HTTP GET to the URL the event
// names, the test host the function is granted. It executes nothing, reads
// no file it did not write, and connects nowhere but that URL: no proxy
// from the environment, no redirect followed. Give the URL an IP address:
// a host name would also need a resolver.
//
// The event is {"n": N, "url": URL} (url optional); the response is
// {"ok": true, "n": N, "status": HTTP status (0 without url), "sha": hex}.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
	Status int    `json:"status"`
	Bytes  int64  `json:"bytes"` // length of the HTTP body read
	SHA    string `json:"sha"`   // SHA-256 of the document, hex
}

// item is one entry of the document each invocation builds.
type item struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

// document is what an invocation builds, writes and hashes.
type document struct {
	N     int    `json:"n"`
	Items []item `json:"items"`
	Total int    `json:"total"`
}

const (
	itemCount   = 32
	httpTimeout = 2 * time.Second
	maxBody     = 1 << 20
)

// httpClient contacts the URL it is given and nothing else, and keeps its
// connection to the test host between invocations as a real function's
// client would.
var httpClient = &http.Client{
	Timeout:       httpTimeout,
	Transport:     &http.Transport{Proxy: nil, MaxIdleConns: 1},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func handle(ctx context.Context, ev event) (response, error) {
	doc, err := json.Marshal(build(ev.N))
	if err != nil {
		return response{}, fmt.Errorf("benign: marshal document: %w", err)
	}
	sum := sha256.Sum256(doc)
	if err := scratchFile(doc); err != nil {
		return response{}, fmt.Errorf("benign: %w", err)
	}
	if ev.N%4 == 0 {
		if err := scratchDir(doc); err != nil {
			return response{}, fmt.Errorf("benign: %w", err)
		}
	}
	out := response{OK: true, N: ev.N, SHA: hex.EncodeToString(sum[:])}
	if ev.URL != "" {
		if out.Status, out.Bytes, err = get(ctx, ev.URL); err != nil {
			return response{}, fmt.Errorf("benign: %w", err)
		}
	}
	return out, nil
}

// build makes a document from n: items with pseudo-random ids, sorted by
// id then name, and a checksum of the ids.
func build(n int) document {
	d := document{N: n, Items: make([]item, itemCount)}
	for i := range d.Items {
		id := (n*31 + i*17) % 101
		d.Items[i] = item{ID: id, Name: fmt.Sprintf("item-%02d", i), Score: float64(id) / 7}
		d.Total += id
	}
	slices.SortFunc(d.Items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Name, b.Name))
	})
	return d
}

// scratchFile writes doc to a new file with a random name in the temporary
// directory, reads it back and removes it.
func scratchFile(doc []byte) error {
	f, err := os.CreateTemp("", "scratch-*.json")
	if err != nil {
		return fmt.Errorf("create scratch file: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.Write(doc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write scratch file: %w", err)
	}
	back, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read scratch file: %w", err)
	}
	if !bytes.Equal(back, doc) {
		return errors.New("scratch file read back differs from what was written")
	}
	return os.Remove(name)
}

// scratchDir makes a temporary directory with a file in it, lists it and
// removes it all.
func scratchDir(doc []byte) error {
	dir, err := os.MkdirTemp("", "job-*")
	if err != nil {
		return fmt.Errorf("create scratch dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "result.json"), doc, 0o600); err != nil {
		return fmt.Errorf("write in scratch dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		return fmt.Errorf("list scratch dir: %d entries, %v", len(entries), err)
	}
	return os.RemoveAll(dir)
}

// get sends one GET to url and reads the body (at most maxBody bytes).
func get(ctx context.Context, url string) (status int, n int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("request %s: %w", url, err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	n, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, 0, fmt.Errorf("read body of %s: %w", url, err)
	}
	return resp.StatusCode, n, nil
}

func main() { lambda.Start(handle) }

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHandle(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/data", http.StatusFound)
			return
		}
		w.Write([]byte(`{"items":[1,2,3]}`))
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name       string
		ev         event
		wantStatus int
		wantBytes  int64
		wantHits   int64
		wantErr    string
	}{
		{name: "no url", ev: event{N: 3}},
		{name: "with scratch dir", ev: event{N: 8}},
		{name: "get", ev: event{N: 1, URL: srv.URL + "/data"}, wantStatus: 200, wantBytes: 17, wantHits: 1},
		{name: "redirect not followed", ev: event{N: 2, URL: srv.URL + "/moved"}, wantStatus: 302, wantBytes: -1, wantHits: 1},
		{name: "unsupported scheme", ev: event{N: 5, URL: "ftp://127.0.0.1/x"}, wantErr: "unsupported protocol scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			before := hits.Load()
			r, err := handle(context.Background(), tc.ev)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK || r.N != tc.ev.N || r.Status != tc.wantStatus || len(r.SHA) != 64 {
				t.Errorf("response = %+v", r)
			}
			if tc.wantBytes >= 0 && r.Bytes != tc.wantBytes {
				t.Errorf("bytes = %d, want %d", r.Bytes, tc.wantBytes)
			}
			if got := hits.Load() - before; got != tc.wantHits {
				t.Errorf("server saw %d requests, want %d", got, tc.wantHits)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left behind in the temporary directory: %v", left)
			}
		})
	}
}

func TestBuildIsDeterministicAndSorted(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, n := range []int{0, 1, 42, -7} {
		a, b := build(n), build(n)
		if !slices.Equal(a.Items, b.Items) || a.Total != b.Total {
			t.Errorf("build(%d) differs between calls", n)
		}
		if !slices.IsSortedFunc(a.Items, func(x, y item) int { return x.ID - y.ID }) {
			t.Errorf("build(%d) items not sorted by id: %v", n, a.Items)
		}
	}
	r1, _ := handle(context.Background(), event{N: 1})
	r2, _ := handle(context.Background(), event{N: 2})
	if r1.SHA == r2.SHA {
		t.Error("different n, same sha")
	}
}

package profiles

import (
	"context"
	"testing"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/profile"
	"moat.dev/moat/internal/store"
)

func newTestStores(t *testing.T, n int, learning profile.Window) []*Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), IdleCollect: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	var out []*Store
	for range n {
		s, err := New(Options{KV: st.Monitor, Learning: learning, SaveInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
		out = append(out, s)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestChangeFromAnotherNode: an approve made through another node's
// store sharing the bucket reaches this one's cache.
func TestChangeFromAnotherNode(t *testing.T) {
	s := newTestStores(t, 2, profile.Window{Invocations: 1})
	here, other := s[0], s[1]
	ctx := context.Background()
	if err := here.Prepare(ctx, "fn", "1"); err != nil {
		t.Fatal(err)
	}
	ev := &detect.Event{Kind: "exec", Function: "fn", Version: "1", RequestID: "r1", Phase: detect.PhaseInvoke,
		Path: "/var/task/bootstrap", Exe: "/var/task/bootstrap"}
	if alerts := here.Judge(ev); len(alerts) != 0 {
		t.Fatalf("a learning profile raised %v", alerts)
	}
	here.Invoked("fn", "1")
	waitFor(t, "learned", func() bool {
		p, err := here.Profile(ctx, "fn", "1")
		return err == nil && p.State == profile.StateLearned
	})
	if _, err := other.Approve(ctx, "fn", "1"); err != nil {
		t.Fatal(err)
	}
	e, err := here.entry(ctx, "fn", "1")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the approve to reach the other store's cache", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.p.State == profile.StateApproved
	})
	// The approved profile is what enforce mode gets.
	exec, _, ok, err := here.Enforcement(ctx, "fn", "1")
	if err != nil || !ok || len(exec) == 0 {
		t.Fatalf("Enforcement = %v, %v, %v", exec, ok, err)
	}
}

package store

import (
	"testing"
	"time"
)

// TestIdleCollector feeds the collector ticks with a fake runtime: it must
// collect only at ticks the runtime did not collect before, at most
// idleCollections in a row, and start over once the runtime collects again.
func TestIdleCollector(t *testing.T) {
	var gcs uint64 // every collection: the runtime's and the collector's
	collected := 0
	c := &idleCollector{
		cycles:  func() uint64 { return gcs },
		collect: func() { collected++; gcs++ },
		left:    idleCollections,
	}
	type step struct {
		name       string
		runtimeGCs uint64 // collections the runtime runs before the tick
		want       bool   // the tick collects
	}
	steps := []step{{"busy", 2, false}, {"still busy", 1, false}}
	for range idleCollections {
		steps = append(steps, step{"quiet", 0, true})
	}
	steps = append(steps,
		step{"quiet, everything released", 0, false},
		step{"quiet, still nothing to do", 0, false},
		step{"busy again", 1, false},
		step{"quiet again", 0, true},
		step{"busy between two collections", 3, false},
		step{"quiet once more", 0, true},
	)
	want := 0
	for i, s := range steps {
		gcs += s.runtimeGCs
		if got := c.tick(); got != s.want {
			t.Fatalf("tick %d (%s) collected = %v, want %v", i, s.name, got, s.want)
		}
		if s.want {
			want++
		}
		if collected != want {
			t.Fatalf("tick %d (%s): %d collections so far, want %d", i, s.name, collected, want)
		}
	}
}

// TestStoreStopsIdleCollector checks that Close stops the collector's
// goroutine (a leak would keep collecting in a process that closed its
// store) and that a negative IdleCollect starts none.
func TestStoreStopsIdleCollector(t *testing.T) {
	tests := []struct {
		name    string
		every   time.Duration
		running bool
	}{
		{"default", 0, true},
		{"off", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), Options{DataDir: t.TempDir(), IdleCollect: tt.every})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.stopIdle != nil; got != tt.running {
				s.Close()
				t.Fatalf("collector running = %v, want %v", got, tt.running)
			}
			s.Close() // returns only once the collector has stopped
		})
	}
}

package store

import (
	"context"
	"runtime"
	"runtime/metrics"
	"time"
)

// Defaults of Options.IdleCollect and of the number of collections run
// once the process is quiet.
const (
	defaultIdleCollect = 5 * time.Second
	idleCollections    = 6
)

// idleCollector runs garbage collections once the process goes quiet, so
// that the memory used by a burst of work goes back to the OS within about
// half a minute instead of staying resident.
//
// Go collects when the heap has doubled since the last collection, and
// forces one only after two minutes without. In a quiet process the heap
// goal set during a burst of uploads (request bodies, decoded zips, code
// chunks in flight through the server) therefore stays, and the runtime's
// scavenger keeps that much memory. The embedded server adds to it: a
// stream's block cache (up to 8 MiB) is dropped 10 s after last use onto a
// weak pointer, then into a sync.Pool, and only later collections free it
// (a pooled buffer survives one more).
//
// So at every tick of the interval in which the runtime did not collect on
// its own, the collector runs one collection, at most idleCollections in a
// row. A busy process collects often by itself and is left alone; an idle
// one is left alone once everything has been released. After each
// collection the runtime's background scavenger returns the freed pages at
// its own pace.
type idleCollector struct {
	cycles  func() uint64 // garbage collections completed so far
	collect func()        // runs one garbage collection

	last uint64 // cycles after the previous tick
	left int    // collections still to run while the process stays quiet
}

func newIdleCollector() *idleCollector {
	sample := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	c := &idleCollector{
		cycles: func() uint64 {
			metrics.Read(sample)
			return sample[0].Value.Uint64()
		},
		collect: runtime.GC,
	}
	c.last, c.left = c.cycles(), idleCollections
	return c
}

// run calls tick at every interval until ctx is done.
func (c *idleCollector) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.tick()
		}
	}
}

// tick collects if the runtime has not collected since the previous tick
// and the quiet spell's collections are not all used up. It reports
// whether it collected.
func (c *idleCollector) tick() bool {
	if n := c.cycles(); n != c.last {
		// The runtime collected on its own: the process is busy, or just
		// was.
		c.last, c.left = n, idleCollections
		return false
	}
	if c.left == 0 {
		return false
	}
	c.left--
	c.collect()
	c.last = c.cycles()
	return true
}

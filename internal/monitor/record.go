package monitor

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"time"

	"moat.dev/moat/internal/detect"
)

// Record is the forensic record of one invocation: every event of the
// function's processes while it ran (and the init or idle events before
// it), the alerts they raised, and what could not be kept. A record with
// no RequestID holds an instance's last idle events.
type Record struct {
	RequestID string `json:"request_id,omitempty"`
	// Source is what triggered the invocation: invoke (the Invoke API),
	// async (a queued Event invocation), url:<url-id> (a function URL),
	// schedule:<group>/<name> (a schedule's tick).
	Source   string    `json:"source,omitempty"`
	Function string    `json:"function"`
	Version  string    `json:"version"`
	Instance string    `json:"instance"`
	Runtime  string    `json:"runtime,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	// FirstInvocation marks the instance's first invocation; its record
	// holds the instance's init events.
	FirstInvocation bool           `json:"first_invocation,omitempty"`
	Events          []detect.Event `json:"events"`
	Alerts          []AlertRef     `json:"alerts,omitempty"`
	// Omitted counts events beyond the record's bound, by kind in
	// OmittedKinds; SensorDropped counts events the kernel could not
	// deliver (the ring buffer was full) while the record was open.
	Omitted       int            `json:"omitted,omitempty"`
	OmittedKinds  map[string]int `json:"omitted_kinds,omitempty"`
	SensorDropped uint64         `json:"sensor_dropped,omitempty"`
	// Quiet marks a record of an invocation that did nothing the sensor
	// reports; such records are kept in memory on the node that ran the
	// invocation, not stored.
	Quiet bool `json:"quiet,omitempty"`
}

// quietRing remembers the last quiet invocations of this node.
type quietRing struct {
	mu    sync.Mutex
	byID  map[string]Record
	order []string
	next  int
}

const quietKept = 1 << 16

func (q *quietRing) remember(rec *Record) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.byID == nil {
		q.byID = make(map[string]Record, 1024)
		q.order = make([]string, quietKept)
	}
	if old := q.order[q.next]; old != "" {
		delete(q.byID, old)
	}
	r := *rec
	r.Quiet = true
	q.byID[r.RequestID] = r
	q.order[q.next] = r.RequestID
	q.next = (q.next + 1) % quietKept
}

func (q *quietRing) get(id string) (Record, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r, ok := q.byID[id]
	return r, ok
}

// AlertRef names an alert raised during the invocation.
type AlertRef struct {
	ID       string          `json:"id"`
	Rule     string          `json:"rule"`
	Severity detect.Severity `json:"severity"`
	Summary  string          `json:"summary"`
}

// maxRecordBytes keeps a record under JetStream's default message size.
const maxRecordBytes = 900 << 10

func (m *Monitor) newRecord(in *instance, requestID string, start time.Time) *Record {
	return &Record{
		RequestID: requestID,
		Function:  in.info.Function,
		Version:   in.info.Version,
		Instance:  in.id,
		Runtime:   in.info.Runtime,
		Start:     start,
		Events:    []detect.Event{},
	}
}

func (r *Record) add1(ev detect.Event, limit int) {
	if len(r.Events) < limit {
		r.Events = append(r.Events, ev)
		return
	}
	r.omit(ev.Kind)
}

func (r *Record) add(evs []detect.Event, limit int) {
	for _, ev := range evs {
		r.add1(ev, limit)
	}
}

func (r *Record) omit(kind string) {
	r.Omitted++
	if r.OmittedKinds == nil {
		r.OmittedKinds = map[string]int{}
	}
	r.OmittedKinds[kind]++
}

// encode marshals the record, dropping its last events (counted as
// omitted) until it fits in limit bytes.
func (r *Record) encode(limit int) ([]byte, error) {
	for {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode record: %w", err)
		}
		if len(b) <= limit || len(r.Events) == 0 {
			return b, nil
		}
		// Keep the first events (exec of the tree's roots come first)
		// and cut a share proportional to the excess.
		keep := len(r.Events) * limit / len(b) * 9 / 10
		if keep >= len(r.Events) {
			keep = len(r.Events) - 1
		}
		for _, ev := range r.Events[keep:] {
			r.omit(ev.Kind)
		}
		r.Events = r.Events[:keep]
	}
}

// key is the record's last subject token: the request id, or
// "instance-<id>" for an instance record.
func (r *Record) key() string {
	if r.RequestID != "" {
		return subjectToken(r.RequestID)
	}
	return "instance-" + r.Instance
}

var unsafeToken = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// subjectToken makes s safe as one NATS subject token.
func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return unsafeToken.ReplaceAllString(s, "_")
}

// RequestIDPattern is what a request id given to Trace must look like.
var RequestIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Package monitor turns what the runtime sensor observes into what users
// read: every sensor event is attributed to its instance, function,
// version and the request running at that moment; the events of each
// invocation are stored as one forensic record in JetStream (moat trace);
// each event goes through the rules engine and the profile service
// (package profiles: the function version's behaviour profile), and what
// they find is published as an alert (moat alerts; package webhook sends
// them on) and counted for Prometheus.
//
// # Attribution
//
// The sandbox calls [Monitor.Observe] with an instance's cgroup id before
// the instance's first process enters the cgroup, so no event of the
// function escapes. Events before the exec of the function's bootstrap are
// moat's own instance init and are not reported. The dispatcher calls
// [Monitor.Begin] and [Monitor.End] around each invocation; an event
// belongs to the request whose span holds its kernel timestamp, to the
// init phase before the first invocation, or to the idle phase between
// invocations (idle and init events are stored with the next invocation's
// record, or in an instance record when the instance ends first). A
// record is written once the sensor has had time to deliver the
// invocation's last events (a few poll intervals after End).
//
// # What it must never do
//
//   - Never block an invocation: Begin and End only take a lock and note
//     the time; records and alerts are written asynchronously, and a
//     failure to store one is counted and logged, never returned to the
//     invoker.
//   - Never lose evidence silently: events the sensor dropped, events
//     beyond a record's bound, events of unknown cgroups and store
//     failures are all counted, shown in status and metrics, and noted in
//     the record they belong to.
//   - Never let a function's events reach another function's record: the
//     cgroup id, given by the kernel, is the only key.
package monitor

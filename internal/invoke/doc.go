// Package invoke runs invocations: it resolves a function name and
// qualifier to a version, takes a concurrency slot or throttles, picks a warm
// instance or spawns one, hands the event to the instance's Runtime API,
// enforces the deadline, and frames and stores the invocation's log. It also
// runs the asynchronous queue: accepted Event invocations, their retries and
// their destinations.
//
// It never isolates processes itself (the sandbox package does, behind the
// Spawner seam) and never stores function records (the registry does).
//
// Lock order: Dispatcher.mu before pool.mu. Neither is held while an
// instance is spawned or an invocation runs.
package invoke

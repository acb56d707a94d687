// Package profile owns behaviour profiles: for one function version, the
// executables it runs, the paths it reads and writes beyond its code and
// the system's files, and the destinations it connects to.
//
// A profile is born learning ([New], or [Inherit] from the previous
// version's profile). While it learns, [Profile.Observe] adds what each
// attributed event does, generalized so that names made up at run time
// (/tmp/scratch-7f3a9c1e.json) become patterns that match the next
// invocation's names (/tmp/scratch-*.json); the rules are in
// generalize.go. [Profile.Invoked] counts invocations and ends the
// window (a number of invocations or a duration, whichever comes first);
// [Profile.Approve] is a user's approval. After learning,
// [Profile.Check] finds what an event does outside the profile, which
// [DeviationAlert] turns into an alert. An inheriting profile also
// reports, once each, what the new version does that the old one never
// did ([Profile.Drift], [DriftAlert]).
//
// Which events count: exec (the executable), open (read intent: read;
// write, create or truncate intent: write), unlink, rename (both names)
// and chmod (write), and connect over inet, inet6 or unix (connect) —
// and sendto naming a destination, since an unconnected datagram goes
// somewhere as surely as a connection. Other kinds are left to rules.
// Attempts count like successes, except opens for reading that found
// nothing (ENOENT, ENOTDIR), which libraries do at every start. What is
// never listed —
// the code, system files, the usual /etc files, the process's own /proc
// entries, harmless devices, the Runtime API — is in one place,
// quiet.go.
//
// Users read and edit profiles as YAML ([Profile.YAML], [Parse]): the
// encoding is deterministic (fixed field order, sorted lists, UTC times,
// a header comment explaining the fields and the pattern syntax), and a
// document is untrusted input, parsed strictly and validated
// ([Profile.Validate]) with line numbers in its errors.
//
// Lookups are on the monitor's hot path: the lists are compiled into
// segment tries and destination maps, and [Profile.Check] of an event the
// profile covers does not allocate.
//
// What it must never do: I/O of any kind (the monitor stores profiles
// and feeds events), panic on any document or event, accept a document
// it would encode differently or could not read back, learn an entry that
// does not validate or does not cover the action it was learned from,
// or change state other than learning → learned → approved (or
// learning → approved).
package profile

// Package registry owns functions, their versions, aliases and settings: the
// records, their validation, persistence in the JetStream KV bucket and an
// in-memory cache kept current by watching that bucket. It never runs code.
package registry

// Registry is the live function registry. (Being implemented.)
type Registry struct{}

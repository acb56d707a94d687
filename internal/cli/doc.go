// Package cli is the moat command line: `moat up`, which runs a node, and
// the client commands (deploy, invoke, ls, logs, ...), which talk to a node
// over its Lambda-compatible API exactly as the AWS SDK does, signed with
// SigV4.
//
// It owns argument parsing, help text, credential and endpoint discovery and
// the rendering of results. It never reaches into a node's storage or
// runtime: everything a client command does goes over HTTP, so it works
// the same against a local node and a remote one.
//
// Exit codes: 0 success, 1 a failed operation (an API error, a function
// error, an unreachable node), 2 a usage error caught before anything was
// sent.
package cli

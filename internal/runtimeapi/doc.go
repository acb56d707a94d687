// Package runtimeapi serves the AWS Lambda Runtime API (version 2018-06-01)
// to one function instance.
//
// A Server is the state machine of one instance as the runtime sees it: the
// bootstrap initialises and calls invocation/next; the dispatcher hands it
// exactly one invocation at a time with Invoke; the runtime answers with
// /response or /error. Every other transition is refused with the error the
// Runtime API documents, so a confused runtime cannot answer a request that
// is not its own.
//
// The package never decides what to run or when an instance dies: it
// reports what the runtime said and leaves timeouts, kills and logs to the
// invoke package. It never listens on its own: the sandbox creates the
// listener inside the instance's network namespace.
package runtimeapi

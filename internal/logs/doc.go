// Package logs owns what moat records of a function's output: the platform
// lines that frame each invocation (START, END, REPORT) in AWS Lambda's exact
// format, the Record that stores one chunk of an instance's output in the
// JetStream logs stream, the Writer that publishes records, and the Reader
// that replays and follows them.
//
// Two things it must never do:
//
//   - block the invoke path: Writer.Write hands a record to an asynchronous
//     publish and, when the store falls behind, gives up after a short bounded
//     wait, counting the record as dropped and saying so in a rate-limited
//     warning (loss is never silent);
//   - interpret or log what a function printed: records are stored and read
//     back verbatim, and moat's own logs carry only counts and names.
package logs

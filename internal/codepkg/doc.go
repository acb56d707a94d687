// Package codepkg owns function code packages: the zip files that API callers
// upload with CreateFunction and UpdateFunctionCode.
//
// It validates a package (Inspect), gives it a content address (the sha256 of
// the zip bytes, also reported as Lambda's CodeSha256), writes it to disk
// safely (Unpack), keeps one read-only unpacked copy per node (Cache), and
// builds packages from a directory for the CLI (Zip).
//
// Every zip is untrusted input. This package must never:
//   - write outside the destination it was given, or leave a half-written
//     package behind when it fails;
//   - trust the sizes, counts or modes a zip declares: unpacked size is
//     counted from the bytes actually decompressed, and modes are rebuilt
//     from a short allow list (no setuid, setgid or sticky bits, no devices);
//   - put a host path into an error message: ErrInvalid and ErrTooLarge
//     messages are shown to API callers and name only zip entries.
//
// It does not store packages (the object store in internal/store does) and
// knows nothing about functions, versions or runtimes beyond the bootstrap
// rule of provided.* runtimes.
package codepkg

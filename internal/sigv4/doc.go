// Package sigv4 verifies AWS Signature Version 4 on incoming API requests,
// in both forms the AWS SDKs and CLI produce: the Authorization header and
// the presigned query string.
//
// It owns the canonical request, the string to sign, the signing-key
// derivation (and a small cache of derived keys) and the refusal codes the
// Lambda API returns for authentication failures. It is pure: it reads the
// request it is given and never reads the body (the caller passes the body's
// SHA-256), never writes a response, never logs, and never puts a secret,
// a signature or a derived key in an error.
//
// The canonical request follows the AWS rules for services other than S3:
// the URI path is escaped a second time, the query string is re-encoded with
// RFC 3986 escaping and sorted, header values are trimmed and their inner
// runs of spaces collapsed. Paths are checked as the AWS SDK for Go signs them
// (as sent) and, when they differ, as botocore signs them (dot segments and
// empty segments removed), so both families of clients verify.
package sigv4

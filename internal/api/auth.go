package api

import (
	"errors"
	"net/http"

	"moat.dev/moat/internal/sigv4"
)

// SigV4 authenticates requests with AWS Signature Version 4 against the
// node's access keys.
type SigV4 struct {
	Verifier *sigv4.Verifier
}

// Authenticate implements Authenticator.
func (a SigV4) Authenticate(r *http.Request, payloadSHA256 []byte) (string, error) {
	ak, err := a.Verifier.Verify(r, payloadSHA256)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return "", &Error{Code: Code(se.Code), Message: se.Message}
		}
		return "", &Error{Code: CodeInvalidSignature, Message: "The request signature could not be verified."}
	}
	return ak, nil
}

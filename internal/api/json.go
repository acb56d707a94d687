package api

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// writeJSON writes v as the JSON response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

// decodeJSON decodes a request body into v. Unknown fields are ignored, as
// AWS ignores them; malformed JSON, trailing data or a wrong type is the
// caller's error.
//
// json.Unmarshal reads body in place. A json.Decoder would first copy it
// into a buffer of its own that grows by doubling: for a CreateFunction
// upload that is twice the body again, all garbage after the request.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(CodeInvalidRequestContent, "Could not parse request body into json: request body is empty")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(CodeInvalidRequestContent, "Could not parse request body into json: "+err.Error())
	}
	return nil
}

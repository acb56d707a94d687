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
// AWS ignores them; malformed JSON or a wrong type is the caller's error.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(CodeInvalidRequestContent, "Could not parse request body into json: request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errorf(CodeInvalidRequestContent, "Could not parse request body into json: "+err.Error())
	}
	if dec.More() {
		return errorf(CodeInvalidRequestContent, "Could not parse request body into json: trailing data after the JSON value")
	}
	return nil
}

package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadBody(t *testing.T) {
	const limit = 10
	tests := []struct {
		name   string
		body   io.Reader // nil: no body
		length int64     // Content-Length; -1: unknown (chunked)
		want   string
		code   Code // error code, "" for none
	}{
		{"no body", nil, 0, "", ""},
		{"known length", strings.NewReader("0123456789"), 10, "0123456789", ""},
		{"unknown length", strings.NewReader("01234"), -1, "01234", ""},
		{"known length over limit", strings.NewReader("0123456789a"), 11, "", CodeRequestEntityTooLarge},
		{"unknown length over limit", strings.NewReader("0123456789a"), -1, "", CodeRequestEntityTooLarge},
		{"shorter than its length", strings.NewReader("0123"), 5, "", CodeInvalidRequestContent},
		{"longer than its length", strings.NewReader("012345"), 5, "", CodeInvalidRequestContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/2015-03-31/functions", nil)
			if tt.body != nil {
				r.Body = io.NopCloser(tt.body)
			}
			r.ContentLength = tt.length
			got, err := readBody(r, limit)
			if tt.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.code {
					t.Fatalf("readBody = %q, %v; want error %s", got, err, tt.code)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("readBody = %q, %v; want %q", got, err, tt.want)
			}
			if tt.length > 0 && cap(got) != int(tt.length) {
				t.Errorf("buffer capacity %d for a body of %d bytes: read in more than one allocation", cap(got), tt.length)
			}
		})
	}
}

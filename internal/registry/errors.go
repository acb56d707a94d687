package registry

import (
	"fmt"
	"strings"
)

// apiError is a failure the API caller caused, carrying the message to show
// them and the sentinels it matches.
type apiError struct {
	msg   string
	kinds []error
}

func (e *apiError) Error() string   { return e.msg }
func (e *apiError) Unwrap() []error { return e.kinds }

func newError(kind error, format string, args ...any) error {
	kinds := []error{kind}
	if kind == ErrValidation || kind == ErrInvalidZip {
		kinds = append(kinds, ErrInvalid)
	}
	return &apiError{msg: fmt.Sprintf(format, args...), kinds: kinds}
}

func notFound(format string, args ...any) error { return newError(ErrNotFound, format, args...) }
func invalid(format string, args ...any) error  { return newError(ErrInvalid, format, args...) }

// validation collects violations of the API model's constraints and reports
// them all at once, worded as AWS words them.
type validation []string

func (v *validation) add(format string, args ...any) {
	*v = append(*v, fmt.Sprintf(format, args...))
}

func (v *validation) min(field string, value, min int) {
	if value < min {
		v.add("Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", value, field, min)
	}
}

func (v *validation) max(field string, value, max int) {
	if value > max {
		v.add("Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", value, field, max)
	}
}

func (v *validation) between(field string, value *int, min, max int) {
	if value != nil {
		v.min(field, *value, min)
		v.max(field, *value, max)
	}
}

func (v *validation) maxLen(field, value string, max int) {
	if len(value) > max {
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", clip(value), field, max)
	}
}

func (v *validation) pattern(field, value, pattern string) {
	v.add("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", clip(value), field, pattern)
}

func (v *validation) required(field string) {
	v.add("Value null at '%s' failed to satisfy constraint: Member must not be null", field)
}

func (v validation) err() error {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return newError(ErrValidation, "1 validation error detected: %s", v[0])
	}
	return newError(ErrValidation, "%d validation errors detected: %s", len(v), strings.Join(v, "; "))
}

// clip keeps caller-supplied values in messages short.
func clip(s string) string {
	const n = 140
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

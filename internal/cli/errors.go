package cli

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"

	"github.com/aws/smithy-go"
)

// usageError is a mistake in the command line, found before anything was
// sent. It exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError ends the command with code after printing msg (if any) on
// stderr: for outcomes already reported on stdout, such as a function error.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// errorLine renders a failed operation as one line:
//
//	moat: <operation>: <AWS error code>: <message>
//
// where the operation is the API operation when the failure came from one
// (CreateFunction, Invoke, Logs), else the command's name.
func errorLine(cmd string, err error) string {
	op := cmd
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		op = oe.OperationName
		err = oe.Err
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if msg := ae.ErrorMessage(); msg != "" {
			return fmt.Sprintf("moat: %s: %s: %s", op, ae.ErrorCode(), msg)
		}
		return fmt.Sprintf("moat: %s: %s", op, ae.ErrorCode())
	}
	var ue *url.Error
	var ne *net.OpError
	if errors.As(err, &ue) && errors.As(err, &ne) && ne.Op == "dial" {
		why := ne.Err.Error()
		var errno syscall.Errno
		if errors.As(ne.Err, &errno) {
			why = errno.Error()
		}
		where := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			where = u.Scheme + "://" + u.Host
		}
		return fmt.Sprintf("moat: %s: cannot reach moat at %s: %s (is 'moat up' running?)", op, where, why)
	}
	return fmt.Sprintf("moat: %s: %v", op, err)
}

//go:build !amd64

package main

import (
	"context"
	"runtime"
)

// checkIOPerm: only x86 has I/O port system calls.
func checkIOPerm(ctx context.Context, p *params) *report {
	r := &report{}
	r.notef("no ioperm or iopl on %s", runtime.GOARCH)
	return r
}

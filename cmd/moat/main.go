// Command moat runs AWS Lambda functions on your own Linux machines. See
// `moat help`; the command line lives in internal/cli.
package main

import (
	"os"

	"moat.dev/moat/internal/cli"
	"moat.dev/moat/internal/sandbox"
)

func main() {
	// When the node re-executes this binary as an instance init, Init takes
	// over the process and never returns.
	sandbox.Init()
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

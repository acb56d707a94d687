package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"moat.dev/moat/internal/node"
)

// app is one run of the command line with its surroundings made explicit,
// so that tests can drive it without a process of its own.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	httpClient     *http.Client
	// runNode runs a node for `moat up`; node.Run outside tests.
	runNode func(ctx context.Context, opts node.Options, ready func(addr string)) error
	// examples holds the bundled example zips at its root.
	examples fs.FS
}

// Main runs the moat command line with args (without the program name) and
// returns the process exit code. SIGINT and SIGTERM cancel the running
// command; a second signal ends the process at once.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default action for the next signal
	}()
	a := &app{
		stdin:    stdin,
		stdout:   stdout,
		stderr:   stderr,
		getenv:   os.Getenv,
		runNode:  node.Run,
		examples: bundledExamplesFS(),
	}
	return a.main(ctx, args)
}

// command is one `moat` subcommand.
type command struct {
	name    string
	args    string // what follows "moat <name>" in the usage line
	summary string // one line for the command list
	help    string // the description under the usage line
	group   string
	// run defines its flags on c.fs, calls c.parse before doing anything
	// else, and then does its work.
	run func(ctx context.Context, c *cmdCtx) error
}

// Command groups, in the order the top-level help lists them.
const (
	groupServer    = "Run a node"
	groupFunctions = "Functions"
	groupObserve   = "Observe"
	groupOther     = "Other"
)

var commands []*command

func init() {
	commands = []*command{
		upCommand,
		deployCommand, invokeCommand, lsCommand, getCommand, rmCommand, publishCommand,
		aliasCommand, concurrencyCommand, asyncConfigCommand, urlCommand, scheduleCommand, eventsCommand,
		logsCommand, destinationCommand, statusCommand,
		traceCommand, alertsCommand, profileCommand, rulesCommand,
		versionCommand,
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.topHelp(a.stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			if lookup(args[1]) == nil {
				fmt.Fprintf(a.stderr, "moat: unknown command %q\nRun 'moat help' for the list of commands.\n", args[1])
				return 2
			}
			return a.runCommand(ctx, lookup(args[1]), []string{"-h"})
		}
		a.topHelp(a.stdout)
		return 0
	case "-v", "--version":
		return a.runCommand(ctx, versionCommand, nil)
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(a.stderr, "moat: unknown command %q\nRun 'moat help' for the list of commands.\n", args[0])
		return 2
	}
	return a.runCommand(ctx, cmd, args[1:])
}

func (a *app) runCommand(ctx context.Context, cmd *command, args []string) int {
	c := &cmdCtx{app: a, cmd: cmd, fs: newFlagSet("moat " + cmd.name), args: args}
	err := cmd.run(ctx, c)
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		c.printHelp(a.stdout)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "moat %s: %s\nUsage: moat %s %s\nRun 'moat %s -h' for help.\n",
			cmd.name, ue.msg, cmd.name, cmd.args, cmd.name)
		return 2
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(a.stderr, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(a.stderr, errorLine(cmd.name, err))
	return 1
}

func (a *app) topHelp(w io.Writer) {
	var b strings.Builder
	b.WriteString(`moat runs unmodified AWS Lambda functions on your own Linux machines,
behind a Lambda-compatible API that the AWS SDKs and CLI use as they are.

Usage:
  moat <command> [arguments] [flags]
`)
	for _, g := range []string{groupServer, groupFunctions, groupObserve, groupOther} {
		fmt.Fprintf(&b, "\n%s:\n", g)
		for _, c := range commands {
			if c.group == g {
				fmt.Fprintf(&b, "  %-13s %s\n", c.name, c.summary)
			}
		}
	}
	b.WriteString(`
Client commands reach moat at --endpoint, $MOAT_ENDPOINT or
http://127.0.0.1:9000, and sign with the --profile ($MOAT_PROFILE, default
"moat") keys from the credentials file in the data directory, or with
$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY when that file is absent.

Run 'moat help <command>' or 'moat <command> -h' for a command's flags.
`)
	io.WriteString(w, b.String())
}

// newFlagSet returns a flag set that reports errors instead of printing
// them: the caller renders usage errors itself.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// cmdCtx is what a running command works with.
type cmdCtx struct {
	*app
	cmd  *command
	fs   *flag.FlagSet
	args []string

	output string // --output, when the command defines it
	client *clientFlags
}

// parse parses the command's flags, which may come before, between or
// after its positional arguments, and returns the positional arguments.
// "--" ends the flags. It returns flag.ErrHelp for -h.
func (c *cmdCtx) parse() ([]string, error) {
	args := c.args
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			// The flag package names flags with one dash; moat's help uses two.
			return nil, usagef("%s", strings.Replace(err.Error(), "defined: -", "defined: --", 1))
		}
		rest := c.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if c.output != "" && c.output != "text" && c.output != "json" {
		return nil, usagef("--output must be text or json, not %q", c.output)
	}
	return pos, nil
}

// parseN is parse that also checks the number of positional arguments.
func (c *cmdCtx) parseN(min, max int) ([]string, error) {
	pos, err := c.parse()
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) < min:
		return nil, usagef("missing arguments")
	case max >= 0 && len(pos) > max:
		return nil, usagef("unexpected argument %q", pos[max])
	}
	return pos, nil
}

// outputFlag defines --output.
func (c *cmdCtx) outputFlag() {
	c.fs.StringVar(&c.output, "output", "text", "output format: `text|json`")
}

// isSet reports whether the flag was given on the command line.
func (c *cmdCtx) isSet(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func (c *cmdCtx) json() bool { return c.output == "json" }

func (c *cmdCtx) printHelp(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: moat %s %s\n\n%s\n", c.cmd.name, c.cmd.args, strings.TrimSpace(c.cmd.help))
	first := true
	c.fs.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nFlags:\n")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n      %s", usage)
		switch f.DefValue {
		case "", "0", "false", "[]":
		default:
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	io.WriteString(w, b.String())
}

// Command egrunner is the function the bench harness's -event-generator
// mode deploys next to an event-generator binary the operator built
// (falcosecurity/event-generator; this project holds none of its code).
// Each invocation does one thing:
//
//	{"op": "isolation"}           the instance's network as the function sees it: its interfaces,
//	                              its routes, and a TCP connect to 198.18.0.1 (benchmarking range,
//	                              never routed) that must fail
//	{"op": "list"}                the event-generator's syscall actions (list --all)
//	{"op": "run", "action": "X"}  runs action X alone (--logformat json run --all --sleep 0 ^X$)
//	                              and returns its exit status and the tail of its log
//
// It never contacts anything itself but that one unroutable address; the
// actions it runs do what their authors wrote, which is why the harness
// checks the isolation first and runs them only in an instance with no
// network path but its own loopback.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// generator is where the zip puts the event-generator binary: under the
// bootstrap's own name, in a directory of its own (see run).
const generator = "/var/task/eg/bootstrap"

// probe is the address the isolation check dials: the benchmarking
// range (RFC 2544), which no network routes.
const probe = "198.18.0.1:9"

type request struct {
	Op     string `json:"op"`
	Action string `json:"action"`
}

type response struct {
	Interfaces []string `json:"interfaces,omitempty"`
	Routes     int      `json:"routes"`
	ProbeErr   string   `json:"probe_err,omitempty"`
	Actions    []string `json:"actions,omitempty"`
	Exit       int      `json:"exit"`
	Log        string   `json:"log,omitempty"`
}

// actionName is what an event-generator action is called.
var actionName = regexp.MustCompile(`^syscall\.[A-Za-z0-9]+$`)

// maxLog bounds the log returned: its last bytes.
const maxLog = 8 << 10

func handle(ctx context.Context, r request) (response, error) {
	switch r.Op {
	case "isolation":
		return isolation(), nil
	case "list":
		out, err := exec.CommandContext(ctx, generator, "list", "--all", `^syscall\.`).Output()
		if err != nil {
			return response{}, fmt.Errorf("event-generator list: %w", err)
		}
		var res response
		for _, line := range strings.Fields(string(out)) {
			if actionName.MatchString(line) {
				res.Actions = append(res.Actions, line)
			}
		}
		return res, nil
	case "run":
		if !actionName.MatchString(r.Action) {
			return response{}, fmt.Errorf("not an action name: %q", r.Action)
		}
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, generator, "--logformat", "json", "run", "--all", "--sleep", "0", "^"+r.Action+"$")
		// The generator runs its container actions only when it
		// believes it is a container's first process: when pid 1's
		// command line starts with its argv[0]. And it takes itself for
		// a child it spawned when its argv[0] and its file have other
		// names. An instance is the function's container, whose pid 1
		// is the bootstrap: the generator, a file named bootstrap too,
		// gets the bootstrap's path as argv[0].
		if b, err := os.ReadFile("/proc/1/cmdline"); err == nil {
			if argv0, _, _ := strings.Cut(string(b), "\x00"); filepath.Base(argv0) == filepath.Base(generator) {
				cmd.Args[0] = argv0
			}
		}
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		cmd.WaitDelay = 2 * time.Second
		err := cmd.Run()
		res := response{Log: tail(buf.Bytes())}
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			res.Exit = exit.ExitCode()
		case err != nil:
			res.Exit = -1
			res.Log += "\n" + err.Error()
		}
		return res, nil
	}
	return response{}, fmt.Errorf("unknown op %q (isolation, list, run)", r.Op)
}

// isolation reports the instance's interfaces, its routes (IPv4 and IPv6,
// loopback's excepted) and how a connect to an unroutable address ends.
func isolation() response {
	var res response
	ifs, err := net.Interfaces()
	if err != nil {
		res.Interfaces = []string{"error: " + err.Error()}
	}
	for _, i := range ifs {
		res.Interfaces = append(res.Interfaces, i.Name)
	}
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		res.Routes += max(0, len(strings.Split(strings.TrimSpace(string(b)), "\n"))-1)
	} else {
		res.Routes = -1
	}
	if b, err := os.ReadFile("/proc/net/ipv6_route"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.Fields(line); len(f) == 10 && f[9] != "lo" {
				res.Routes++
			}
		}
	}
	c, err := net.DialTimeout("tcp", probe, 2*time.Second)
	if err == nil {
		c.Close()
		res.ProbeErr = ""
	} else {
		res.ProbeErr = err.Error()
	}
	return res
}

func tail(b []byte) string {
	if len(b) > maxLog {
		b = b[len(b)-maxLog:]
	}
	return string(b)
}

func main() { lambda.Start(handle) }

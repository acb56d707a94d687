// Command escape is a Lambda function that tries to break out of the
// sandbox it runs in and reports every attempt. The sandbox tests invoke it
// inside a hardened instance and assert that no check escaped; run outside
// a sandbox, most checks escape, which shows that each one makes a real
// attempt.
//
// The event is
//
//	{"checks": ["name", ...], "skip": ["name", ...], "params": {...}}
//
// where an empty checks list means every check. Checks run one after the
// other in a fixed order (the resource bombs last), each bounded by its own
// timeout and guarded against panics. The response is
//
//	{"results": [{"name", "escaped", "detail", "ms"}...], "escaped": [names], "ms"}
//
// A check's escaped is true only when an attempt succeeded in doing
// something the sandbox must prevent; detail always says what happened,
// with the errno or the observed value. README.md lists every check and
// parameter.
//
// Some checks need a second process. The binary re-executes itself with
// the hidden first argument __moat_escape_child for helpers that allocate,
// write or sleep (child.go), and forks without exec to get a
// single-threaded child that runs a short list of raw system calls
// (fork.go).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"golang.org/x/sys/unix"
)

// event is the invocation payload.
type event struct {
	Checks []string `json:"checks"`
	Skip   []string `json:"skip"`
	Params params   `json:"params"`
}

// params tune the checks; every field is optional.
type params struct {
	HostPaths     []string `json:"host_paths"`      // host files that must stay invisible
	HostPIDs      []int    `json:"host_pids"`       // host processes that must stay invisible
	APIAddr       string   `json:"api_addr"`        // moat's API, host:port on the host
	OtherAddrs    []string `json:"other_addrs"`     // other instances or host services, host:port
	MetadataAddrs []string `json:"metadata_addrs"`  // default: the EC2/ECS metadata endpoints
	UnixPaths     []string `json:"unix_paths"`      // extra Unix sockets to try
	MemoryMB      int      `json:"memory_mb"`       // the function's memory limit
	TmpLimitMB    int      `json:"tmp_limit_mb"`    // size of /tmp; 0: as statfs reports it
	ForkLimit     int      `json:"fork_limit"`      // fork_bomb stops after this many processes
	DialTimeoutMS int      `json:"dial_timeout_ms"` // per connection attempt
	Nonce         string   `json:"nonce"`           // names files and the leftover marker
	WriteMarker   string   `json:"write_marker"`    // tmp_cross_invocation: marker to write
	ReadMarker    string   `json:"read_marker"`     // tmp_cross_invocation: marker to look for
	Networked     bool     `json:"networked"`       // routes: report only, do not judge
}

// Defaults and bounds of the parameters.
const (
	defaultMemoryMB      = 128
	defaultForkLimit     = 1200
	maxForkLimit         = 4096
	defaultDialTimeoutMS = 1000
	maxDialTimeoutMS     = 10000
	maxSizeMB            = 10240
)

var defaultMetadataAddrs = []string{"169.254.169.254:80", "[fd00:ec2::254]:80", "169.254.170.2:80"}

// nameRE is what a nonce or a marker may look like: it ends up in file
// names and in a command line.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// plan is a validated event: the checks to run, in run order, and the
// parameters with every default filled in.
type plan struct {
	checks []check
	params params
}

// parseEvent validates raw and fills in defaults. getenv supplies the
// Lambda environment (AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
func parseEvent(raw []byte, getenv func(string) string) (plan, error) {
	var ev event
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			return plan{}, fmt.Errorf("decode event: %w", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return plan{}, errors.New("decode event: data after the event object")
		}
	}
	for _, name := range slices.Concat(ev.Checks, ev.Skip) {
		if checkByName(name) == nil {
			return plan{}, fmt.Errorf("unknown check %q (known: %s)", name, strings.Join(checkNames(), ", "))
		}
	}
	var pl plan
	for _, c := range registry {
		if (len(ev.Checks) == 0 || slices.Contains(ev.Checks, c.name)) && !slices.Contains(ev.Skip, c.name) {
			pl.checks = append(pl.checks, c)
		}
	}
	p, err := withDefaults(ev.Params, getenv)
	if err != nil {
		return plan{}, err
	}
	pl.params = p
	return pl, nil
}

func withDefaults(p params, getenv func(string) string) (params, error) {
	if p.MemoryMB == 0 {
		p.MemoryMB = defaultMemoryMB
		if v, err := strconv.Atoi(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")); err == nil && v > 0 && v <= maxSizeMB {
			p.MemoryMB = v
		}
	}
	if p.ForkLimit == 0 {
		p.ForkLimit = defaultForkLimit
	}
	if p.DialTimeoutMS == 0 {
		p.DialTimeoutMS = defaultDialTimeoutMS
	}
	if p.MetadataAddrs == nil {
		p.MetadataAddrs = defaultMetadataAddrs
	}
	if p.Nonce == "" {
		p.Nonce = strings.ToLower(rand.Text()[:16])
	}
	switch {
	case p.MemoryMB < 0 || p.MemoryMB > maxSizeMB:
		return p, fmt.Errorf("params: memory_mb %d out of range 1..%d", p.MemoryMB, maxSizeMB)
	case p.TmpLimitMB < 0 || p.TmpLimitMB > maxSizeMB:
		return p, fmt.Errorf("params: tmp_limit_mb %d out of range 0..%d", p.TmpLimitMB, maxSizeMB)
	case p.ForkLimit < 0 || p.ForkLimit > maxForkLimit:
		return p, fmt.Errorf("params: fork_limit %d out of range 1..%d", p.ForkLimit, maxForkLimit)
	case p.DialTimeoutMS < 0 || p.DialTimeoutMS > maxDialTimeoutMS:
		return p, fmt.Errorf("params: dial_timeout_ms %d out of range 1..%d", p.DialTimeoutMS, maxDialTimeoutMS)
	case !nameRE.MatchString(p.Nonce):
		return p, fmt.Errorf("params: nonce %q must match %s", p.Nonce, nameRE)
	case p.WriteMarker != "" && !nameRE.MatchString(p.WriteMarker):
		return p, fmt.Errorf("params: write_marker %q must match %s", p.WriteMarker, nameRE)
	case p.ReadMarker != "" && !nameRE.MatchString(p.ReadMarker):
		return p, fmt.Errorf("params: read_marker %q must match %s", p.ReadMarker, nameRE)
	}
	for _, path := range p.HostPaths {
		if !filepath.IsAbs(path) {
			return p, fmt.Errorf("params: host_paths: %q is not absolute", path)
		}
	}
	for _, pid := range p.HostPIDs {
		if pid <= 0 {
			return p, fmt.Errorf("params: host_pids: %d is not a pid", pid)
		}
	}
	addrs := slices.Concat(p.OtherAddrs, p.MetadataAddrs)
	if p.APIAddr != "" {
		addrs = append(addrs, p.APIAddr)
	}
	for _, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return p, fmt.Errorf("params: address %q: %w", addr, err)
		}
	}
	for _, path := range p.UnixPaths {
		if !filepath.IsAbs(path) {
			return p, fmt.Errorf("params: unix_paths: %q is not absolute", path)
		}
	}
	return p, nil
}

// result is the outcome of one check as the response shows it.
type result struct {
	Name    string `json:"name"`
	Escaped bool   `json:"escaped"`
	Detail  string `json:"detail"`
	MS      int64  `json:"ms"`
}

type response struct {
	Results []result `json:"results"`
	Escaped []string `json:"escaped"` // names of the checks that escaped
	MS      int64    `json:"ms"`
}

// report collects what one check observed.
type report struct {
	escaped bool
	lines   []string
}

// notef records an observation that is not an escape.
func (r *report) notef(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// escapef records an attempt that succeeded in something the sandbox must
// prevent.
func (r *report) escapef(format string, args ...any) {
	r.escaped = true
	r.lines = append(r.lines, "ESCAPED "+fmt.Sprintf(format, args...))
}

// try records an attempt that must fail: a nil err is an escape.
func (r *report) try(what string, err error) bool {
	if err == nil {
		r.escapef("%s: succeeded", what)
		return true
	}
	r.notef("%s: %s", what, errText(err))
	return false
}

func (r *report) detail() string {
	if len(r.lines) == 0 {
		return "nothing attempted"
	}
	return strings.Join(r.lines, "; ")
}

func (r *report) result(name string, elapsed time.Duration) result {
	return result{Name: name, Escaped: r.escaped, Detail: r.detail(), MS: elapsed.Milliseconds()}
}

// errText is err's errno message with the errno's name, "no such file or
// directory (ENOENT)", or err's text when it carries no errno.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errnoText(errno)
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return "timed out"
	}
	return err.Error()
}

func errnoText(errno syscall.Errno) string {
	if errno == 0 {
		return "ok"
	}
	if name := unix.ErrnoName(errno); name != "" {
		return errno.Error() + " (" + name + ")"
	}
	return fmt.Sprintf("%s (errno %d)", errno.Error(), int(errno))
}

// grace is how long the runner waits past a check's own timeout before it
// gives up on the check and moves on.
const grace = 2 * time.Second

// runCheck runs c with its timeout and turns a panic or a hang into a
// result instead of a crash or a stuck invocation: after c.timeout plus
// grace it abandons the check (whose goroutine may live on).
func runCheck(ctx context.Context, c check, p *params, grace time.Duration) result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	done := make(chan *report, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- &report{lines: []string{fmt.Sprintf("check panicked: %v", v)}}
			}
		}()
		done <- c.run(ctx, p)
	}()
	timer := time.NewTimer(c.timeout + grace)
	defer timer.Stop()
	var r *report
	select {
	case r = <-done:
	case <-timer.C:
		r = &report{lines: []string{fmt.Sprintf("check did not finish within %s; abandoned", c.timeout+grace)}}
	}
	return r.result(c.name, time.Since(start))
}

func handle(ctx context.Context, raw json.RawMessage) (response, error) {
	start := time.Now()
	pl, err := parseEvent(raw, os.Getenv)
	if err != nil {
		return response{}, fmt.Errorf("escape: %w", err)
	}
	resp := response{Results: []result{}, Escaped: []string{}}
	for _, c := range pl.checks {
		var res result
		if ctx.Err() != nil {
			res = result{Name: c.name, Detail: "not run: the invocation's deadline passed"}
		} else {
			res = runCheck(ctx, c, &pl.params, grace)
		}
		reapOrphans()
		resp.Results = append(resp.Results, res)
		if res.Escaped {
			resp.Escaped = append(resp.Escaped, res.Name)
		}
	}
	resp.MS = time.Since(start).Milliseconds()
	return resp, nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(runChild(os.Args[2:]))
	}
	lambda.Start(handle)
}

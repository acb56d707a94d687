// Command behave is a Lambda function whose behaviour the event chooses. The
// integration tests use it to make a function succeed, fail, crash, hang,
// exhaust memory, log and report what it can see, all from one zip.
//
// The event is {"action": "...", ...}:
//
//	echo                     return the event unchanged
//	error    message         return errors.New(message) (errorType "errorString")
//	panic    message         panic(message)
//	sleep    sleep_ms        sleep, ignoring the deadline, then return {"slept_ms"}
//	alloc    mb              allocate mb MiB, resident, then return {"allocated_mb"}
//	exit     code            os.Exit(code) in the middle of the invocation
//	env      names           {"vars": {name: value}} for the listed names that are set;
//	                         with no names, {"keys": [...]}: every variable's name, no values
//	log      lines           print lines lines to stdout and to stderr, return {"lines"}
//	context                  the invocation's lambdacontext and deadline
//	count                    a counter of invocations served by this process
//	pid                      {"pid": os.Getpid()}
//	dial     addr            TCP connect to addr, send a line, read one back: {"ok", "reply"|"error", "ms"}
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Action  string   `json:"action"`
	Message string   `json:"message"`
	SleepMS int      `json:"sleep_ms"`
	MB      int      `json:"mb"`
	Code    int      `json:"code"`
	Names   []string `json:"names"`
	Lines   int      `json:"lines"`
	Addr    string   `json:"addr"`
}

var invocations atomic.Int64

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	n := invocations.Add(1)
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("behave: decode event: %w", err)
	}
	switch ev.Action {
	case "echo":
		return raw, nil
	case "error":
		return nil, errors.New(orDefault(ev.Message, "behave: error requested"))
	case "panic":
		panic(orDefault(ev.Message, "behave: panic requested"))
	case "sleep":
		time.Sleep(time.Duration(ev.SleepMS) * time.Millisecond)
		return map[string]int{"slept_ms": ev.SleepMS}, nil
	case "alloc":
		return map[string]int{"allocated_mb": alloc(ev.MB)}, nil
	case "exit":
		fmt.Fprintf(os.Stderr, "behave: exiting with status %d\n", ev.Code)
		os.Exit(ev.Code)
	case "env":
		return environ(ev.Names), nil
	case "log":
		for i := range ev.Lines {
			fmt.Fprintf(os.Stdout, "behave: stdout line %d\n", i+1)
			fmt.Fprintf(os.Stderr, "behave: stderr line %d\n", i+1)
		}
		return map[string]int{"lines": ev.Lines}, nil
	case "context":
		return invocationContext(ctx), nil
	case "count":
		return map[string]int64{"count": n}, nil
	case "pid":
		return map[string]int{"pid": os.Getpid()}, nil
	case "dial":
		return dial(ev.Addr), nil
	}
	return nil, fmt.Errorf("behave: unknown action %q", ev.Action)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// alloc allocates mb MiB and makes it resident, not just reserved, in one
// system call (MAP_POPULATE): the kernel faults the pages in without a trap
// per page, so reaching the instance's memory limit costs little of a small
// function's CPU share (touching page by page took 5 s of a 64 MB share
// here, most of it fault entries and exits).
func alloc(mb int) int {
	buf, err := syscall.Mmap(-1, 0, mb<<20, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_POPULATE)
	if err != nil {
		panic(fmt.Sprintf("alloc %d MiB: %v", mb, err))
	}
	buf[len(buf)-1] = 1
	runtime.KeepAlive(buf)
	_ = syscall.Munmap(buf)
	return mb
}

func environ(names []string) map[string]any {
	if len(names) == 0 {
		var keys []string
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return map[string]any{"keys": keys}
	}
	vars := map[string]string{}
	for _, name := range names {
		if v, ok := os.LookupEnv(name); ok {
			vars[name] = v
		}
	}
	return map[string]any{"vars": vars}
}

type contextInfo struct {
	RequestID          string            `json:"request_id"`
	InvokedFunctionARN string            `json:"invoked_function_arn"`
	DeadlineUnixMS     int64             `json:"deadline_unix_ms"`
	RemainingMS        int64             `json:"remaining_ms"`
	ClientCustom       map[string]string `json:"client_context_custom"`
	ClientEnv          map[string]string `json:"client_context_env"`
	IdentityID         string            `json:"identity_id"`
	IdentityPoolID     string            `json:"identity_pool_id"`
	FunctionName       string            `json:"function_name"`
	FunctionVersion    string            `json:"function_version"`
	MemoryLimitMB      int               `json:"memory_limit_mb"`
	LogGroupName       string            `json:"log_group_name"`
	LogStreamName      string            `json:"log_stream_name"`
}

func invocationContext(ctx context.Context) contextInfo {
	info := contextInfo{
		FunctionName:    lambdacontext.FunctionName,
		FunctionVersion: lambdacontext.FunctionVersion,
		MemoryLimitMB:   lambdacontext.MemoryLimitInMB,
		LogGroupName:    lambdacontext.LogGroupName,
		LogStreamName:   lambdacontext.LogStreamName,
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		info.RequestID = lc.AwsRequestID
		info.InvokedFunctionARN = lc.InvokedFunctionArn
		info.ClientCustom = lc.ClientContext.Custom
		info.ClientEnv = lc.ClientContext.Env
		info.IdentityID = lc.Identity.CognitoIdentityID
		info.IdentityPoolID = lc.Identity.CognitoIdentityPoolID
	}
	if d, ok := ctx.Deadline(); ok {
		info.DeadlineUnixMS = d.UnixMilli()
		info.RemainingMS = time.Until(d).Milliseconds()
	}
	return info
}

func main() {
	lambda.Start(handle)
}

// dial connects to addr over TCP, sends a line and reads one back, and
// reports what happened: the network tests grant or refuse destinations.
func dial(addr string) map[string]any {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return map[string]any{"ok": false, "error": err.Error(), "ms": time.Since(start).Milliseconds()}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return map[string]any{"ok": false, "error": err.Error()}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return map[string]any{"ok": false, "error": err.Error()}
	}
	return map[string]any{"ok": true, "reply": strings.TrimSpace(line), "ms": time.Since(start).Milliseconds()}
}

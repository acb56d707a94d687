package rules

import (
	"fmt"
	"strings"

	"moat.dev/moat/internal/detect"
)

// Built-in rules for how a function starts programs: with the dynamic
// loader told to load other code first, and in storms that exhaust the
// instance's process limit.
func init() { builtinRules = append(builtinRules, processRules...) }

const (
	// stormLive processes of an instance alive at once, started by a fork
	// the sensor saw and not yet exited, is a storm (a fork bomb, a
	// runaway spawner): a function's handler runs a few at a time, each
	// gone before the next.
	stormLive = 128
	// eagain is how the kernel refuses a process past the instance's
	// pids limit.
	eagain = "EAGAIN"
)

// loaderHijack reports the loader variable of an exec that makes the new
// program load code it did not ask for: any LD_PRELOAD or LD_AUDIT, or
// an LD_LIBRARY_PATH that searches a writable directory first-hand
// (the runtime's own library path names only read-only ones).
func loaderHijack(ev *detect.Event) string {
	for _, v := range ev.Env {
		name, val, _ := strings.Cut(v, "=")
		switch name {
		case "LD_PRELOAD", "LD_AUDIT":
			if strings.TrimSpace(val) != "" {
				return v
			}
		case "LD_LIBRARY_PATH":
			for _, dir := range strings.Split(val, ":") {
				if dir != "" && hasPrefixAny(strings.TrimSuffix(dir, "/")+"/", writableDirs) {
					return v
				}
			}
		}
	}
	return ""
}

var processRules = []*builtin{
	{
		Info:  Info{Name: "loader-hijack", Severity: detect.SeverityHigh, Description: "a program started with LD_PRELOAD or LD_AUDIT set, or with LD_LIBRARY_PATH searching a writable directory: the dynamic loader made to run other code first", Techniques: []string{"T1574.006"}},
		kinds: kinds("exec"),
		match: func(_ *State, ev *detect.Event) *match {
			v := loaderHijack(ev)
			if v == "" {
				return nil
			}
			return &match{key: v, summary: "loader hijack: " + v + " for " + describe(ev)}
		},
	},
	{
		Info:  Info{Name: "process-storm", Severity: detect.SeverityHigh, Description: fmt.Sprintf("%d or more processes of an instance alive at once, or a new process refused by the instance's process limit: a fork bomb or a runaway spawner", stormLive), Techniques: []string{"T1499"}},
		kinds: kinds("fork", "exit"),
		match: func(st *State, ev *detect.Event) *match {
			if ev.Kind == "exit" {
				st.live-- // (an exit may arrive before its fork: the count is signed)
				return nil
			}
			if ev.Failed() {
				if ev.Errno != eagain || st.stormRaised {
					return nil
				}
				st.stormRaised = true
				return &match{key: "pids-limit", summary: fmt.Sprintf("pid %d (%s) could not start a process: the instance's process limit is reached", ev.PID, base(ev.Exe))}
			}
			st.live++
			if st.live < stormLive || st.stormRaised {
				return nil
			}
			st.stormRaised = true
			return &match{key: "live", summary: fmt.Sprintf("%d processes alive at once (the last started by pid %d, %s)", st.live, ev.PID, base(ev.Exe))}
		},
	},
}

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
	// stormWindow and stormProcesses: this many new processes within the
	// window is a storm (a fork bomb, a runaway spawner). A function's
	// handler that runs a tool per request starts a few.
	stormWindow    = int64(1e9)
	stormProcesses = 64
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
		Info:  Info{"loader-hijack", detect.SeverityHigh, "a program started with LD_PRELOAD or LD_AUDIT set, or with LD_LIBRARY_PATH searching a writable directory: the dynamic loader made to run other code first"},
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
		Info:  Info{"process-storm", detect.SeverityHigh, fmt.Sprintf("%d or more processes started within a second, or a new process refused by the instance's process limit: a fork bomb or a runaway spawner", stormProcesses)},
		kinds: kinds("fork"),
		match: func(st *State, ev *detect.Event) *match {
			now := ev.Time.UnixNano()
			if ev.Failed() {
				if ev.Errno != eagain || now < st.stormUntil {
					return nil
				}
				st.stormUntil = now + stormWindow
				return &match{key: fmt.Sprint(now / stormWindow), summary: fmt.Sprintf("pid %d could not start a process: the instance's process limit is reached", ev.PID)}
			}
			st.forks = append(st.forks, now)
			keep := st.forks[:0]
			for _, t := range st.forks {
				if now-t < stormWindow {
					keep = append(keep, t)
				}
			}
			st.forks = keep
			if len(keep) > stormProcesses {
				st.forks = keep[len(keep)-stormProcesses:]
			}
			if len(st.forks) < stormProcesses || now < st.stormUntil {
				return nil
			}
			st.stormUntil = now + stormWindow
			return &match{key: fmt.Sprint(now / stormWindow), summary: fmt.Sprintf("%d processes started within a second (last by pid %d, %s)", len(st.forks), ev.PID, base(ev.Exe))}
		},
	},
}

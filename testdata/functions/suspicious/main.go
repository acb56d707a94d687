// Command suspicious is a Lambda function that, inside moat's sandbox, does
// what attack tooling does: reads credentials and environments through
// /proc, spawns shells, drops and runs payloads, opens reverse shells,
// contacts metadata and mining addresses, tries to gain privileges and to
// escape. The detection tests invoke one action per invocation and check
// that the runtime sensor raised the expected alert with that invocation's
// request id. README.md lists the actions and why each is harmless.
//
// Every action is harmless by construction: the sandbox refuses what would
// matter (read-only root, no capabilities, seccomp, Landlock, no route off
// the instance but granted destinations), files are written only in the
// instance's own /tmp, and the only outside addresses used are 198.18.0.1
// (the benchmarking range, refused inside the instance) and 169.254.169.254
// (the metadata address, refused inside the instance): no packet leaves.
//
// The event is {"action": NAME, "url": URL}, url only for egress. The
// response is {"action", "steps": [{"what", "err"}]}: every step is
// reported with its error, and none stops the action, because the attempt,
// not its success, is what the sensor must see. {"action": "list"} returns
// {"action": "list", "actions": [names], "rules": {name: rule}}.
//
// connect-then-shell re-executes this binary with the environment variable
// childEnv set; that child connects out and then replaces itself with a
// shell (child.go).
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
)

// event is the invocation payload.
type event struct {
	Action string `json:"action"`
	URL    string `json:"url"` // egress: where to send the GET
}

// response is what an invocation returns.
type response struct {
	Action  string            `json:"action"`
	Steps   []step            `json:"steps,omitempty"`
	Actions []string          `json:"actions,omitempty"` // list: every action, in table order
	Rules   map[string]string `json:"rules,omitempty"`   // list: action → the rule it must raise
}

// step is one attempt of an action and what became of it.
type step struct {
	What string `json:"what"`
	Err  string `json:"err,omitempty"`
}

// recorder collects the steps of one action.
type recorder struct{ steps []step }

// step records one attempt; err nil means it succeeded.
func (r *recorder) step(what string, err error) {
	s := step{What: what}
	if err != nil {
		s.Err = err.Error()
	}
	r.steps = append(r.steps, s)
}

func handle(_ context.Context, ev event) (response, error) {
	if ev.Action == "list" {
		out := response{Action: "list", Rules: map[string]string{}}
		for _, a := range actions {
			out.Actions = append(out.Actions, a.name)
			out.Rules[a.name] = a.rule
		}
		return out, nil
	}
	i := slices.IndexFunc(actions, func(a action) bool { return a.name == ev.Action })
	if i < 0 {
		return response{}, fmt.Errorf("suspicious: unknown action %q (known: list, %s)", ev.Action, strings.Join(actionNames(), ", "))
	}
	r := &recorder{}
	actions[i].run(r, ev)
	return response{Action: ev.Action, Steps: r.steps}, nil
}

func actionNames() []string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.name
	}
	return names
}

func main() {
	if os.Getenv(childEnv) != "" {
		connectThenShell() // never returns
	}
	lambda.Start(handle)
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

var eventsCommand = &command{
	name:    "events",
	group:   groupFunctions,
	args:    "[ls [--function F] | get NAME] [flags]",
	summary: "every way events reach functions: URLs and schedules, with their state",
	help: `
ls (the default) lists every event source of the cluster: each function
URL and each schedule, with the function it triggers, its state, what it
is (the URL, the expression) and, for schedules, the next tick and the
ticks fired, missed and failed so far with the last error. get NAME shows
one source in full (a URL id, or a schedule as group/name or name).`,
	run: runEvents,
}

// eventView is an item of GET /moat/v1/events.
type eventView struct {
	Type      string           `json:"Type"`
	Name      string           `json:"Name"`
	Function  string           `json:"Function"`
	State     string           `json:"State"`
	Detail    string           `json:"Detail"`
	Next      string           `json:"Next,omitempty"`
	Counts    map[string]int64 `json:"Counts,omitempty"`
	LastError string           `json:"LastError,omitempty"`
}

func runEvents(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	function := c.fs.String("function", "", "only the sources of function `NAME`")
	pos, err := c.parseN(0, 2)
	if err != nil {
		return err
	}
	verb := "ls"
	if len(pos) > 0 {
		verb = pos[0]
	}
	switch {
	case verb == "ls" && len(pos) <= 1:
	case verb == "get" && len(pos) == 2:
	default:
		return usagef("use 'moat events ls [--function F]' or 'moat events get NAME'")
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *function != "" {
		q.Set("function", *function)
	}
	resp, err := c.moatGet(ctx, cfg, "ListEventSources", "/moat/v1/events", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var all []eventView
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		return fmt.Errorf("decode event sources: %w", err)
	}
	if verb == "get" {
		name := pos[1]
		for _, e := range all {
			if e.Name == name || (e.Type == "schedule" && e.Name == "default/"+name) {
				return printEvent(c, e)
			}
		}
		return fmt.Errorf("no event source %s", name)
	}
	if c.json() {
		return printJSON(c.stdout, all)
	}
	t := newTable(c.stdout, "TYPE", "NAME", "FUNCTION", "STATE", "DETAIL", "NEXT", "DELIVERED", "LAST ERROR")
	for _, e := range all {
		t.row(e.Type, e.Name, e.Function, e.State, e.Detail, orDash(e.Next), orDash(counts(e.Counts)), orDash(e.LastError))
	}
	return t.flush()
}

// counts renders a source's counts as "fired 3, missed 0, failed 0".
func counts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// The order sources report them in: what went through first.
	order := map[string]int{"fired": 0, "missed": 1, "failed": 2}
	sort.Slice(keys, func(i, j int) bool {
		return order[keys[i]] < order[keys[j]] || (order[keys[i]] == order[keys[j]] && keys[i] < keys[j])
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func printEvent(c *cmdCtx, e eventView) error {
	if c.json() {
		return printJSON(c.stdout, e)
	}
	w := c.stdout
	fmt.Fprintf(w, "%s %s\n  function   %s\n  state      %s\n  detail     %s\n", e.Type, e.Name, e.Function, e.State, e.Detail)
	if e.Next != "" {
		fmt.Fprintf(w, "  next       %s\n", e.Next)
	}
	if len(e.Counts) > 0 {
		fmt.Fprintf(w, "  delivered  %s\n", counts(e.Counts))
	}
	if e.LastError != "" {
		fmt.Fprintf(w, "  last error %s\n", e.LastError)
	}
	return nil
}

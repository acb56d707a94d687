package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/monitor"
	"moat.dev/moat/internal/rules"
)

var traceCommand = &command{
	name:    "trace",
	group:   groupObserve,
	args:    "REQUEST_ID [flags]",
	summary: "print what an invocation executed, opened and connected to",
	help: `
Print the forensic record of the invocation REQUEST_ID (the id Invoke
returned, and the START line of its log shows): its process tree, the
files it touched outside its code, its connections, the actions the
sandbox denied, and the alerts it raised. The record is kept after the
instance is gone (for the node's trace retention). The first invocation of
an instance also holds the instance's init events; events between
invocations go with the next one. --output json prints the stored records.`,
	run: runTrace,
}

func runTrace(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	pos, err := c.parseN(1, 1)
	if err != nil {
		return err
	}
	if !monitor.RequestIDPattern.MatchString(pos[0]) {
		return usagef("%q is not a request id", pos[0])
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	b, err := c.moatCall(ctx, cfg, "Trace", http.MethodGet, "/moat/v1/traces/"+url.PathEscape(pos[0]), nil, nil)
	if err != nil {
		return err
	}
	if c.json() {
		return writeIndented(c.stdout, b)
	}
	var out struct{ Records []monitor.Record }
	if err := decodeResponse("Trace", b, &out); err != nil {
		return err
	}
	for i := range out.Records {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		printRecord(c.stdout, &out.Records[i])
	}
	return nil
}

func writeIndented(w io.Writer, b []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

const clock = "15:04:05.000"

// printRecord renders a record for people: header, process tree, files,
// network, privilege and denied actions, alerts.
func printRecord(w io.Writer, r *monitor.Record) {
	id := r.RequestID
	if id == "" {
		id = "(between invocations)"
	}
	fmt.Fprintf(w, "Request %s\n", id)
	fmt.Fprintf(w, "  function %s:%s  instance %s", r.Function, r.Version, r.Instance)
	if r.Runtime != "" {
		fmt.Fprintf(w, "  runtime %s", r.Runtime)
	}
	if r.Source != "" {
		fmt.Fprintf(w, "  from %s", r.Source)
	}
	fmt.Fprintln(w)
	if !r.Start.IsZero() {
		fmt.Fprintf(w, "  %s → %s (%s)\n", r.Start.UTC().Format(clock), r.End.UTC().Format(clock), r.End.Sub(r.Start).Round(time.Microsecond))
	}
	if r.Quiet {
		fmt.Fprintln(w, "  quiet: the invocation did nothing the sensor reports (no process, file, network or privilege event)")
	}
	if r.Omitted > 0 {
		fmt.Fprintf(w, "  ! %d events not kept (record bound): %v\n", r.Omitted, r.OmittedKinds)
	}
	if r.SensorDropped > 0 {
		fmt.Fprintf(w, "  ! the sensor dropped %d events of this instance: the record is incomplete\n", r.SensorDropped)
	}

	fmt.Fprintln(w, "\nProcesses")
	printTree(w, r.Events)

	section := func(title string, keep func(*detect.Event) bool, line func(*detect.Event) string) {
		var lines []string
		for i := range r.Events {
			if e := &r.Events[i]; keep(e) {
				lines = append(lines, fmt.Sprintf("  %s  %-6s %s", e.Time.UTC().Format(clock), phaseTag(e), line(e)))
			}
		}
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s\n", title)
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
	printFiles(w, r.Events)
	section("Network", func(e *detect.Event) bool { return e.Kind == "connect" }, func(e *detect.Event) string {
		return fmt.Sprintf("connect %-5s %s  %s%s", e.Family, e.Where(), outcome(e), by(e))
	})
	section("Privilege", func(e *detect.Event) bool { return e.Kind == "setid" || e.Kind == "capset" }, func(e *detect.Event) string {
		if e.Kind == "capset" {
			return fmt.Sprintf("capset %x  %s%s", e.Caps, outcome(e), by(e))
		}
		return fmt.Sprintf("%s %v  %s%s", e.Syscall, e.IDs, outcome(e), by(e))
	})
	section("Denied by the sandbox", func(e *detect.Event) bool { return e.Kind == "denied" }, func(e *detect.Event) string {
		return fmt.Sprintf("%s  %s%s", e.Syscall, e.Errno, by(e))
	})
	if len(r.Alerts) > 0 {
		fmt.Fprintln(w, "\nAlerts")
		for _, a := range r.Alerts {
			fmt.Fprintf(w, "  %-8s %-20s %s  (%s)\n", strings.ToUpper(string(a.Severity)), a.Rule, a.Summary, a.ID)
		}
	}
}

// fileKinds are the events of the Files section.
var fileKinds = map[string]bool{"open": true, "unlink": true, "rename": true, "chmod": true, "mkdir": true, "link": true,
	"symlink": true, "truncate": true, "utimes": true, "mknod": true, "chown": true}

// printFiles prints the file events of a record, one a line, except that
// a run of opens one process made of files that do not exist (the
// dynamic loader searching its library path, an interpreter its module
// path) is one line: how many, the first and the last.
func printFiles(w io.Writer, events []detect.Event) {
	var lines []string
	for i := 0; i < len(events); i++ {
		e := &events[i]
		if !fileKinds[e.Kind] {
			continue
		}
		j := i + 1
		if missingOpen(e) {
			for j < len(events) && (!fileKinds[events[j].Kind] || missingOpen(&events[j]) && events[j].PID == e.PID) {
				j++
			}
			// j is past the run; the run's last open is the last
			// missing one before it
			last, n := e, 0
			for k := i; k < j; k++ {
				if missingOpen(&events[k]) {
					last, n = &events[k], n+1
				}
			}
			if n > 2 {
				lines = append(lines, fmt.Sprintf("  %s  %-6s open    ×%d not found: %s … %s  ENOENT%s", e.Time.UTC().Format(clock), phaseTag(e), n, e.Path, last.Path, by(e)))
				i = j - 1
				continue
			}
		}
		s := fmt.Sprintf("%-7s %s", e.Kind, e.Path)
		if e.Kind == "symlink" {
			s = fmt.Sprintf("%-7s %s → %s", e.Kind, e.NewPath, e.Target)
		} else if e.NewPath != "" {
			s += " → " + e.NewPath
		}
		if e.Opened != "" {
			s += " (opened " + e.Opened + ")"
		}
		if len(e.Intent) > 0 {
			s += "  " + strings.Join(e.Intent, "|")
		}
		lines = append(lines, fmt.Sprintf("  %s  %-6s %s  %s%s", e.Time.UTC().Format(clock), phaseTag(e), s, outcome(e), by(e)))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nFiles")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// missingOpen reports an open that failed because the file does not
// exist.
func missingOpen(e *detect.Event) bool { return e.Kind == "open" && e.Errno == "ENOENT" }

func phaseTag(e *detect.Event) string {
	if e.Phase == detect.PhaseInvoke {
		return ""
	}
	return "[" + e.Phase + "]"
}

func outcome(e *detect.Event) string {
	if e.Result < 0 {
		return e.Errno
	}
	return "ok"
}

func by(e *detect.Event) string {
	name := e.Exe
	if name == "" {
		name = e.Comm
	}
	return fmt.Sprintf("  (pid %d %s)", e.PID, filepath.Base(name))
}

// printTree draws the processes of a record from its exec and exit
// events: each process under its parent, with what it ran and how it
// ended.
func printTree(w io.Writer, events []detect.Event) {
	type proc struct {
		pid, ppid int
		first     time.Time
		runs      []string
		end       string
		children  []*proc
	}
	procs := map[int]*proc{}
	var order []*proc
	for i := range events {
		e := &events[i]
		switch e.Kind {
		case "exec":
			p := procs[e.PID]
			if p == nil {
				p = &proc{pid: e.PID, ppid: e.PPID, first: e.Time}
				procs[e.PID] = p
				order = append(order, p)
			}
			run := e.Path
			if len(e.Argv) > 1 {
				run += " " + strings.Join(e.Argv[1:], " ")
			}
			if e.Result < 0 {
				run += "  (failed: " + e.Errno + ")"
			}
			if e.Phase != detect.PhaseInvoke {
				run += "  [" + e.Phase + "]"
			}
			p.runs = append(p.runs, run)
		case "exit":
			if p := procs[e.PID]; p != nil {
				if e.Signal != 0 {
					p.end = fmt.Sprintf("killed by signal %d", e.Signal)
				} else {
					p.end = fmt.Sprintf("exit %d", e.Result)
				}
			}
		}
	}
	if len(order) == 0 {
		fmt.Fprintln(w, "  (no process started during this record)")
		return
	}
	var roots []*proc
	for _, p := range order {
		if parent := procs[p.ppid]; parent != nil && parent != p {
			parent.children = append(parent.children, p)
		} else {
			roots = append(roots, p)
		}
	}
	var draw func(p *proc, prefix string, last bool, depth int)
	draw = func(p *proc, prefix string, last bool, depth int) {
		branch, next := "├─ ", "│  "
		if last {
			branch, next = "└─ ", "   "
		}
		label := strings.Join(p.runs, " → ")
		if p.end != "" {
			label += "  · " + p.end
		}
		fmt.Fprintf(w, "  %s%s[%d] %s\n", prefix, branch, p.pid, label)
		if depth > 64 {
			return
		}
		sort.SliceStable(p.children, func(i, j int) bool { return p.children[i].first.Before(p.children[j].first) })
		for i, ch := range p.children {
			draw(ch, prefix+next, i == len(p.children)-1, depth+1)
		}
	}
	for i, p := range roots {
		draw(p, "", i == len(roots)-1, 0)
	}
}

var alertsCommand = &command{
	name:    "alerts",
	group:   groupObserve,
	args:    "[flags]",
	summary: "print detection alerts",
	help: `
Print the alerts the runtime sensor's rules and behaviour profiles raised,
oldest first: time, severity, rule, function:version, request id and a
summary. --function limits them to one function, --since to recent ones;
--follow keeps printing new alerts until interrupted. --output json prints
each alert with its evidence events, one JSON object per line. 'moat trace
REQUEST_ID' shows the whole invocation an alert came from.`,
	run: runAlerts,
}

func runAlerts(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	follow := c.fs.Bool("follow", false, "keep printing new alerts until interrupted")
	since := c.fs.String("since", "", "start at `time`: RFC 3339, or a duration ago such as 10m")
	function := c.fs.String("function", "", "only the alerts of function `NAME`")
	if _, err := c.parseN(0, 0); err != nil {
		return err
	}
	q, err := streamQuery(*since, *follow)
	if err != nil {
		return err
	}
	if *function != "" {
		q.Set("function", *function)
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	resp, err := c.moatGet(ctx, cfg, "Alerts", "/moat/v1/alerts", q)
	if err != nil {
		return interrupted(ctx, *follow, err)
	}
	defer resp.Body.Close()
	return readLines(ctx, resp.Body, func(line []byte) error {
		if c.json() {
			_, err := fmt.Fprintf(c.stdout, "%s\n", line)
			return err
		}
		var a detect.Alert
		if err := json.Unmarshal(line, &a); err != nil {
			return fmt.Errorf("decode alert: %w", err)
		}
		req := a.RequestID
		if req == "" {
			req = "-"
		}
		_, err := fmt.Fprintf(c.stdout, "%s  %-8s %-20s %s:%s  %s  %s\n", a.Time.UTC().Format(time.RFC3339), strings.ToUpper(string(a.Severity)), a.Rule, a.Function, a.Version, req, a.Summary)
		return err
	})
}

var profileCommand = &command{
	name:    "profile",
	group:   groupObserve,
	args:    "show|approve|edit FUNCTION[:VERSION] [flags]",
	summary: "show, approve or edit a function version's behaviour profile",
	help: `
A behaviour profile lists what a function version does: the executables it
runs, the paths it reads and writes outside its code, the destinations it
connects to. It is learned from the first invocations (the learning window:
a number of invocations or a time, set on the node with --learn-invocations
and --learn-duration, or per profile in its YAML), after which every action
outside it raises an alert. A new version starts from the previous
version's profile, and what it does beyond it is reported as drift.

  moat profile show fn[:VERSION]     print the profile as YAML
  moat profile approve fn[:VERSION]  end learning; the profile is approved
  moat profile edit fn[:VERSION]     edit it in $EDITOR (or -f FILE, - for stdin)

VERSION is a version number, an alias or $LATEST (the default).`,
	run: runProfile,
}

func runProfile(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	file := c.fs.String("f", "", "with edit: read the new profile from `FILE` (- for stdin) instead of opening an editor")
	pos, err := c.parseN(2, 2)
	if err != nil {
		return err
	}
	verb := pos[0]
	name, qualifier, _ := strings.Cut(pos[1], ":")
	q := url.Values{}
	if qualifier != "" {
		q.Set("Qualifier", qualifier)
	}
	path := "/moat/v1/profiles/" + url.PathEscape(name)
	cfg, err := c.config()
	if err != nil {
		return err
	}
	switch verb {
	case "show":
		b, err := c.moatBytes(ctx, cfg, "GetProfile", http.MethodGet, path, q, nil)
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(b)
		return err
	case "approve":
		b, err := c.moatBytes(ctx, cfg, "ApproveProfile", http.MethodPost, path+"/approve", q, nil)
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(b)
		return err
	case "edit":
		var doc []byte
		switch {
		case *file == "-":
			doc, err = io.ReadAll(io.LimitReader(c.stdin, 1<<20+1))
		case *file != "":
			doc, err = os.ReadFile(*file)
		default:
			doc, err = c.editProfile(ctx, cfg, path, q)
		}
		if err != nil {
			return err
		}
		if doc == nil {
			fmt.Fprintln(c.stderr, "moat: profile unchanged")
			return nil
		}
		b, err := c.moatBytes(ctx, cfg, "PutProfile", http.MethodPut, path, q, doc)
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(b)
		return err
	}
	return usagef("unknown profile command %q: want show, approve or edit", verb)
}

// editProfile opens the current profile in $EDITOR and returns the edited
// document, or nil when it was not changed.
func (c *cmdCtx) editProfile(ctx context.Context, cfg clientConfig, path string, q url.Values) ([]byte, error) {
	cur, err := c.moatBytes(ctx, cfg, "GetProfile", http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "moat-profile-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(cur); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	editor := firstOf(c.getenv("VISUAL"), c.getenv("EDITOR"), "vi")
	args := strings.Fields(editor)
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], f.Name())...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("editor %s: %w", editor, err)
	}
	doc, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, err
	}
	if bytes.Equal(doc, cur) {
		return nil, nil
	}
	return doc, nil
}

// moatBytes is moatRequest returning the whole (non-JSON) body.
func (c *cmdCtx) moatBytes(ctx context.Context, cfg clientConfig, op, method, path string, q url.Values, body []byte) ([]byte, error) {
	resp, err := c.moatRequest(ctx, cfg, op, method, path, q, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxResponse))
}

var rulesCommand = &command{
	name:    "rules",
	group:   groupObserve,
	args:    "[show|set FILE|check FILE|clear] [flags]",
	summary: "list, check or set the detection rules",
	help: `
moat judges every event of every function against built-in rules (shell
spawned, reverse shell, credential reads, metadata access, denied syscalls,
...) and the user rules file: YAML with CEL conditions over the event's
fields (docs/RULES.md lists them), shared by every node of the cluster.

  moat rules [show]     list the built-in rules and print the user rules file
  moat rules check FILE validate a rules file here, without a node
  moat rules set FILE   validate and install a rules file (- for stdin)
  moat rules clear      remove the user rules`,
	run: runRules,
}

func runRules(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	pos, err := c.parseN(0, 2)
	if err != nil {
		return err
	}
	verb := "show"
	if len(pos) > 0 {
		verb = pos[0]
	}
	readDoc := func() ([]byte, error) {
		if len(pos) != 2 {
			return nil, usagef("rules %s needs a FILE", verb)
		}
		if pos[1] == "-" {
			return io.ReadAll(io.LimitReader(c.stdin, 1<<20+1))
		}
		return os.ReadFile(pos[1])
	}
	switch verb {
	case "check":
		doc, err := readDoc()
		if err != nil {
			return err
		}
		f, err := rules.Parse(doc)
		if err == nil {
			_, err = rules.New(f)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s: %d rules, valid\n", pos[1], len(f.Rules))
		return nil
	case "show", "set", "clear":
	default:
		return usagef("unknown rules command %q: want show, check, set or clear", verb)
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	var b []byte
	switch verb {
	case "show":
		b, err = c.moatCall(ctx, cfg, "GetRules", http.MethodGet, "/moat/v1/rules", nil, nil)
	case "set":
		var doc []byte
		if doc, err = readDoc(); err != nil {
			return err
		}
		if len(doc) == 0 {
			return usagef("the rules file is empty; use 'moat rules clear' to remove the rules")
		}
		b, err = c.moatBytes(ctx, cfg, "PutRules", http.MethodPut, "/moat/v1/rules", nil, doc)
	case "clear":
		b, err = c.moatBytes(ctx, cfg, "PutRules", http.MethodPut, "/moat/v1/rules", nil, []byte{})
	}
	if err != nil {
		return err
	}
	if c.json() {
		return writeIndented(c.stdout, b)
	}
	var out struct {
		Builtins  []rules.Info
		UserRules string
	}
	if err := decodeResponse("GetRules", b, &out); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "Built-in rules")
	for _, r := range out.Builtins {
		fmt.Fprintf(c.stdout, "  %-20s %-8s %s\n", r.Name, r.Severity, r.Description)
	}
	if out.UserRules == "" {
		fmt.Fprintln(c.stdout, "\nNo user rules.")
		return nil
	}
	fmt.Fprintf(c.stdout, "\nUser rules\n%s", out.UserRules)
	if !strings.HasSuffix(out.UserRules, "\n") {
		fmt.Fprintln(c.stdout)
	}
	return nil
}

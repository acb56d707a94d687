package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/codepkg"
	"moat.dev/moat/internal/detect"
	"moat.dev/moat/internal/monitor"
)

// The -event-generator mode: an external detection run. It deploys the
// event-generator binary the operator built (falcosecurity/event-generator;
// the project holds none of its code and no steps that build it) in a
// function with no network grant, checks from inside the instance that
// it has no path out, then runs each of the generator's syscall actions in
// an invocation of its own and prints, per action, whether it could run
// here, the built-in rules that raised an alert for its invocation, and
// the refusals the invocation's record holds.

// egFunction is the function the run deploys.
const egFunction = "event-generator"

// egOutcome is one action's result.
type egOutcome struct {
	Action    string
	RequestID string
	Ran       string   // "ran", "error: ...", "skipped: ..."
	Rules     []string // built-in rules alerted for the invocation
	Summaries []string // "rule: summary" of each of those alerts
	Refusals  []string // refusals in the record: denied syscalls, calls ending in EPERM or EACCES
}

func runEventGenerator(moatBin, genPath string) error {
	zip, err := eventGeneratorZip(genPath)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "moat-bench-evgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// A learning window longer than the run: the alerts are the
	// built-in rules', not a profile's.
	s, err := start(moatBin, dir, "--learn-invocations", "100000")
	if err != nil {
		return err
	}
	defer s.stop()
	ctx := context.Background()
	_, err = s.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(egFunction), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/bench"), MemorySize: aws.Int32(3008), Timeout: aws.Int32(60),
		Code: &types.FunctionCode{ZipFile: zip},
	})
	if err != nil {
		return fmt.Errorf("deploy %s: %w", egFunction, err)
	}
	call := func(req any, out any) (string, error) {
		p, _ := json.Marshal(req)
		res, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(egFunction), Payload: p})
		if err != nil {
			return "", err
		}
		id, _ := awsmiddleware.GetRequestIDMetadata(res.ResultMetadata)
		if res.FunctionError != nil {
			return id, fmt.Errorf("function error: %s", res.Payload)
		}
		return id, json.Unmarshal(res.Payload, out)
	}

	var iso struct {
		Interfaces []string `json:"interfaces"`
		Routes     int      `json:"routes"`
		ProbeErr   string   `json:"probe_err"`
	}
	if _, err := call(map[string]string{"op": "isolation"}, &iso); err != nil {
		return fmt.Errorf("isolation check: %w", err)
	}
	if err := checkIsolation(iso.Interfaces, iso.Routes, iso.ProbeErr); err != nil {
		return fmt.Errorf("the instance is not isolated, no action run: %w", err)
	}
	fmt.Printf("isolation: interfaces %v, %d routes, connect to 198.18.0.1 refused (%s)\n", iso.Interfaces, iso.Routes, iso.ProbeErr)

	var list struct {
		Actions []string `json:"actions"`
	}
	if _, err := call(map[string]string{"op": "list"}, &list); err != nil {
		return fmt.Errorf("list actions: %w", err)
	}
	if len(list.Actions) == 0 {
		return errors.New("the event-generator lists no syscall action")
	}
	fmt.Printf("%d syscall actions\n", len(list.Actions))

	var outs []egOutcome
	for _, a := range list.Actions {
		var res struct {
			Exit int    `json:"exit"`
			Log  string `json:"log"`
		}
		id, err := call(map[string]string{"op": "run", "action": a}, &res)
		o := egOutcome{Action: a, RequestID: id}
		if err != nil {
			o.Ran = "error: " + err.Error()
		} else {
			o.Ran = actionResult(res.Log, res.Exit, a)
		}
		outs = append(outs, o)
	}
	time.Sleep(2 * time.Second) // the last records and alerts are written a moment after their invocation
	alerts, err := functionAlerts(s, egFunction)
	if err != nil {
		return err
	}
	for i := range outs {
		o := &outs[i]
		for _, al := range alerts {
			if al.RequestID != o.RequestID || al.Source != detect.SourceRule {
				continue
			}
			if !slices.Contains(o.Rules, al.Rule) {
				o.Rules = append(o.Rules, al.Rule)
			}
			o.Summaries = append(o.Summaries, al.Rule+": "+al.Summary)
		}
		slices.Sort(o.Rules)
		if o.Refusals, err = refusals(s, o.RequestID); err != nil {
			return err
		}
	}
	printEventGenerator(os.Stdout, outs)
	return nil
}

// eventGeneratorZip is the function: egrunner as bootstrap, and the
// generator as eg/bootstrap (egrunner says why).
func eventGeneratorZip(genPath string) ([]byte, error) {
	gen, err := os.ReadFile(genPath)
	if err != nil {
		return nil, fmt.Errorf("read the event-generator binary: %w", err)
	}
	if !bytes.HasPrefix(gen, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s is not an ELF executable: give the event-generator binary built for this machine", genPath)
	}
	dir, err := os.MkdirTemp("", "moat-bench-evgen-fn-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := goBuild("./bench/egrunner", filepath.Join(dir, "bootstrap")); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "eg"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "eg", "bootstrap"), gen, 0o755); err != nil {
		return nil, err
	}
	return codepkg.Zip(dir)
}

// checkIsolation accepts an instance whose only interface is loopback,
// with no route, where a connect to an unroutable address failed.
func checkIsolation(interfaces []string, routes int, probeErr string) error {
	if !slices.Equal(interfaces, []string{"lo"}) {
		return fmt.Errorf("interfaces %v, want only lo", interfaces)
	}
	if routes != 0 {
		return fmt.Errorf("%d routes besides loopback's", routes)
	}
	if probeErr == "" {
		return errors.New("a connect to 198.18.0.1 succeeded")
	}
	return nil
}

// actionResult reads what became of action from the generator's exit
// status and log (run with --logformat json: one JSON object a line; the
// lines of a child it spawned may be text). The generator logs an
// error or a skip; it logs "action executed" only for an action that
// logged nothing else, so a run without either is one that ran. A
// child's error (a JSON line with "as") counts when the action's own
// process said nothing.
func actionResult(log string, exit int, action string) string {
	var child string
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Action string `json:"action"`
			Msg    string `json:"msg"`
			Error  string `json:"error"`
			Reason string `json:"reason"`
			As     string `json:"as"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Action != action {
			continue
		}
		var r string
		switch l.Msg {
		case "action error":
			r = "error: " + l.Error
		case "action skipped":
			r = "skipped: " + l.Reason
		default:
			continue
		}
		if l.As == "" {
			return r
		}
		child = r
	}
	switch {
	case child != "":
		return child + " (in the child it spawned)"
	case exit != 0:
		return fmt.Sprintf("exit status %d", exit)
	}
	return "ran"
}

// functionAlerts reads every stored alert of a function.
func functionAlerts(s *server, fn string) ([]detect.Alert, error) {
	b, err := s.signed("GET", "/moat/v1/alerts?function="+fn, nil)
	if err != nil {
		return nil, err
	}
	var out []detect.Alert
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var a detect.Alert
		if err := dec.Decode(&a); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
		out = append(out, a)
	}
}

// refusals lists, from an invocation's record, what a wall refused:
// each syscall seccomp denied, and each call that ended in EPERM,
// EACCES (an exec, connect or file the sandbox refused) or EROFS (a
// write to the read-only root).
func refusals(s *server, id string) ([]string, error) {
	if id == "" {
		return nil, nil
	}
	resp, err := s.do(context.Background(), "GET", "/moat/v1/traces/"+id, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil // the invocation did nothing the sensor reports
	}
	var body struct {
		Records []monitor.Record `json:"Records"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("trace %s: %w", id, err)
	}
	var out []string
	for _, r := range body.Records {
		for _, e := range r.Events {
			var what string
			switch {
			case e.Kind == "denied":
				what = e.Syscall + " denied"
			case e.Errno == "EPERM" || e.Errno == "EACCES" || e.Errno == "EROFS":
				what = e.Kind + " " + e.Errno
			default:
				continue
			}
			if !slices.Contains(out, what) {
				out = append(out, what)
			}
		}
	}
	return out, nil
}

// printEventGenerator prints the per-action table (markdown) and the
// totals.
func printEventGenerator(w io.Writer, outs []egOutcome) {
	fmt.Fprintln(w, "| action | could it run here | alert (rules) | refusals in the record |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	var ran, ranAlert, refused, refusedSeen int
	for _, o := range outs {
		rules, refs := "—", "—"
		if len(o.Rules) > 0 {
			rules = "`" + strings.Join(o.Rules, "`, `") + "`"
		}
		if len(o.Refusals) > 0 {
			refs = strings.Join(o.Refusals[:min(len(o.Refusals), 4)], ", ")
		}
		ranCol := o.Ran
		if len(ranCol) > 90 {
			ranCol = ranCol[:90] + "…"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", strings.TrimPrefix(o.Action, "syscall."), strings.ReplaceAll(ranCol, "|", `\|`), rules, refs)
		if o.Ran == "ran" {
			ran++
			if len(o.Rules) > 0 {
				ranAlert++
			}
		} else {
			refused++
			if len(o.Refusals) > 0 || len(o.Rules) > 0 {
				refusedSeen++
			}
		}
	}
	fmt.Fprintf(w, "\n%d actions: %d ran, %d of them with an alert; %d did not run (refused, failed or skipped), %d of them visible as a refusal or an alert\n",
		len(outs), ran, ranAlert, refused, refusedSeen)
	fmt.Fprintln(w, "\nThe alerts, by action:")
	for _, o := range outs {
		for _, sum := range o.Summaries {
			if len(sum) > 200 {
				sum = sum[:200] + "…"
			}
			fmt.Fprintf(w, "  %s  %s\n", strings.TrimPrefix(o.Action, "syscall."), sum)
		}
	}
}

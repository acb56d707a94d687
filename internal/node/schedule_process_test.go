package node

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/internal/fixture"
)

// awsTools runs the AWS CLI and boto3 against a moat process, with the
// process's own credentials file and nothing else of the host's.
type awsTools struct {
	t   testing.TB
	env []string
}

func newAWSTools(t testing.TB, p *moatProc) *awsTools {
	t.Helper()
	if _, err := exec.LookPath("aws"); err != nil {
		fixture.RequireOrSkip(t, "the AWS CLI (aws) is not installed")
	}
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		fixture.RequireOrSkip(t, "boto3 is not installed")
	}
	work := t.TempDir()
	return &awsTools{t: t, env: moatEnv(
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(p.dir, "credentials"),
		"AWS_PROFILE=moat",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(work, "no-config"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	)}
}

func (a *awsTools) run(name string, args ...string) []byte {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = a.env
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			a.t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out, ee.Stderr)
		}
		a.t.Fatalf("%s: %v", name, err)
	}
	return out
}

// TestProcessSchedulesSurviveKill9: schedules made with the AWS CLI and
// boto3 live in the store, not in the process. moat is killed with
// SIGKILL after a rate schedule fired and before a one-time schedule's
// time; started again, it fires the one-time tick it missed (younger than
// its maximum event age) and does not fire the rate schedule's first tick
// a second time.
func TestProcessSchedulesSurviveKill9(t *testing.T) {
	fixture.RequireRoot(t)
	dir := t.TempDir()
	p := startMoat(t, dir)
	tools := newAWSTools(t, p)
	n := p.node
	n.create(t, "behave", fixture.GoZip(t, "testdata/functions/behave"), nil)
	n.onSuccess(t, "behave", "ticks")
	const fn = "arn:aws:lambda:us-east-1:000000000000:function:behave"

	out := tools.run("aws", "scheduler", "create-schedule", "--endpoint-url", n.url,
		"--name", "every", "--schedule-expression", "rate(1 minute)", "--flexible-time-window", "Mode=OFF",
		"--target", `{"Arn":"`+fn+`","RoleArn":"`+schedRole+`","Input":"{\"action\":\"echo\",\"which\":\"every\"}"}`)
	var created struct{ ScheduleArn string }
	if err := json.Unmarshal(out, &created); err != nil || created.ScheduleArn != "arn:aws:scheduler:us-east-1:000000000000:schedule/default/every" {
		t.Fatalf("aws scheduler create-schedule: %s (%v)", out, err)
	}
	which := func(recs []destRecord) map[string]int {
		m := map[string]int{}
		for _, r := range recs {
			var in struct{ Which string }
			_ = json.Unmarshal(r.RequestPayload, &in)
			m[in.Which]++
		}
		return m
	}
	if _, err := n.followDestination(t, "ticks", 30*time.Second, func(r []destRecord) bool { return which(r)["every"] == 1 }); err != nil {
		t.Fatal(err)
	}

	when := time.Now().UTC().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	tools.run("python3", "-c", `
import sys, boto3
c = boto3.client("scheduler", endpoint_url=sys.argv[1])
c.create_schedule(Name="later", ScheduleExpression="at(%s)" % sys.argv[2], FlexibleTimeWindow={"Mode": "OFF"},
    Target={"Arn": sys.argv[3], "RoleArn": sys.argv[4], "Input": '{"action":"echo","which":"later"}',
            "RetryPolicy": {"MaximumEventAgeInSeconds": 600, "MaximumRetryAttempts": 3}})
`, n.url, when.Format("2006-01-02T15:04:05"), fn, schedRole)
	p.kill9(t)
	if time.Now().After(when) {
		t.Fatal("killing moat took until the one-time schedule's time; the test proves nothing")
	}
	time.Sleep(time.Until(when.Add(time.Second)))

	p2 := startMoat(t, dir)
	n = p2.node
	if _, err := n.followDestination(t, "ticks", 30*time.Second, func(r []destRecord) bool { return which(r)["later"] == 1 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // room for a wrong second firing
	if got := which(n.readDestination(t, "ticks")); got["every"] != 1 || got["later"] != 1 {
		t.Errorf("ticks fired: %v, want every and later once each", got)
	}
	out = tools.run("aws", "scheduler", "list-schedules", "--endpoint-url", n.url)
	var list struct {
		Schedules []struct{ Name, State string }
	}
	if err := json.Unmarshal(out, &list); err != nil || len(list.Schedules) != 2 || list.Schedules[0].Name != "every" || list.Schedules[1].Name != "later" {
		t.Errorf("aws scheduler list-schedules: %s (%v)", out, err)
	}

	// moat's own view: each schedule's progress, shared through the store.
	ls := p2.mustCLI(t, "schedule", "--output", "json")
	var views []struct {
		Name, NextTick string
		Cursor         struct{ Fired, Missed, Failed int }
	}
	if err := json.Unmarshal([]byte(ls.stdout), &views); err != nil || len(views) != 2 ||
		views[0].Cursor.Fired != 1 || views[0].NextTick == "" || views[1].Cursor.Fired != 1 || views[1].NextTick != "" {
		t.Errorf("moat schedule: %s (%v)", ls.stdout, err)
	}
	mk := p2.mustCLI(t, "schedule", "nightly", "--function", "behave", "--cron", "0 3 * * ? *", "--tz", "Europe/Berlin", "--input", `{"action":"echo"}`)
	if !strings.Contains(mk.stdout, "arn:aws:scheduler:us-east-1:000000000000:schedule/default/nightly") {
		t.Errorf("moat schedule nightly: %s", mk)
	}
	one := p2.mustCLI(t, "schedule", "nightly")
	if !strings.Contains(one.stdout, "cron(0 3 * * ? *) Europe/Berlin") || !(strings.Contains(one.stdout, "T02:00:00Z") || strings.Contains(one.stdout, "T01:00:00Z")) {
		t.Errorf("moat schedule nightly (3:00 in Berlin is 02:00 UTC in winter, 01:00 in summer):\n%s", one.stdout)
	}
	if r := p2.cli(t, "schedule", "broken", "--function", "behave", "--cron", "0 3 * * * *"); r.code == 0 || !strings.Contains(r.stderr, "ValidationException") {
		t.Errorf("moat schedule with a bad cron: %s", r)
	}
	// moat events: every source, URLs and schedules alike.
	p2.mustCLI(t, "url", "behave", "--auth", "none")
	ev := p2.mustCLI(t, "events", "ls", "--function", "behave", "--output", "json")
	var sources []struct {
		Type, Name, Function, State string
		Counts                      map[string]int
	}
	if err := json.Unmarshal([]byte(ev.stdout), &sources); err != nil {
		t.Fatalf("moat events ls: %s (%v)", ev.stdout, err)
	}
	kinds := map[string]int{}
	for _, s := range sources {
		kinds[s.Type]++
		if s.Function != "behave" || s.State != "ENABLED" {
			t.Errorf("source %+v", s)
		}
		if s.Name == "default/every" && s.Counts["fired"] != 1 {
			t.Errorf("every: %+v", s)
		}
	}
	if kinds["url"] != 1 || kinds["schedule"] != 3 {
		t.Errorf("moat events ls: %s", ev.stdout)
	}
	if get := p2.mustCLI(t, "events", "get", "every"); !strings.Contains(get.stdout, "fired 1, missed 0, failed 0") {
		t.Errorf("moat events get every:\n%s", get.stdout)
	}
	p2.mustCLI(t, "schedule", "nightly", "--delete")

	out = tools.run("python3", "-c", `
import sys, boto3
c = boto3.client("scheduler", endpoint_url=sys.argv[1])
try:
    c.get_schedule(Name="missing")
except c.exceptions.ResourceNotFoundException as e:
    print(e.response["Error"]["Code"])
`, n.url)
	if strings.TrimSpace(string(out)) != "ResourceNotFoundException" {
		t.Errorf("boto3 get_schedule of a missing schedule: %s", out)
	}
}

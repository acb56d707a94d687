package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"moat.dev/moat/internal/fixture"
)

func (n *testNode) scheduler() *scheduler.Client {
	return scheduler.New(scheduler.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(n.url),
		Credentials:  awscreds.NewStaticCredentialsProvider(n.key.AccessKeyID, n.key.SecretAccessKey, ""),
	})
}

// onSuccess sends a function's successful Event invocations' records to a
// queue destination, where a test reads what the function was given.
func (n *testNode) onSuccess(t testing.TB, fn, queue string) {
	t.Helper()
	if _, err := n.client.PutFunctionEventInvokeConfig(context.Background(), &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String(fn),
		DestinationConfig: &ltypes.DestinationConfig{
			OnSuccess: &ltypes.OnSuccess{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:" + queue)},
		},
	}); err != nil {
		t.Fatal(err)
	}
}

const schedRole = "arn:aws:iam::000000000000:role/scheduler"

// TestSchedules drives EventBridge Scheduler's API with the AWS SDK's own
// scheduler client: a rate schedule fires at once with its Input and the
// Scheduler's context attributes; a one-time schedule without Input
// delivers a Scheduled Event that aws-lambda-go decodes, then deletes
// itself; the definitions read back as written, errors are the
// Scheduler's exceptions, and requests signed for another service are
// refused.
func TestSchedules(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	sc := n.scheduler()
	n.create(t, "behave", fixture.GoZip(t, "testdata/functions/behave"), nil)
	n.onSuccess(t, "behave", "ticks")
	n.create(t, "scheduled", fixture.GoZip(t, "testdata/functions/scheduled"), nil)
	n.onSuccess(t, "scheduled", "scheduled-ok")
	behaveArn := "arn:aws:lambda:us-east-1:000000000000:function:behave"

	out, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name:               aws.String("tick"),
		ScheduleExpression: aws.String("rate(1 minute)"),
		FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		Description:        aws.String("every minute"),
		Target: &types.Target{
			Arn:     aws.String(behaveArn),
			RoleArn: aws.String(schedRole),
			Input:   aws.String(`{"action":"echo","schedule":"<aws.scheduler.schedule-arn>","at":"<aws.scheduler.scheduled-time>","id":"<aws.scheduler.execution-id>","attempt":<aws.scheduler.attempt-number>}`),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tickArn := "arn:aws:scheduler:us-east-1:000000000000:schedule/default/tick"
	if aws.ToString(out.ScheduleArn) != tickArn {
		t.Errorf("ScheduleArn %s", aws.ToString(out.ScheduleArn))
	}
	// A rate schedule without a StartDate fires at once.
	rec := n.waitDestination(t, "ticks")
	var in struct {
		Schedule, At, ID string
		Attempt          int
	}
	if err := json.Unmarshal(rec.RequestPayload, &in); err != nil {
		t.Fatalf("payload %s: %v", rec.RequestPayload, err)
	}
	if in.Schedule != tickArn || in.Attempt != 1 || in.ID != rec.RequestContext.RequestID {
		t.Errorf("tick payload %s, request id %s", rec.RequestPayload, rec.RequestContext.RequestID)
	}
	if at, err := time.Parse(time.RFC3339, in.At); err != nil || time.Since(at) > time.Minute {
		t.Errorf("scheduled time %q (%v)", in.At, err)
	}
	// The invocation's forensic record says the schedule triggered it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tr := n.signed(t, "GET", "/moat/v1/traces/"+rec.RequestContext.RequestID, nil)
		var body struct{ Records []struct{ Source string } }
		err := json.NewDecoder(tr.Body).Decode(&body)
		tr.Body.Close()
		if tr.StatusCode == 200 && err == nil && len(body.Records) == 1 && body.Records[0].Source == "schedule:default/tick" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record of %s with source schedule:default/tick: %d %+v %v", rec.RequestContext.RequestID, tr.StatusCode, body, err)
		}
	}

	// A one-time schedule, a few seconds ahead, delivering a Scheduled Event.
	when := time.Now().UTC().Add(3 * time.Second).Truncate(time.Second)
	if _, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name:                  aws.String("once"),
		ScheduleExpression:    aws.String("at(" + when.Format("2006-01-02T15:04:05") + ")"),
		FlexibleTimeWindow:    &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: types.ActionAfterCompletionDelete,
		Target:                &types.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:scheduled"), RoleArn: aws.String(schedRole)},
	}); err != nil {
		t.Fatal(err)
	}
	rec = n.waitDestination(t, "scheduled-ok")
	var ev struct {
		ID, DetailType, Source, Account, Region, Time, RequestID string
		Resources                                                []string
	}
	if err := json.Unmarshal(rec.ResponsePayload, &ev); err != nil {
		t.Fatalf("response %s: %v", rec.ResponsePayload, err)
	}
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.scheduler" || ev.Account != "000000000000" || ev.Region != "us-east-1" ||
		ev.Time != when.Format(time.RFC3339) || len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:scheduler:us-east-1:000000000000:schedule/default/once" ||
		ev.ID != ev.RequestID {
		t.Errorf("scheduled event as the function saw it: %+v", ev)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("once")})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("completed one-time schedule not deleted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The definition reads back as written, with the Scheduler's defaults.
	got, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("tick"), GroupName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Arn) != tickArn || aws.ToString(got.GroupName) != "default" || got.State != types.ScheduleStateEnabled ||
		aws.ToString(got.ScheduleExpression) != "rate(1 minute)" || aws.ToString(got.Description) != "every minute" ||
		got.FlexibleTimeWindow.Mode != types.FlexibleTimeWindowModeOff || aws.ToString(got.Target.Arn) != behaveArn ||
		aws.ToInt32(got.Target.RetryPolicy.MaximumEventAgeInSeconds) != 86400 || aws.ToInt32(got.Target.RetryPolicy.MaximumRetryAttempts) != 185 ||
		got.ActionAfterCompletion != types.ActionAfterCompletionNone || time.Since(aws.ToTime(got.CreationDate)) > time.Minute {
		t.Errorf("GetSchedule: %+v", got)
	}
	list, err := sc.ListSchedules(ctx, &scheduler.ListSchedulesInput{})
	if err != nil || len(list.Schedules) != 1 || aws.ToString(list.Schedules[0].Name) != "tick" || aws.ToString(list.Schedules[0].Target.Arn) != behaveArn {
		t.Errorf("ListSchedules: %+v %v", list, err)
	}

	// Errors are the Scheduler's exceptions.
	_, err = sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("tick"), ScheduleExpression: aws.String("rate(5 minutes)"),
		FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		Target:             &types.Target{Arn: aws.String(behaveArn), RoleArn: aws.String(schedRole)}})
	var conflict *types.ConflictException
	if !errors.As(err, &conflict) {
		t.Errorf("duplicate create: %v", err)
	}
	_, err = sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("bad"), ScheduleExpression: aws.String("cron(0 10 * * * *)"),
		FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		Target:             &types.Target{Arn: aws.String(behaveArn), RoleArn: aws.String(schedRole)}})
	var invalid *types.ValidationException
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "day-of-week must be ?") {
		t.Errorf("bad cron: %v", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("nope")}); !errors.As(err, &nf) {
		t.Errorf("missing schedule: %v", err)
	}
	if _, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("tick"), GroupName: aws.String("other")}); !errors.As(err, &nf) {
		t.Errorf("missing group: %v", err)
	}

	// Disable, then delete.
	if _, err := sc.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{Name: aws.String("tick"), ScheduleExpression: aws.String("cron(0 9 ? * MON-FRI *)"),
		ScheduleExpressionTimezone: aws.String("Europe/Paris"), State: types.ScheduleStateDisabled,
		FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeFlexible, MaximumWindowInMinutes: aws.Int32(15)},
		Target:             &types.Target{Arn: aws.String(behaveArn), RoleArn: aws.String(schedRole)}}); err != nil {
		t.Fatal(err)
	}
	got, err = sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("tick")})
	if err != nil || got.State != types.ScheduleStateDisabled || aws.ToString(got.ScheduleExpressionTimezone) != "Europe/Paris" ||
		aws.ToInt32(got.FlexibleTimeWindow.MaximumWindowInMinutes) != 15 || !got.CreationDate.Before(*got.LastModificationDate) {
		t.Errorf("after update: %+v %v", got, err)
	}
	if _, err := sc.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("tick")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("tick")}); !errors.As(err, &nf) {
		t.Errorf("delete twice: %v", err)
	}

	// Schedule groups: made, listed, and deleted with their schedules.
	if _, err := sc.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String("team")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String("team")}); !errors.As(err, &conflict) {
		t.Errorf("duplicate group: %v", err)
	}
	for _, g := range []string{"default", "team"} {
		if _, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("same-name"), GroupName: aws.String(g),
			ScheduleExpression: aws.String("rate(7 days)"), State: types.ScheduleStateDisabled,
			FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
			Target:             &types.Target{Arn: aws.String(behaveArn), RoleArn: aws.String(schedRole)}}); err != nil {
			t.Fatalf("create in %s: %v", g, err)
		}
	}
	var listed []string
	pages := scheduler.NewListSchedulesPaginator(sc, &scheduler.ListSchedulesInput{MaxResults: aws.Int32(1)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Schedules {
			listed = append(listed, aws.ToString(s.GroupName)+"/"+aws.ToString(s.Name))
		}
	}
	if strings.Join(listed, ",") != "default/same-name,team/same-name" {
		t.Errorf("ListSchedules across groups, a page at a time: %v", listed)
	}
	groups, err := sc.ListScheduleGroups(ctx, &scheduler.ListScheduleGroupsInput{})
	if err != nil || len(groups.ScheduleGroups) != 2 || aws.ToString(groups.ScheduleGroups[1].Arn) != "arn:aws:scheduler:us-east-1:000000000000:schedule-group/team" {
		t.Errorf("ListScheduleGroups: %+v %v", groups, err)
	}
	if _, err := sc.DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String("team")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("same-name"), GroupName: aws.String("team")}); !errors.As(err, &nf) {
		t.Errorf("schedule of a deleted group: %v", err)
	}
	if _, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("same-name")}); err != nil {
		t.Errorf("the default group's schedule of the same name: %v", err)
	}
	if _, err := sc.DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String("default")}); !errors.As(err, &invalid) {
		t.Errorf("deleting the default group: %v", err)
	}

	// A request signed for Lambda is not a Scheduler request.
	resp := n.signed(t, http.MethodGet, "/schedules", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "'scheduler'") {
		t.Errorf("lambda-signed scheduler request: %d %s", resp.StatusCode, b)
	}
}

// TestSchedulesClusterFiresOnce: two nodes share one NATS server (a
// cluster of moat nodes); each runs a ticker over the same schedules, and
// each tick still invokes the function once.
func TestSchedulesClusterFiresOnce(t *testing.T) {
	fixture.RequireRoot(t)
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(srv.Shutdown) // after both nodes: cleanups run last-in first-out
	join := func(o *Options) { o.NATSURL = srv.ClientURL() }
	a, b := startNode(t, join), startNode(t, join)
	ctx := context.Background()
	a.create(t, "behave", fixture.GoZip(t, "testdata/functions/behave"), nil)
	a.onSuccess(t, "behave", "ticks")
	when := time.Now().UTC().Add(3 * time.Second).Truncate(time.Second)
	for name, expr := range map[string]string{"now": "rate(1 minute)", "soon": "at(" + when.Format("2006-01-02T15:04:05") + ")"} {
		if _, err := b.scheduler().CreateSchedule(ctx, &scheduler.CreateScheduleInput{
			Name: aws.String(name), ScheduleExpression: aws.String(expr),
			FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
			Target: &types.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:behave"), RoleArn: aws.String(schedRole),
				Input: aws.String(`{"action":"echo","which":"` + name + `"}`)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.followDestination(t, "ticks", 30*time.Second, func(r []destRecord) bool { return len(r) == 2 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // room for a second copy of either tick
	seen := map[string]int{}
	for _, r := range a.readDestination(t, "ticks") {
		var in struct{ Which string }
		_ = json.Unmarshal(r.RequestPayload, &in)
		seen[in.Which]++
	}
	if seen["now"] != 1 || seen["soon"] != 1 || len(seen) != 2 {
		t.Errorf("ticks invoked the function %v times; want each once", seen)
	}
	// Both nodes' tickers follow both schedules: each could have fired them.
	for i, n := range []*testNode{a, b} {
		resp := n.signed(t, http.MethodGet, "/moat/v1/status", nil)
		var st struct {
			Schedules struct{ Schedules, Enabled int }
		}
		err := json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.Schedules.Schedules != 2 || st.Schedules.Enabled != 2 {
			t.Errorf("node %d status: %+v %v", i, st, err)
		}
	}
}

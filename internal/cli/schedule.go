package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

var scheduleCommand = &command{
	name:    "schedule",
	group:   groupFunctions,
	args:    "[NAME] [--function F (--rate R | --cron C | --at T)] [--delete] [flags]",
	summary: "list, make, change or remove schedules that invoke functions",
	help: `
Without NAME, list every schedule with its next tick and what became of
its ticks so far (fired, missed while no node ran, failed). With NAME
alone, show that schedule.

--function with one of --rate, --cron or --at makes schedule NAME (or
replaces it) through the EventBridge Scheduler API, as
'aws scheduler create-schedule' would:

  --rate '5 minutes'             every 5 minutes, starting now
  --cron '0 9 ? * MON-FRI *'     AWS's six-field cron, in --tz (default UTC)
  --at 2027-01-01T00:00:00       once, in --tz

Each tick is an Event invocation of the function (durable, retried, sent
to its destinations). --input is the event (default: a Scheduled Event);
<aws.scheduler.scheduled-time>, <aws.scheduler.schedule-arn>,
<aws.scheduler.execution-id> and <aws.scheduler.attempt-number> in it
are filled in. --delete removes the schedule.`,
	run: runSchedule,
}

// schedulerClient is an AWS SDK Scheduler client pointed at moat.
func (a *app) schedulerClient(cfg clientConfig) *scheduler.Client {
	return scheduler.NewFromConfig(aws.Config{
		Region:           cfg.Region,
		Credentials:      awscreds.NewStaticCredentialsProvider(cfg.Creds.AccessKeyID, cfg.Creds.SecretAccessKey, cfg.Creds.SessionToken),
		HTTPClient:       a.http(),
		RetryMaxAttempts: 1,
		AppID:            "moat-cli",
	}, func(o *scheduler.Options) {
		o.BaseEndpoint = aws.String(cfg.Endpoint)
	})
}

// scheduleView is an item of GET /moat/v1/schedules.
type scheduleView struct {
	Name                       string `json:"Name"`
	GroupName                  string `json:"GroupName"`
	Arn                        string `json:"Arn"`
	State                      string `json:"State"`
	ScheduleExpression         string `json:"ScheduleExpression"`
	ScheduleExpressionTimezone string `json:"ScheduleExpressionTimezone,omitempty"`
	Target                     string `json:"Target"`
	NextTick                   string `json:"NextTick,omitempty"`
	Cursor                     struct {
		Last      string `json:"last"`
		Fired     int64  `json:"fired"`
		Missed    int64  `json:"missed"`
		Failed    int64  `json:"failed"`
		LastError string `json:"lastError,omitempty"`
	} `json:"Cursor"`
}

func runSchedule(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	function := c.fs.String("function", "", "the function (name or ARN, :ALIAS to pick one) each tick invokes")
	rate := c.fs.String("rate", "", "fire every `'N minutes|hours|days'`")
	cron := c.fs.String("cron", "", "fire on the six-field cron `'M H DOM MON DOW Y'`")
	at := c.fs.String("at", "", "fire once at `yyyy-mm-ddThh:mm:ss`")
	tz := c.fs.String("tz", "", "IANA time zone of --cron and --at (default UTC)")
	input := c.fs.String("input", "", "the event each tick sends (`JSON`; default a Scheduled Event)")
	disabled := c.fs.Bool("disabled", false, "make the schedule disabled: it keeps its definition and does not fire")
	window := c.fs.Int("flexible-window", 0, "fire up to `MINUTES` late, spread evenly (default: on time)")
	del := c.fs.Bool("delete", false, "remove the schedule")
	pos, err := c.parseN(0, 1)
	if err != nil {
		return err
	}
	var expr string
	set := 0
	for _, e := range []struct{ v, form string }{{*rate, "rate(%s)"}, {*cron, "cron(%s)"}, {*at, "at(%s)"}} {
		if e.v != "" {
			expr, set = fmt.Sprintf(e.form, e.v), set+1
		}
	}
	making := *function != "" || set > 0
	switch {
	case set > 1:
		return usagef("give one of --rate, --cron and --at")
	case making && (len(pos) == 0 || *function == "" || set == 0):
		return usagef("making a schedule takes NAME, --function and one of --rate, --cron, --at")
	case *del && (len(pos) == 0 || making):
		return usagef("--delete takes NAME and no other settings")
	case !making && (*input != "" || *tz != "" || *disabled || *window != 0):
		return usagef("--input, --tz, --disabled and --flexible-window go with --function")
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	if *del {
		if _, err := c.schedulerClient(cfg).DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: &pos[0]}); err != nil {
			return err
		}
		_, err := fmt.Fprintf(c.stdout, "deleted schedule %s\n", pos[0])
		return err
	}
	if making {
		arn, err := c.functionARN(ctx, cfg, *function)
		if err != nil {
			return err
		}
		account := strings.Split(arn, ":")[4]
		win := &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff}
		if *window > 0 {
			win = &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeFlexible, MaximumWindowInMinutes: aws.Int32(int32(*window))}
		}
		target := &types.Target{Arn: &arn, RoleArn: aws.String("arn:aws:iam::" + account + ":role/moat-scheduler")}
		if *input != "" {
			target.Input = input
		}
		state := types.ScheduleStateEnabled
		if *disabled {
			state = types.ScheduleStateDisabled
		}
		var zone *string
		if *tz != "" {
			zone = tz
		}
		cl := c.schedulerClient(cfg)
		out, err := cl.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: &pos[0], ScheduleExpression: &expr,
			ScheduleExpressionTimezone: zone, FlexibleTimeWindow: win, Target: target, State: state})
		var conflict *types.ConflictException
		if errors.As(err, &conflict) {
			up, uerr := cl.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{Name: &pos[0], ScheduleExpression: &expr,
				ScheduleExpressionTimezone: zone, FlexibleTimeWindow: win, Target: target, State: state})
			if uerr != nil {
				return uerr
			}
			out, err = &scheduler.CreateScheduleOutput{ScheduleArn: up.ScheduleArn}, nil
		}
		if err != nil {
			return err
		}
		if c.json() {
			return printJSON(c.stdout, map[string]string{"ScheduleArn": aws.ToString(out.ScheduleArn)})
		}
		_, err = fmt.Fprintf(c.stdout, "%s  %s -> %s\n", aws.ToString(out.ScheduleArn), expr, arn)
		return err
	}
	q := url.Values{}
	if len(pos) == 1 {
		q.Set("prefix", pos[0])
	}
	resp, err := c.moatGet(ctx, cfg, "ListSchedules", "/moat/v1/schedules", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var all []scheduleView
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		return fmt.Errorf("decode schedules: %w", err)
	}
	if len(pos) == 1 {
		var one []scheduleView
		for _, s := range all {
			if s.Name == pos[0] {
				one = append(one, s)
			}
		}
		if len(one) == 0 {
			return fmt.Errorf("schedule %s does not exist", pos[0])
		}
		all = one
	}
	if c.json() {
		return printJSON(c.stdout, all)
	}
	t := newTable(c.stdout, "NAME", "STATE", "EXPRESSION", "TARGET", "NEXT", "FIRED", "MISSED", "FAILED", "LAST ERROR")
	for _, s := range all {
		expr := s.ScheduleExpression
		if s.ScheduleExpressionTimezone != "" {
			expr += " " + s.ScheduleExpressionTimezone
		}
		target := s.Target
		if i := strings.Index(target, ":function:"); i >= 0 {
			target = target[i+len(":function:"):]
		}
		t.row(s.Name, s.State, expr, target, orDash(s.NextTick), s.Cursor.Fired, s.Cursor.Missed, s.Cursor.Failed, orDash(s.Cursor.LastError))
	}
	return t.flush()
}

// functionARN turns NAME[:QUALIFIER] into the function's ARN, as the node
// names it; an ARN is used as it is.
func (c *cmdCtx) functionARN(ctx context.Context, cfg clientConfig, fn string) (string, error) {
	if strings.HasPrefix(fn, "arn:") {
		return fn, nil
	}
	name, qual, _ := strings.Cut(fn, ":")
	out, err := c.lambdaClient(cfg).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: &name})
	if err != nil {
		return "", err
	}
	arn := aws.ToString(out.Configuration.FunctionArn)
	if qual != "" {
		arn += ":" + qual
	}
	return arn, nil
}

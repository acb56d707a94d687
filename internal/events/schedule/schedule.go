// Package schedule runs functions on a timetable: EventBridge Scheduler's
// schedules (rate, cron and one-time expressions in a time zone, with a
// flexible window, a target input, a retry policy and a dead-letter queue).
//
// The definitions live in a JetStream KV bucket shared by every node of a
// cluster, beside one cursor per schedule (the last tick handled). Every
// node runs a Ticker over all schedules; at a tick each node hands the
// event to the asynchronous invocation queue under the same request id, so
// JetStream's duplicate window keeps one, and moves the cursor with a
// compare-and-set, so the tick is counted once. Durability, the function's
// own retries and its destinations are the queue's, as for any Event
// invocation.
package schedule

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Errors the API maps to the Scheduler's exceptions.
var (
	ErrNotFound   = errors.New("resource not found") // ResourceNotFoundException
	ErrConflict   = errors.New("conflict")           // ConflictException
	ErrValidation = errors.New("validation failed")  // ValidationException
)

type apiError struct {
	msg  string
	kind error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.kind }

func newError(kind error, format string, a ...any) error {
	return &apiError{msg: fmt.Sprintf(format, a...), kind: kind}
}

// DefaultGroup is the schedule group every account has.
const DefaultGroup = "default"

// Values of the enumerations.
const (
	StateEnabled  = "ENABLED"
	StateDisabled = "DISABLED"
	ModeOff       = "OFF"
	ModeFlexible  = "FLEXIBLE"
	AfterNone     = "NONE"
	AfterDelete   = "DELETE"
)

// Defaults of a target's retry policy, as the Scheduler's.
const (
	DefaultMaxEventAge = 86400
	DefaultMaxRetries  = 185
)

// MaxInput bounds a target's input: the size of an Event invocation.
const MaxInput = 256 * 1024

// Schedule is one schedule's definition, as stored.
type Schedule struct {
	Name                       string             `json:"name"`
	GroupName                  string             `json:"group"`
	ScheduleExpression         string             `json:"expression"`
	ScheduleExpressionTimezone string             `json:"timezone,omitempty"`
	StartDate                  *time.Time         `json:"startDate,omitempty"`
	EndDate                    *time.Time         `json:"endDate,omitempty"`
	Description                string             `json:"description,omitempty"`
	State                      string             `json:"state"`
	FlexibleTimeWindow         FlexibleTimeWindow `json:"flexibleTimeWindow"`
	Target                     Target             `json:"target"`
	ActionAfterCompletion      string             `json:"actionAfterCompletion"`
	ClientToken                string             `json:"clientToken,omitempty"` // of the request that created it
	CreationDate               time.Time          `json:"created"`
	LastModificationDate       time.Time          `json:"modified"`
}

// FlexibleTimeWindow lets a tick fire up to MaximumWindowInMinutes late.
type FlexibleTimeWindow struct {
	Mode                   string `json:"mode"`
	MaximumWindowInMinutes *int   `json:"maximumWindowInMinutes,omitempty"`
}

// Target is what a tick invokes: a Lambda function, version or alias.
type Target struct {
	Arn              string            `json:"arn"`
	RoleArn          string            `json:"roleArn"`
	Input            string            `json:"input,omitempty"`
	RetryPolicy      RetryPolicy       `json:"retryPolicy"`
	DeadLetterConfig *DeadLetterConfig `json:"deadLetterConfig,omitempty"`
}

// RetryPolicy bounds how long and how often moat retries handing a tick's
// event to the function's queue.
type RetryPolicy struct {
	MaximumEventAgeInSeconds int `json:"maximumEventAgeInSeconds"`
	MaximumRetryAttempts     int `json:"maximumRetryAttempts"`
}

// DeadLetterConfig names the queue that receives events never handed over.
type DeadLetterConfig struct {
	Arn string `json:"arn"`
}

var (
	nameRE    = regexp.MustCompile(`^[0-9a-zA-Z\-_.]{1,64}$`)
	lambdaRE  = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[a-zA-Z0-9\-_]{1,64}(:(\$LATEST|[a-zA-Z0-9\-_]{1,128}))?$`)
	sqsRE     = regexp.MustCompile(`^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[a-zA-Z0-9\-_]{1,80}(\.fifo)?$`)
	roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@\-/]{1,512}$`)
)

// ValidName reports whether s is a valid schedule or group name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Normalize fills a definition's defaults and checks it against the
// Scheduler's constraints, reporting every violation at once. It returns
// the parsed expression.
func (s *Schedule) Normalize() (*Expr, error) {
	var v []string
	add := func(format string, a ...any) { v = append(v, fmt.Sprintf(format, a...)) }
	if s.GroupName == "" {
		s.GroupName = DefaultGroup
	}
	if s.State == "" {
		s.State = StateEnabled
	}
	if s.ActionAfterCompletion == "" {
		s.ActionAfterCompletion = AfterNone
	}
	if !ValidName(s.Name) {
		add("Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+ and have length between 1 and 64")
	}
	if !ValidName(s.GroupName) {
		add("Value at 'groupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+ and have length between 1 and 64")
	}
	if len(s.Description) > 512 {
		add("Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 512")
	}
	if s.State != StateEnabled && s.State != StateDisabled {
		add("Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]", clip(s.State))
	}
	if s.ActionAfterCompletion != AfterNone && s.ActionAfterCompletion != AfterDelete {
		add("Value '%s' at 'actionAfterCompletion' failed to satisfy constraint: Member must satisfy enum value set: [NONE, DELETE]", clip(s.ActionAfterCompletion))
	}
	switch w := s.FlexibleTimeWindow; w.Mode {
	case ModeOff:
		if w.MaximumWindowInMinutes != nil {
			add("MaximumWindowInMinutes is allowed only when FlexibleTimeWindow.Mode is FLEXIBLE.")
		}
	case ModeFlexible:
		if w.MaximumWindowInMinutes == nil || *w.MaximumWindowInMinutes < 1 || *w.MaximumWindowInMinutes > 1440 {
			add("FlexibleTimeWindow.MaximumWindowInMinutes must be between 1 and 1440 when Mode is FLEXIBLE.")
		}
	case "":
		add("FlexibleTimeWindow.Mode is required: OFF or FLEXIBLE.")
	default:
		add("Value '%s' at 'flexibleTimeWindow.mode' failed to satisfy constraint: Member must satisfy enum value set: [OFF, FLEXIBLE]", clip(w.Mode))
	}
	t := &s.Target
	switch {
	case t.Arn == "":
		add("Target.Arn is required.")
	case !lambdaRE.MatchString(t.Arn):
		add("Target.Arn %s is not a Lambda function ARN: moat schedules invoke Lambda functions (arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]).", clip(t.Arn))
	}
	if t.RoleArn == "" {
		add("Target.RoleArn is required.")
	} else if !roleARNRE.MatchString(t.RoleArn) {
		add("Target.RoleArn %s is not an IAM role ARN.", clip(t.RoleArn))
	}
	if len(t.Input) > MaxInput {
		add("Target.Input is %d bytes; the limit is %d.", len(t.Input), MaxInput)
	}
	if t.RetryPolicy.MaximumEventAgeInSeconds == 0 {
		t.RetryPolicy.MaximumEventAgeInSeconds = DefaultMaxEventAge
	}
	if a := t.RetryPolicy.MaximumEventAgeInSeconds; a < 60 || a > 86400 {
		add("Value '%d' at 'target.retryPolicy.maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 86400", a)
	}
	if a := t.RetryPolicy.MaximumRetryAttempts; a < 0 || a > 185 {
		add("Value '%d' at 'target.retryPolicy.maximumRetryAttempts' failed to satisfy constraint: Member must have value between 0 and 185", a)
	}
	if d := t.DeadLetterConfig; d != nil && !sqsRE.MatchString(d.Arn) {
		add("Target.DeadLetterConfig.Arn %s is not an SQS queue ARN.", clip(d.Arn))
	}
	for field, d := range map[string]*time.Time{"startDate": s.StartDate, "endDate": s.EndDate} {
		if d != nil && (d.Year() < 1970 || d.Year() > 9999) {
			add("Value at '%s' failed to satisfy constraint: Member must be a date between 1970 and 9999", field)
		}
	}
	if s.StartDate != nil && s.EndDate != nil && !s.EndDate.After(*s.StartDate) {
		add("The EndDate must be later than the StartDate.")
	}
	var expr *Expr
	switch {
	case s.ScheduleExpression == "":
		add("ScheduleExpression is required.")
	case len(s.ScheduleExpression) > 256:
		add("Value at 'scheduleExpression' failed to satisfy constraint: Member must have length less than or equal to 256")
	case len(s.ScheduleExpressionTimezone) > 50:
		add("Value at 'scheduleExpressionTimezone' failed to satisfy constraint: Member must have length less than or equal to 50")
	default:
		var err error
		if expr, err = ParseExpr(s.ScheduleExpression, s.ScheduleExpressionTimezone); err != nil {
			add("%s", err)
		}
	}
	if len(v) > 0 {
		return nil, newError(ErrValidation, "%s", strings.Join(v, "; "))
	}
	return expr, nil
}

// Arn is the schedule's ARN in region and account.
func (s *Schedule) Arn(region, account string) string {
	return "arn:aws:scheduler:" + region + ":" + account + ":schedule/" + s.GroupName + "/" + s.Name
}

// Anchor is where a rate schedule counts from: its StartDate, else the
// time it was created or last changed (so it fires at once, as AWS's).
func (s *Schedule) Anchor() time.Time {
	if s.StartDate != nil {
		return *s.StartDate
	}
	return s.LastModificationDate
}

// NextTick is the schedule's first tick strictly after t within its start
// and end dates, or the zero time if there is none.
func (s *Schedule) NextTick(e *Expr, t time.Time) time.Time {
	if s.StartDate != nil && t.Before(*s.StartDate) {
		t = s.StartDate.Add(-time.Nanosecond)
	}
	n := e.RateNext(s.Anchor(), t)
	if n.IsZero() || (s.EndDate != nil && n.After(*s.EndDate)) {
		return time.Time{}
	}
	return n
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

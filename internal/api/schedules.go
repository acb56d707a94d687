package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"moat.dev/moat/internal/events/schedule"
)

// EventBridge Scheduler operations (REST-JSON, SigV4 service "scheduler"):
// the same paths, fields and exceptions, so the AWS SDKs' and CLI's
// scheduler clients work with only an endpoint override.

// SchedulerOptions enable the Scheduler API.
type SchedulerOptions struct {
	Store *schedule.Store
	// Auth checks signatures scoped to service "scheduler".
	Auth      Authenticator
	Region    string
	AccountID string
	Now       func() time.Time // default time.Now
}

// Exceptions of the Scheduler API beyond Lambda's.
const (
	CodeConflict       Code = "ConflictException"
	CodeInternalServer Code = "InternalServerException"
)

func (s *Server) scheduleRoutes() {
	o := s.opts.Scheduler
	if o == nil || o.Store == nil {
		return
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := func(pattern string, limit int64, fn handlerFunc) { s.handleWith(o.Auth, pattern, limit, fn) }
	h("POST /schedules/{name}", 1<<20, s.createSchedule)
	h("GET /schedules/{name}", 0, s.getSchedule)
	h("PUT /schedules/{name}", 1<<20, s.updateSchedule)
	h("DELETE /schedules/{name}", 0, s.deleteSchedule)
	h("GET /schedules", 0, s.listSchedules)
	h("POST /schedule-groups/{name}", 1<<20, s.createScheduleGroup)
	h("GET /schedule-groups/{name}", 0, s.getScheduleGroup)
	h("DELETE /schedule-groups/{name}", 0, s.deleteScheduleGroup)
	h("GET /schedule-groups", 0, s.listScheduleGroups)
	// moat's own view, signed as moat's other endpoints: every schedule
	// with its progress.
	s.handle("GET /moat/v1/schedules", 0, s.scheduleStatus)
}

// ScheduleStatus is an item of GET /moat/v1/schedules: a schedule, its next
// tick and what became of its ticks so far.
type ScheduleStatus struct {
	Name       string          `json:"Name"`
	GroupName  string          `json:"GroupName"`
	Arn        string          `json:"Arn"`
	State      string          `json:"State"`
	Expression string          `json:"ScheduleExpression"`
	Timezone   string          `json:"ScheduleExpressionTimezone,omitempty"`
	Target     string          `json:"Target"`
	NextTick   string          `json:"NextTick,omitempty"` // RFC 3339; none when disabled or complete
	Cursor     schedule.Cursor `json:"Cursor"`
}

func (s *Server) scheduleStatus(w http.ResponseWriter, r *http.Request, _ []byte) error {
	out, err := s.scheduleStatuses(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// scheduleStatuses is every schedule (of ?group, named ?prefix...) with
// its progress.
func (s *Server) scheduleStatuses(r *http.Request) ([]ScheduleStatus, error) {
	st := s.opts.Scheduler.Store
	all, err := st.List(r.Context(), r.URL.Query().Get("group"), r.URL.Query().Get("prefix"), "")
	if err != nil {
		return nil, scheduleError(err)
	}
	now := s.opts.Scheduler.Now()
	out := []ScheduleStatus{}
	for _, sc := range all {
		cur, _, err := st.Cursor(r.Context(), sc.GroupName, sc.Name)
		if err != nil {
			return nil, err
		}
		item := ScheduleStatus{Name: sc.Name, GroupName: sc.GroupName, Arn: s.scheduleArn(sc), State: sc.State,
			Expression: sc.ScheduleExpression, Timezone: sc.ScheduleExpressionTimezone, Target: sc.Target.Arn, Cursor: cur}
		if e, err := sc.Normalize(); err == nil && sc.State == schedule.StateEnabled {
			from := sc.LastModificationDate.Add(-time.Nanosecond)
			from = later(from, cur.Last, now)
			if next := sc.NextTick(e, from); !next.IsZero() {
				item.NextTick = next.UTC().Format(time.RFC3339)
			}
		}
		out = append(out, item)
	}
	return out, nil
}

// epochSeconds is a Scheduler timestamp on the wire.
type epochSeconds float64

func toEpoch(t time.Time) epochSeconds { return epochSeconds(float64(t.UnixMilli()) / 1000) }

func fromEpoch(e *epochSeconds) *time.Time {
	if e == nil {
		return nil
	}
	sec, frac := math.Modf(float64(*e))
	t := time.Unix(int64(sec), int64(frac*1e9)).UTC().Truncate(time.Millisecond)
	return &t
}

// ScheduleRequest is the body of CreateSchedule and UpdateSchedule.
type ScheduleRequest struct {
	ActionAfterCompletion      string                       `json:"ActionAfterCompletion"`
	ClientToken                string                       `json:"ClientToken"`
	Description                string                       `json:"Description"`
	EndDate                    *epochSeconds                `json:"EndDate"`
	FlexibleTimeWindow         *schedule.FlexibleTimeWindow `json:"FlexibleTimeWindow"`
	GroupName                  string                       `json:"GroupName"`
	KmsKeyArn                  string                       `json:"KmsKeyArn"`
	ScheduleExpression         string                       `json:"ScheduleExpression"`
	ScheduleExpressionTimezone string                       `json:"ScheduleExpressionTimezone"`
	StartDate                  *epochSeconds                `json:"StartDate"`
	State                      string                       `json:"State"`
	Target                     *ScheduleTarget              `json:"Target"`
}

// ScheduleTarget is a schedule's target on the wire. The parameters of
// targets other than Lambda are refused, not ignored.
type ScheduleTarget struct {
	Arn              string             `json:"Arn"`
	RoleArn          string             `json:"RoleArn"`
	Input            string             `json:"Input,omitempty"`
	RetryPolicy      *ScheduleRetry     `json:"RetryPolicy,omitempty"`
	DeadLetterConfig *ScheduleDeadQueue `json:"DeadLetterConfig,omitempty"`

	EcsParameters               json.RawMessage `json:"EcsParameters,omitempty"`
	EventBridgeParameters       json.RawMessage `json:"EventBridgeParameters,omitempty"`
	KinesisParameters           json.RawMessage `json:"KinesisParameters,omitempty"`
	SageMakerPipelineParameters json.RawMessage `json:"SageMakerPipelineParameters,omitempty"`
	SqsParameters               json.RawMessage `json:"SqsParameters,omitempty"`
}

// ScheduleRetry is a target's RetryPolicy on the wire.
type ScheduleRetry struct {
	MaximumEventAgeInSeconds *int `json:"MaximumEventAgeInSeconds,omitempty"`
	MaximumRetryAttempts     *int `json:"MaximumRetryAttempts,omitempty"`
}

// ScheduleDeadQueue is a target's DeadLetterConfig on the wire.
type ScheduleDeadQueue struct {
	Arn string `json:"Arn"`
}

// ScheduleOutput is GetSchedule's answer.
type ScheduleOutput struct {
	ActionAfterCompletion      string                      `json:"ActionAfterCompletion"`
	Arn                        string                      `json:"Arn"`
	CreationDate               epochSeconds                `json:"CreationDate"`
	Description                string                      `json:"Description,omitempty"`
	EndDate                    *epochSeconds               `json:"EndDate,omitempty"`
	FlexibleTimeWindow         schedule.FlexibleTimeWindow `json:"FlexibleTimeWindow"`
	GroupName                  string                      `json:"GroupName"`
	LastModificationDate       epochSeconds                `json:"LastModificationDate"`
	Name                       string                      `json:"Name"`
	ScheduleExpression         string                      `json:"ScheduleExpression"`
	ScheduleExpressionTimezone string                      `json:"ScheduleExpressionTimezone,omitempty"`
	StartDate                  *epochSeconds               `json:"StartDate,omitempty"`
	State                      string                      `json:"State"`
	Target                     ScheduleTarget              `json:"Target"`
}

// The wire names of a FlexibleTimeWindow are capitalised; schedule's
// record uses its own, so the API marshals through this shape.
type flexWire struct {
	Mode                   string `json:"Mode"`
	MaximumWindowInMinutes *int   `json:"MaximumWindowInMinutes,omitempty"`
}

func (r *ScheduleRequest) UnmarshalJSON(b []byte) error {
	type plain ScheduleRequest
	var aux struct {
		plain
		FlexibleTimeWindow *flexWire `json:"FlexibleTimeWindow"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*r = ScheduleRequest(aux.plain)
	if f := aux.FlexibleTimeWindow; f != nil {
		r.FlexibleTimeWindow = &schedule.FlexibleTimeWindow{Mode: f.Mode, MaximumWindowInMinutes: f.MaximumWindowInMinutes}
	}
	return nil
}

func (o ScheduleOutput) MarshalJSON() ([]byte, error) {
	type plain ScheduleOutput
	return json.Marshal(struct {
		plain
		FlexibleTimeWindow flexWire `json:"FlexibleTimeWindow"`
	}{plain(o), flexWire(o.FlexibleTimeWindow)})
}

// scheduleError maps the schedule package's errors to the Scheduler's
// exceptions.
func scheduleError(err error) error {
	switch {
	case errors.Is(err, schedule.ErrValidation):
		return errorf(CodeValidation, err.Error())
	case errors.Is(err, schedule.ErrNotFound):
		return errorf(CodeResourceNotFound, err.Error())
	case errors.Is(err, schedule.ErrConflict):
		return errorf(CodeConflict, err.Error())
	}
	return err
}

// definition turns a request into a normalized schedule named name.
func (s *Server) definition(name string, body []byte) (*schedule.Schedule, error) {
	var req ScheduleRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, errorf(CodeValidation, err.(*Error).Message)
	}
	if req.KmsKeyArn != "" {
		return nil, errorf(CodeValidation, "KmsKeyArn is not supported: moat keeps schedules in its own store and cannot encrypt them with a KMS key.")
	}
	if req.FlexibleTimeWindow == nil {
		return nil, errorf(CodeValidation, "FlexibleTimeWindow is required.")
	}
	if req.Target == nil {
		return nil, errorf(CodeValidation, "Target is required.")
	}
	t := req.Target
	for field, raw := range map[string]json.RawMessage{"EcsParameters": t.EcsParameters, "EventBridgeParameters": t.EventBridgeParameters,
		"KinesisParameters": t.KinesisParameters, "SageMakerPipelineParameters": t.SageMakerPipelineParameters, "SqsParameters": t.SqsParameters} {
		if len(raw) > 0 && string(raw) != "null" {
			return nil, errorf(CodeValidation, "Target."+field+" is not supported: moat schedules invoke Lambda functions.")
		}
	}
	now := s.opts.Scheduler.Now().UTC().Truncate(time.Millisecond)
	sc := &schedule.Schedule{
		Name:                       name,
		GroupName:                  req.GroupName,
		ScheduleExpression:         req.ScheduleExpression,
		ScheduleExpressionTimezone: req.ScheduleExpressionTimezone,
		StartDate:                  fromEpoch(req.StartDate),
		EndDate:                    fromEpoch(req.EndDate),
		Description:                req.Description,
		State:                      req.State,
		FlexibleTimeWindow:         *req.FlexibleTimeWindow,
		ActionAfterCompletion:      req.ActionAfterCompletion,
		ClientToken:                req.ClientToken,
		CreationDate:               now,
		LastModificationDate:       now,
		Target:                     schedule.Target{Arn: t.Arn, RoleArn: t.RoleArn, Input: t.Input},
	}
	if rp := t.RetryPolicy; rp != nil {
		if rp.MaximumEventAgeInSeconds != nil {
			if *rp.MaximumEventAgeInSeconds == 0 { // refused, not defaulted
				return nil, errorf(CodeValidation, "Value '0' at 'target.retryPolicy.maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 86400")
			}
			sc.Target.RetryPolicy.MaximumEventAgeInSeconds = *rp.MaximumEventAgeInSeconds
		}
		sc.Target.RetryPolicy.MaximumRetryAttempts = schedule.DefaultMaxRetries
		if rp.MaximumRetryAttempts != nil {
			sc.Target.RetryPolicy.MaximumRetryAttempts = *rp.MaximumRetryAttempts
		}
	} else {
		sc.Target.RetryPolicy.MaximumRetryAttempts = schedule.DefaultMaxRetries
	}
	if d := t.DeadLetterConfig; d != nil {
		sc.Target.DeadLetterConfig = &schedule.DeadLetterConfig{Arn: d.Arn}
	}
	if _, err := sc.Normalize(); err != nil {
		return nil, scheduleError(err)
	}
	return sc, nil
}

func (s *Server) scheduleArn(sc *schedule.Schedule) string {
	return sc.Arn(s.opts.Scheduler.Region, s.opts.Scheduler.AccountID)
}

func (s *Server) createSchedule(w http.ResponseWriter, r *http.Request, body []byte) error {
	sc, err := s.definition(r.PathValue("name"), body)
	if err != nil {
		return err
	}
	st := s.opts.Scheduler.Store
	if err := st.Create(r.Context(), sc); err != nil {
		if errors.Is(err, schedule.ErrConflict) && sc.ClientToken != "" {
			// A retry of the same request (same client token) succeeds.
			if old, _, gerr := st.Get(r.Context(), sc.GroupName, sc.Name); gerr == nil && old.ClientToken == sc.ClientToken {
				return writeJSON(w, http.StatusOK, map[string]string{"ScheduleArn": s.scheduleArn(old)})
			}
		}
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"ScheduleArn": s.scheduleArn(sc)})
}

func (s *Server) updateSchedule(w http.ResponseWriter, r *http.Request, body []byte) error {
	sc, err := s.definition(r.PathValue("name"), body)
	if err != nil {
		return err
	}
	if err := s.opts.Scheduler.Store.Update(r.Context(), sc); err != nil {
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"ScheduleArn": s.scheduleArn(sc)})
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request, _ []byte) error {
	sc, _, err := s.opts.Scheduler.Store.Get(r.Context(), r.URL.Query().Get("groupName"), r.PathValue("name"))
	if err != nil {
		return scheduleError(err)
	}
	out := ScheduleOutput{
		ActionAfterCompletion:      sc.ActionAfterCompletion,
		Arn:                        s.scheduleArn(sc),
		CreationDate:               toEpoch(sc.CreationDate),
		Description:                sc.Description,
		FlexibleTimeWindow:         sc.FlexibleTimeWindow,
		GroupName:                  sc.GroupName,
		LastModificationDate:       toEpoch(sc.LastModificationDate),
		Name:                       sc.Name,
		ScheduleExpression:         sc.ScheduleExpression,
		ScheduleExpressionTimezone: sc.ScheduleExpressionTimezone,
		State:                      sc.State,
		Target: ScheduleTarget{Arn: sc.Target.Arn, RoleArn: sc.Target.RoleArn, Input: sc.Target.Input,
			RetryPolicy: &ScheduleRetry{MaximumEventAgeInSeconds: &sc.Target.RetryPolicy.MaximumEventAgeInSeconds,
				MaximumRetryAttempts: &sc.Target.RetryPolicy.MaximumRetryAttempts}},
	}
	if sc.StartDate != nil {
		e := toEpoch(*sc.StartDate)
		out.StartDate = &e
	}
	if sc.EndDate != nil {
		e := toEpoch(*sc.EndDate)
		out.EndDate = &e
	}
	if d := sc.Target.DeadLetterConfig; d != nil {
		out.Target.DeadLetterConfig = &ScheduleDeadQueue{Arn: d.Arn}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if err := s.opts.Scheduler.Store.Delete(r.Context(), r.URL.Query().Get("groupName"), r.PathValue("name")); err != nil {
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusOK, struct{}{})
}

// ScheduleSummary is an item of ListSchedules.
type ScheduleSummary struct {
	Arn                  string       `json:"Arn"`
	CreationDate         epochSeconds `json:"CreationDate"`
	GroupName            string       `json:"GroupName"`
	LastModificationDate epochSeconds `json:"LastModificationDate"`
	Name                 string       `json:"Name"`
	State                string       `json:"State"`
	Target               struct {
		Arn string `json:"Arn"`
	} `json:"Target"`
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request, _ []byte) error {
	q := r.URL.Query()
	state := q.Get("State")
	if state != "" && state != schedule.StateEnabled && state != schedule.StateDisabled {
		return errorf(CodeValidation, "Value '"+state+"' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]")
	}
	max, err := listLimit(q.Get("MaxResults"))
	if err != nil {
		return err
	}
	start, err := listToken(q.Get("NextToken"))
	if err != nil {
		return err
	}
	all, err := s.opts.Scheduler.Store.List(r.Context(), q.Get("ScheduleGroup"), q.Get("NamePrefix"), state)
	if err != nil {
		return scheduleError(err)
	}
	out := struct {
		NextToken string            `json:"NextToken,omitempty"`
		Schedules []ScheduleSummary `json:"Schedules"`
	}{Schedules: []ScheduleSummary{}}
	for _, sc := range all {
		if start != "" && sc.GroupName+"/"+sc.Name <= start {
			continue
		}
		if len(out.Schedules) == max {
			last := out.Schedules[max-1]
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(last.GroupName + "/" + last.Name))
			break
		}
		sum := ScheduleSummary{Arn: s.scheduleArn(sc), CreationDate: toEpoch(sc.CreationDate), GroupName: sc.GroupName,
			LastModificationDate: toEpoch(sc.LastModificationDate), Name: sc.Name, State: sc.State}
		sum.Target.Arn = sc.Target.Arn
		out.Schedules = append(out.Schedules, sum)
	}
	return writeJSON(w, http.StatusOK, out)
}

// listLimit parses MaxResults (1-100, default 100).
func listLimit(v string) (int, error) {
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100 {
		return 0, errorf(CodeValidation, "Value '"+v+"' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100")
	}
	return n, nil
}

// listToken decodes a NextToken: the last group/name of the previous page
// (or, for groups, the last name).
func listToken(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	g, n, pair := strings.Cut(string(b), "/")
	if err != nil || !schedule.ValidName(g) || (pair && !schedule.ValidName(n)) {
		return "", errorf(CodeValidation, "The NextToken is not valid.")
	}
	return string(b), nil
}

// ScheduleGroupOutput is GetScheduleGroup's answer and an item of
// ListScheduleGroups.
type ScheduleGroupOutput struct {
	Arn                  string        `json:"Arn"`
	CreationDate         *epochSeconds `json:"CreationDate,omitempty"`
	LastModificationDate *epochSeconds `json:"LastModificationDate,omitempty"`
	Name                 string        `json:"Name"`
	State                string        `json:"State"`
}

func (s *Server) groupOutput(g *schedule.Group) ScheduleGroupOutput {
	o := s.opts.Scheduler
	out := ScheduleGroupOutput{Arn: "arn:aws:scheduler:" + o.Region + ":" + o.AccountID + ":schedule-group/" + g.Name, Name: g.Name, State: "ACTIVE"}
	if !g.CreationDate.IsZero() {
		c, m := toEpoch(g.CreationDate), toEpoch(g.LastModificationDate)
		out.CreationDate, out.LastModificationDate = &c, &m
	}
	return out
}

func (s *Server) createScheduleGroup(w http.ResponseWriter, r *http.Request, body []byte) error {
	var req struct {
		ClientToken string            `json:"ClientToken"`
		Tags        []json.RawMessage `json:"Tags"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return errorf(CodeValidation, "Could not parse request body into json: "+err.Error())
		}
	}
	if len(req.Tags) > 0 {
		return errorf(CodeValidation, "Tags are not supported on schedule groups by moat.")
	}
	now := s.opts.Scheduler.Now().UTC().Truncate(time.Millisecond)
	g := &schedule.Group{Name: r.PathValue("name"), CreationDate: now, LastModificationDate: now, ClientToken: req.ClientToken}
	st := s.opts.Scheduler.Store
	if err := st.CreateGroup(r.Context(), g); err != nil {
		if errors.Is(err, schedule.ErrConflict) && req.ClientToken != "" {
			if old, gerr := st.GetGroup(r.Context(), g.Name); gerr == nil && old.ClientToken == req.ClientToken {
				return writeJSON(w, http.StatusOK, map[string]string{"ScheduleGroupArn": s.groupOutput(old).Arn})
			}
		}
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"ScheduleGroupArn": s.groupOutput(g).Arn})
}

func (s *Server) getScheduleGroup(w http.ResponseWriter, r *http.Request, _ []byte) error {
	g, err := s.opts.Scheduler.Store.GetGroup(r.Context(), r.PathValue("name"))
	if err != nil {
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusOK, s.groupOutput(g))
}

func (s *Server) deleteScheduleGroup(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if err := s.opts.Scheduler.Store.DeleteGroup(r.Context(), r.PathValue("name")); err != nil {
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) listScheduleGroups(w http.ResponseWriter, r *http.Request, _ []byte) error {
	q := r.URL.Query()
	max, err := listLimit(q.Get("MaxResults"))
	if err != nil {
		return err
	}
	start, err := listToken(q.Get("NextToken"))
	if err != nil {
		return err
	}
	groups, err := s.opts.Scheduler.Store.ListGroups(r.Context(), q.Get("NamePrefix"))
	if err != nil {
		return scheduleError(err)
	}
	out := struct {
		NextToken      string                `json:"NextToken,omitempty"`
		ScheduleGroups []ScheduleGroupOutput `json:"ScheduleGroups"`
	}{ScheduleGroups: []ScheduleGroupOutput{}}
	for _, g := range groups {
		if start != "" && g.Name <= start {
			continue
		}
		if len(out.ScheduleGroups) == max {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(out.ScheduleGroups[max-1].Name))
			break
		}
		out.ScheduleGroups = append(out.ScheduleGroups, s.groupOutput(g))
	}
	return writeJSON(w, http.StatusOK, out)
}

func later(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.After(t) {
			t = u
		}
	}
	return t
}

package api

import (
	"net/http"
	"strings"
	"testing"
)

const schedTarget = `"Target":{"Arn":"arn:aws:lambda:us-east-1:000000000000:function:f","RoleArn":"arn:aws:iam::000000000000:role/r"}`

// The Scheduler's request checks, as its clients see them: the exception
// in X-Amzn-ErrorType, a message that names the problem, nothing stored.
func TestScheduleRequestErrors(t *testing.T) {
	fx := newCtlFixture(t)
	cases := []struct {
		name, body, code, msg string
	}{
		{"not json", `{`, "ValidationException", "Could not parse"},
		{"empty", ``, "ValidationException", "empty"},
		{"no window", `{"ScheduleExpression":"rate(1 minute)",` + schedTarget + `}`, "ValidationException", "FlexibleTimeWindow is required"},
		{"no target", `{"ScheduleExpression":"rate(1 minute)","FlexibleTimeWindow":{"Mode":"OFF"}}`, "ValidationException", "Target is required"},
		{"kms", `{"ScheduleExpression":"rate(1 minute)","FlexibleTimeWindow":{"Mode":"OFF"},"KmsKeyArn":"arn:aws:kms:us-east-1:000000000000:key/k",` + schedTarget + `}`, "ValidationException", "KmsKeyArn"},
		{"sqs target", `{"ScheduleExpression":"rate(1 minute)","FlexibleTimeWindow":{"Mode":"OFF"},"Target":{"Arn":"arn:aws:sqs:us-east-1:000000000000:q","RoleArn":"arn:aws:iam::000000000000:role/r","SqsParameters":{"MessageGroupId":"g"}}}`, "ValidationException", "SqsParameters"},
		{"bad cron", `{"ScheduleExpression":"cron(0 25 * * ? *)","FlexibleTimeWindow":{"Mode":"OFF"},` + schedTarget + `}`, "ValidationException", "hours"},
		{"zero age", `{"ScheduleExpression":"rate(1 minute)","FlexibleTimeWindow":{"Mode":"OFF"},"Target":{"Arn":"arn:aws:lambda:us-east-1:000000000000:function:f","RoleArn":"arn:aws:iam::000000000000:role/r","RetryPolicy":{"MaximumEventAgeInSeconds":0}}}`, "ValidationException", "maximumEventAgeInSeconds"},
		{"other group", `{"GroupName":"g2","ScheduleExpression":"rate(1 minute)","FlexibleTimeWindow":{"Mode":"OFF"},` + schedTarget + `}`, "ResourceNotFoundException", "g2"},
	}
	for _, c := range cases {
		resp := fx.do(t, "POST", "/schedules/s1", c.body)
		if got := resp.header.Get("X-Amzn-ErrorType"); got != c.code || !strings.Contains(string(resp.body), c.msg) {
			t.Errorf("%s: %d %s %s", c.name, resp.status, got, resp.body)
		}
	}
	if resp := fx.do(t, "GET", "/schedules/s1", nil); resp.status != http.StatusNotFound {
		t.Errorf("a refused schedule was stored: %d %s", resp.status, resp.body)
	}
	ok := `{"ScheduleExpression":"rate(1 minute)","FlexibleTimeWindow":{"Mode":"OFF"},"ClientToken":"tok-1",` + schedTarget + `}`
	if resp := fx.do(t, "POST", "/schedules/s1", ok); resp.status != http.StatusOK {
		t.Fatalf("create: %d %s", resp.status, resp.body)
	}
	// The same request again (an SDK retry: same client token) succeeds; another conflicts.
	if resp := fx.do(t, "POST", "/schedules/s1", ok); resp.status != http.StatusOK {
		t.Errorf("retried create: %d %s", resp.status, resp.body)
	}
	if resp := fx.do(t, "POST", "/schedules/s1", strings.Replace(ok, "tok-1", "tok-2", 1)); resp.header.Get("X-Amzn-ErrorType") != "ConflictException" {
		t.Errorf("second create: %d %s", resp.status, resp.body)
	}
	for _, q := range []string{"?MaxResults=0", "?MaxResults=101", "?State=ON", "?NextToken=!!!"} {
		if resp := fx.do(t, "GET", "/schedules"+q, nil); resp.header.Get("X-Amzn-ErrorType") != "ValidationException" {
			t.Errorf("list %s: %d %s", q, resp.status, resp.body)
		}
	}
}

// ListSchedules pages with MaxResults and NextToken.
func TestListSchedulesPages(t *testing.T) {
	fx := newCtlFixture(t)
	for _, n := range []string{"c", "a", "b"} {
		if resp := fx.do(t, "POST", "/schedules/"+n, `{"ScheduleExpression":"rate(1 hour)","FlexibleTimeWindow":{"Mode":"OFF"},`+schedTarget+`}`); resp.status != 200 {
			t.Fatalf("create %s: %d %s", n, resp.status, resp.body)
		}
	}
	var names []string
	path := "/schedules?MaxResults=2"
	for range 3 {
		m := fx.do(t, "GET", path, nil).json(t)
		for _, s := range m["Schedules"].([]any) {
			names = append(names, s.(map[string]any)["Name"].(string))
		}
		tok, _ := m["NextToken"].(string)
		if tok == "" {
			break
		}
		path = "/schedules?MaxResults=2&NextToken=" + tok
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("pages gave %v", names)
	}
}

func FuzzCreateScheduleBody(f *testing.F) {
	fuzzControl(f, "POST", "/schedules/fz-sched",
		`{"ScheduleExpression":"rate(5 minutes)","FlexibleTimeWindow":{"Mode":"OFF"},`+schedTarget+`}`,
		`{"ScheduleExpression":"cron(0/5 8-17 ? * MON-FRI *)","ScheduleExpressionTimezone":"America/New_York","FlexibleTimeWindow":{"Mode":"FLEXIBLE","MaximumWindowInMinutes":15},"StartDate":1.8e9,"EndDate":1.9e9,`+schedTarget+`}`,
		`{"ScheduleExpression":"at(2027-01-01T00:00:00)","ActionAfterCompletion":"DELETE","FlexibleTimeWindow":{"Mode":"OFF"},"Target":{"Arn":"arn:aws:lambda:us-east-1:000000000000:function:f:live","RoleArn":"arn:aws:iam::000000000000:role/r","Input":"{}","RetryPolicy":{"MaximumEventAgeInSeconds":60,"MaximumRetryAttempts":0},"DeadLetterConfig":{"Arn":"arn:aws:sqs:us-east-1:000000000000:dlq"}}}`,
	)
}

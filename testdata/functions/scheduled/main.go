// Command scheduled is a Lambda function written for schedules with
// aws-lambda-go's own event type, as such functions are written for AWS:
// it decodes the Scheduled Event and answers with what it found, so that a
// test can check the event a schedule delivered.
package main

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type seen struct {
	ID         string   `json:"id"`
	DetailType string   `json:"detailType"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Region     string   `json:"region"`
	Time       string   `json:"time"`
	Resources  []string `json:"resources"`
	RequestID  string   `json:"requestId"`
}

func handle(ctx context.Context, ev events.EventBridgeEvent) (seen, error) {
	if ev.DetailType != "Scheduled Event" || ev.Time.IsZero() {
		return seen{}, errors.New("scheduled: not a Scheduled Event")
	}
	s := seen{ID: ev.ID, DetailType: ev.DetailType, Source: ev.Source, Account: ev.AccountID, Region: ev.Region,
		Time: ev.Time.UTC().Format(time.RFC3339), Resources: ev.Resources}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		s.RequestID = lc.AwsRequestID
	}
	return s, nil
}

func main() { lambda.Start(handle) }

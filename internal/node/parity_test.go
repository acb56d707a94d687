package node

import (
	"context"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"moat.dev/moat/internal/fixture"
	"moat.dev/moat/internal/registry"
)

// TestAPIParity: operations clients call that are not about running a
// function, through the AWS SDK: tags (on create, TagResource,
// UntagResource, ListTags, GetFunction's Tags, their limits),
// GetFunction's Code.Location (presigned, downloadable as it is),
// GetAccountSettings, ListFunctionEventInvokeConfigs, ListFunctions with
// FunctionVersion=ALL, and a deploy for
// another architecture than the host's, refused.
func TestAPIParity(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	n.create(t, "tagged", fixture.GoZip(t, "examples/echo-go"), func(in *lambda.CreateFunctionInput) {
		in.Tags = map[string]string{"team": "payments", "env": "dev"}
	})
	arn := "arn:aws:lambda:us-east-1:000000000000:function:tagged"
	tags := func() map[string]string {
		t.Helper()
		out, err := n.client.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Tags
	}
	if got := tags(); !maps.Equal(got, map[string]string{"team": "payments", "env": "dev"}) {
		t.Errorf("tags from create: %v", got)
	}
	if _, err := n.client.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"env": "prod", "cost": "42"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn), TagKeys: []string{"team", "absent"}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); !maps.Equal(got, map[string]string{"env": "prod", "cost": "42"}) {
		t.Errorf("after tag and untag: %v", got)
	}
	fn, err := n.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("tagged")})
	if err != nil || fn.Tags["cost"] != "42" {
		t.Errorf("GetFunction Tags: %v, %v", fn.Tags, err)
	}
	// Code.Location downloads with nothing but the URL, as Lambda's.
	resp, err := http.Get(aws.ToString(fn.Code.Location))
	if err != nil {
		t.Fatal(err)
	}
	zip, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || int64(len(zip)) != fn.Configuration.CodeSize || !strings.Contains(aws.ToString(fn.Code.Location), "X-Amz-Signature=") {
		t.Errorf("Code.Location %s: %d, %d bytes of %d", aws.ToString(fn.Code.Location), resp.StatusCode, len(zip), fn.Configuration.CodeSize)
	}
	tampered := strings.Replace(aws.ToString(fn.Code.Location), "/moat/v1/code/", "/moat/v1/code/0", 1)
	if resp, err := http.Get(tampered); err != nil || resp.StatusCode != 403 {
		t.Errorf("a tampered Code.Location: %v %v", resp.StatusCode, err)
	}
	for _, bad := range []map[string]string{{"aws:reserved": "x"}, {strings.Repeat("k", 129): "x"}, {"k": strings.Repeat("v", 257)}} {
		if _, err := n.client.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: bad}); err == nil {
			t.Errorf("tags %v accepted", bad)
		}
	}
	if _, err := n.client.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn + ":1")}); err == nil {
		t.Error("tags of a qualified ARN")
	}

	acct, err := n.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || acct.AccountUsage.FunctionCount != 1 || acct.AccountUsage.TotalCodeSize <= 0 ||
		acct.AccountLimit.ConcurrentExecutions != 1000 || acct.AccountLimit.CodeSizeZipped != 50<<20 {
		t.Errorf("account settings: %+v %+v, %v", acct.AccountLimit, acct.AccountUsage, err)
	}

	if _, err := n.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("tagged"), MaximumRetryAttempts: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	list, err := n.client.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("tagged")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 || aws.ToInt32(list.FunctionEventInvokeConfigs[0].MaximumRetryAttempts) != 1 {
		t.Errorf("event invoke configs: %+v, %v", list, err)
	}

	if _, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("tagged")}); err != nil {
		t.Fatal(err)
	}
	all, err := n.client.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll})
	if err != nil || len(all.Functions) != 2 || aws.ToString(all.Functions[1].Version) != "1" ||
		aws.ToString(all.Functions[1].FunctionArn) != arn+":1" {
		t.Errorf("ListFunctions FunctionVersion=ALL: %+v, %v", all, err)
	}

	other := types.ArchitectureArm64
	if registry.HostArchitecture() == "arm64" {
		other = types.ArchitectureX8664
	}
	_, err = n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("foreign"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/moat"), Architectures: []types.Architecture{other},
		Code: &types.FunctionCode{ZipFile: fixture.GoZip(t, "examples/echo-go")},
	})
	if err == nil || !strings.Contains(err.Error(), "not served here") {
		t.Errorf("a function for %s: %v", other, err)
	}
}

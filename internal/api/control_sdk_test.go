package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"moat.dev/moat/internal/registry"
)

// TestControlWithAWSSDK drives the control plane through the real AWS SDK
// for Go v2 with only an endpoint override, as users do.
func TestControlWithAWSSDK(t *testing.T) {
	f := newCtlFixture(t)
	hs := httptest.NewServer(f.srv)
	t.Cleanup(hs.Close)
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       hs.Client(),
		RetryMaxAttempts: 1,
	}
	c := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(hs.URL) })
	ctx := context.Background()
	const arn = "arn:aws:lambda:us-east-1:000000000000:function:"
	zip1, zip2 := ctlZip(t), ctlZip(t, "lib/data.txt")

	// Create, with pagination over several functions.
	for i := range 5 {
		out, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(fmt.Sprintf("sdk-%d", i)),
			Runtime:      types.RuntimeProvidedal2023,
			Role:         aws.String("arn:aws:iam::000000000000:role/moat"),
			Handler:      aws.String("bootstrap"),
			Code:         &types.FunctionCode{ZipFile: zip1},
			Environment:  &types.Environment{Variables: map[string]string{"MODE": "test"}},
			MemorySize:   aws.Int32(256),
		})
		if err != nil {
			t.Fatalf("CreateFunction: %v", err)
		}
		if i == 0 {
			sum := sha256.Sum256(zip1)
			if aws.ToString(out.FunctionArn) != arn+"sdk-0" || aws.ToInt32(out.MemorySize) != 256 || aws.ToInt32(out.Timeout) != 3 ||
				aws.ToString(out.CodeSha256) != base64.StdEncoding.EncodeToString(sum[:]) || out.State != types.StateActive ||
				out.LastUpdateStatus != types.LastUpdateStatusSuccessful || out.PackageType != types.PackageTypeZip ||
				out.Environment.Variables["MODE"] != "test" || out.Architectures[0] != types.Architecture(registry.HostArchitecture()) ||
				aws.ToInt32(out.EphemeralStorage.Size) != 512 || out.TracingConfig.Mode != types.TracingModePassThrough {
				t.Errorf("CreateFunction output: %+v", out)
			}
		}
	}
	var names []string
	pages := 0
	for p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: aws.Int32(2)}); p.HasMorePages(); pages++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListFunctions: %v", err)
		}
		for _, fn := range out.Functions {
			names = append(names, aws.ToString(fn.FunctionName))
		}
	}
	if pages != 3 || fmt.Sprint(names) != "[sdk-0 sdk-1 sdk-2 sdk-3 sdk-4]" {
		t.Errorf("listed %v in %d pages", names, pages)
	}

	// Get, update configuration and code.
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("sdk-0")})
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if aws.ToString(got.Code.RepositoryType) != "moat" || got.Configuration.Environment.Variables["MODE"] != "test" {
		t.Errorf("GetFunction: %+v %+v", got.Code, got.Configuration)
	}
	upd, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("sdk-0"),
		Timeout:      aws.Int32(30),
		Environment:  &types.Environment{Variables: map[string]string{"MODE": "prod", "EXTRA": "1"}},
		RevisionId:   got.Configuration.RevisionId,
	})
	if err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %v", err)
	}
	if aws.ToInt32(upd.Timeout) != 30 || upd.Environment.Variables["MODE"] != "prod" || aws.ToInt32(upd.MemorySize) != 256 {
		t.Errorf("UpdateFunctionConfiguration: %+v", upd)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("sdk-0"), Timeout: aws.Int32(31), RevisionId: got.Configuration.RevisionId,
	})
	var pre *types.PreconditionFailedException
	if !errors.As(err, &pre) {
		t.Errorf("stale RevisionId: %v", err)
	}
	v1, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("sdk-0")})
	if err != nil || aws.ToString(v1.Version) != "1" || aws.ToString(v1.FunctionArn) != arn+"sdk-0:1" {
		t.Fatalf("PublishVersion: %+v %v", v1, err)
	}
	code, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("sdk-0"), ZipFile: zip2, Publish: true,
	})
	if err != nil || aws.ToString(code.Version) != "2" || aws.ToString(code.CodeSha256) == aws.ToString(v1.CodeSha256) {
		t.Fatalf("UpdateFunctionCode: %+v %v", code, err)
	}
	vs, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("sdk-0")})
	if err != nil || len(vs.Versions) != 3 || aws.ToString(vs.Versions[0].Version) != "$LATEST" {
		t.Fatalf("ListVersionsByFunction: %+v %v", vs, err)
	}

	// Aliases with weighted routing.
	alias, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{
		FunctionName:    aws.String("sdk-0"),
		Name:            aws.String("live"),
		FunctionVersion: aws.String("1"),
		RoutingConfig:   &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.1}},
	})
	if err != nil || aws.ToString(alias.AliasArn) != arn+"sdk-0:live" || alias.RoutingConfig.AdditionalVersionWeights["2"] != 0.1 {
		t.Fatalf("CreateAlias: %+v %v", alias, err)
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("sdk-0"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) {
		t.Errorf("duplicate alias: %v", err)
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{
		FunctionName: aws.String("sdk-0"), Name: aws.String("bad"), FunctionVersion: aws.String("$LATEST"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.5}},
	})
	var invalid *types.InvalidParameterValueException
	if !errors.As(err, &invalid) {
		t.Errorf("weighted $LATEST alias: %v", err)
	}
	ua, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("sdk-0"), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}}})
	if err != nil || aws.ToString(ua.FunctionVersion) != "2" || (ua.RoutingConfig != nil && len(ua.RoutingConfig.AdditionalVersionWeights) != 0) {
		t.Fatalf("UpdateAlias: %+v %v", ua, err)
	}
	ga, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("sdk-0"), Name: aws.String("live")})
	if err != nil || aws.ToString(ga.RevisionId) != aws.ToString(ua.RevisionId) {
		t.Fatalf("GetAlias: %+v %v", ga, err)
	}
	la, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("sdk-0")})
	if err != nil || len(la.Aliases) != 1 {
		t.Fatalf("ListAliases: %+v %v", la, err)
	}
	gq, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("sdk-0"), Qualifier: aws.String("live")})
	if err != nil || aws.ToString(gq.Version) != "2" || aws.ToString(gq.FunctionArn) != arn+"sdk-0:live" {
		t.Fatalf("GetFunctionConfiguration(live): %+v %v", gq, err)
	}

	// Concurrency.
	pc, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("sdk-0"), ReservedConcurrentExecutions: aws.Int32(10)})
	if err != nil || aws.ToInt32(pc.ReservedConcurrentExecutions) != 10 {
		t.Fatalf("PutFunctionConcurrency: %+v %v", pc, err)
	}
	gc, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("sdk-0")})
	if err != nil || aws.ToInt32(gc.ReservedConcurrentExecutions) != 10 {
		t.Fatalf("GetFunctionConcurrency: %+v %v", gc, err)
	}
	gf, _ := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("sdk-0")})
	if gf.Concurrency == nil || aws.ToInt32(gf.Concurrency.ReservedConcurrentExecutions) != 10 {
		t.Errorf("GetFunction.Concurrency = %+v", gf.Concurrency)
	}
	if _, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("sdk-0")}); err != nil {
		t.Fatalf("DeleteFunctionConcurrency: %v", err)
	}
	if gc, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("sdk-0")}); err != nil || gc.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunctionConcurrency after delete: %+v %v", gc, err)
	}

	// Event invoke configuration.
	const dest = "arn:aws:sqs:us-east-1:000000000000:failed"
	pe, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:         aws.String("sdk-0"),
		Qualifier:            aws.String("live"),
		MaximumRetryAttempts: aws.Int32(1),
		DestinationConfig:    &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(dest)}},
	})
	if err != nil || aws.ToInt32(pe.MaximumRetryAttempts) != 1 || aws.ToString(pe.DestinationConfig.OnFailure.Destination) != dest ||
		aws.ToString(pe.FunctionArn) != arn+"sdk-0:live" || pe.LastModified == nil || pe.LastModified.IsZero() {
		t.Fatalf("PutFunctionEventInvokeConfig: %+v %v", pe, err)
	}
	ue, err := c.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{
		FunctionName: aws.String("sdk-0"), Qualifier: aws.String("live"), MaximumEventAgeInSeconds: aws.Int32(3600),
	})
	if err != nil || aws.ToInt32(ue.MaximumRetryAttempts) != 1 || aws.ToInt32(ue.MaximumEventAgeInSeconds) != 3600 {
		t.Fatalf("UpdateFunctionEventInvokeConfig: %+v %v", ue, err)
	}
	ge, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("sdk-0"), Qualifier: aws.String("live")})
	if err != nil || aws.ToInt32(ge.MaximumEventAgeInSeconds) != 3600 {
		t.Fatalf("GetFunctionEventInvokeConfig: %+v %v", ge, err)
	}
	if tg, err := f.reg.Resolve("sdk-0", "live"); err != nil || tg.Async != (registry.AsyncConfig{MaximumRetryAttempts: 1, MaximumEventAgeInSeconds: 3600, OnFailure: dest}) {
		t.Errorf("dispatcher sees %+v, %v", tg, err)
	}
	_, err = c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:      aws.String("sdk-0"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:events:us-east-1:000000000000:event-bus/default")}},
	})
	if !errors.As(err, &invalid) {
		t.Errorf("unsupported destination: %v", err)
	}
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("sdk-0"), Qualifier: aws.String("live")}); err != nil {
		t.Fatalf("DeleteFunctionEventInvokeConfig: %v", err)
	}

	// Error shapes the SDK decodes into its modeled types.
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("missing")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || aws.ToString(nf.Message) != "Function not found: "+arn+"missing" || aws.ToString(nf.Type) != "User" {
		t.Errorf("missing function: %v", err)
	}
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("sdk-1"), Runtime: types.RuntimeProvidedal2, Role: aws.String("arn:aws:iam::000000000000:role/moat"),
		Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: zip1},
	})
	if !errors.As(err, &conflict) {
		t.Errorf("duplicate function: %v", err)
	}
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("py"), Runtime: types.RuntimePython312, Role: aws.String("arn:aws:iam::000000000000:role/moat"),
		Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: zip1},
	})
	if !errors.As(err, &invalid) {
		t.Errorf("unsupported runtime: %v", err)
	}
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("big"), Runtime: types.RuntimeProvidedal2023, Role: aws.String("arn:aws:iam::000000000000:role/moat"),
		Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: zip1}, MemorySize: aws.Int32(20000),
	})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Errorf("memory out of range: %v", err)
	}
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("sdk-0"), Qualifier: aws.String("2")})
	if !errors.As(err, &conflict) {
		t.Errorf("deleting an aliased version: %v", err)
	}

	// Delete everything of sdk-0.
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("sdk-0"), Name: aws.String("live")}); err != nil {
		t.Fatalf("DeleteAlias: %v", err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(arn + "sdk-0")}); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("sdk-0"), Qualifier: aws.String("1")}); !errors.As(err, &nf) {
		t.Errorf("version after DeleteFunction: %v", err)
	}
}

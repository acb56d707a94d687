package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// verified is what the test server saw for one request.
type verified struct {
	accessKeyID string
	err         error
	method      string
	uri         string
}

// newVerifyingServer starts a loopback server that authenticates every
// request with v and answers just enough of the Lambda API for clients to
// parse. Each request's outcome is sent on the returned channel before the
// response is written.
func newVerifyingServer(t *testing.T, v *Verifier) (*httptest.Server, <-chan verified) {
	t.Helper()
	seen := make(chan verified, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		akid, err := v.Verify(r, sum[:])
		seen <- verified{accessKeyID: akid, err: err, method: r.Method, uri: r.RequestURI}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			var e *Error
			errors.As(err, &e)
			w.Header().Set("X-Amzn-ErrorType", e.Code)
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": e.Message})
			return
		}
		if strings.HasSuffix(r.URL.Path, "/invocations") {
			w.Header().Set("X-Amz-Executed-Version", "$LATEST")
			_, _ = w.Write(body)
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

// lastVerified returns the outcome of the request the client just made.
func lastVerified(t *testing.T, seen <-chan verified) verified {
	t.Helper()
	select {
	case v := <-seen:
		return v
	default:
		t.Fatal("the request never reached the server")
		return verified{}
	}
}

// TestLambdaClientInterop drives the AWS SDK for Go's Lambda client (its
// whole middleware stack, not just the signer) against Verify.
func TestLambdaClientInterop(t *testing.T) {
	srv, seen := newVerifyingServer(t, &Verifier{Secret: secrets})
	newClient := func(secret, token string) *lambda.Client {
		return lambda.New(lambda.Options{
			Region:           "us-east-1",
			BaseEndpoint:     aws.String(srv.URL),
			Credentials:      credentials.NewStaticCredentialsProvider(testAKID, secret, token),
			HTTPClient:       srv.Client(),
			RetryMaxAttempts: 1,
		})
	}
	client := newClient(testSecret, "")
	withToken := newClient(testSecret, testToken)
	wrongSecret := newClient("wrong-secret", "")

	tests := []struct {
		name string
		call func(context.Context) error
		want string // error code the client must see; "" means success
	}{
		{"Invoke ARN at $LATEST", func(ctx context.Context) error {
			_, err := client.Invoke(ctx, &lambda.InvokeInput{
				FunctionName: aws.String(fnARN), Qualifier: aws.String("$LATEST"), Payload: []byte(`{"k":"v"}`),
			})
			return err
		}, ""},
		{"Invoke qualified ARN asynchronously with session token", func(ctx context.Context) error {
			_, err := withToken.Invoke(ctx, &lambda.InvokeInput{
				FunctionName: aws.String(fnARN + ":prod"), InvocationType: types.InvocationTypeEvent,
				ClientContext: aws.String("eyJjdXN0b20iOnt9fQ=="), Payload: []byte(`[1, 2, 3]`),
			})
			return err
		}, ""},
		{"GetFunction by ARN with version", func(ctx context.Context) error {
			_, err := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fnARN + ":7")})
			return err
		}, ""},
		{"GetFunctionConfiguration at $LATEST", func(ctx context.Context) error {
			_, err := client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{
				FunctionName: aws.String("f"), Qualifier: aws.String("$LATEST"),
			})
			return err
		}, ""},
		{"ListFunctions with awkward marker", func(ctx context.Context) error {
			_, err := client.ListFunctions(ctx, &lambda.ListFunctionsInput{
				MaxItems: aws.Int32(5), Marker: aws.String("a/b c+d==&e"),
			})
			return err
		}, ""},
		{"UpdateFunctionCode", func(ctx context.Context) error {
			_, err := client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
				FunctionName: aws.String("f"), ZipFile: []byte("PK\x03\x04 not really a zip"),
			})
			return err
		}, ""},
		{"DeleteAlias", func(ctx context.Context) error {
			_, err := client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(fnARN), Name: aws.String("prod")})
			return err
		}, ""},
		{"wrong secret", func(ctx context.Context) error {
			_, err := wrongSecret.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f")})
			return err
		}, CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			got := lastVerified(t, seen)
			if tt.want == "" {
				if err != nil || got.err != nil {
					t.Fatalf("%s %s: client error %v, Verify error %v", got.method, got.uri, err, got.err)
				}
				if got.accessKeyID != testAKID {
					t.Fatalf("Verify returned access key %q", got.accessKeyID)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("client error = %v; want %s", err, tt.want)
			}
		})
	}
}

// TestAWSCLIInterop runs the AWS CLI (botocore, which canonicalizes paths
// and queries its own way) against Verify, with a shared credentials file.
func TestAWSCLIInterop(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the aws CLI is not installed")
	}
	if testing.Short() {
		t.Skip("starting the aws CLI is slow")
	}
	srv, seen := newVerifyingServer(t, &Verifier{Secret: secrets})
	dir := t.TempDir()
	creds := "[moat]\naws_access_key_id = " + testAKID + "\naws_secret_access_key = " + testSecret +
		"\naws_session_token = " + testToken + "\n\n[wrong]\naws_access_key_id = " + testAKID +
		"\naws_secret_access_key = wrong-secret\n"
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "payload.json"), []byte(`{"k": "v"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
		"AWS_PAGER=",
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}

	tests := []struct {
		name string
		args []string
		want string // error code in the CLI's output; "" means success
	}{
		{"invoke ARN at $LATEST", []string{"--profile", "moat", "lambda", "invoke", "--function-name", fnARN,
			"--qualifier", "$LATEST", "--payload", "fileb://" + filepath.Join(dir, "payload.json"),
			filepath.Join(dir, "out.json")}, ""},
		{"get-function-configuration of qualified ARN", []string{"--profile", "moat", "lambda",
			"get-function-configuration", "--function-name", fnARN + ":prod"}, ""},
		{"list-functions", []string{"--profile", "moat", "lambda", "list-functions", "--no-paginate"}, ""},
		{"wrong secret", []string{"--profile", "wrong", "lambda", "get-function", "--function-name", "f"}, CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--endpoint-url", srv.URL}, tt.args...)
			cmd := exec.CommandContext(t.Context(), awsCLI, args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if len(seen) == 0 {
				t.Fatalf("the request never reached the server: aws CLI %v: %s", err, out)
			}
			got := <-seen
			if tt.want == "" {
				if err != nil || got.err != nil {
					t.Fatalf("%s %s: aws CLI %v: %s\nVerify error: %v", got.method, got.uri, err, out, got.err)
				}
				return
			}
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Fatalf("aws CLI = %v: %s; want %s", err, out, tt.want)
			}
		})
	}
}

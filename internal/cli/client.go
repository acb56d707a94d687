package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"moat.dev/moat/internal/credentials"
)

// Defaults of the client commands.
const (
	defaultEndpoint = "http://127.0.0.1:9000"
	defaultProfile  = credentials.Profile
	defaultRegion   = "us-east-1"
	// signingService is the service name in SigV4 scopes: moat speaks for Lambda.
	signingService = "lambda"
)

// clientFlags are the flags every client command has.
type clientFlags struct {
	endpoint, profile, dataDir, region string
}

// clientFlags defines --endpoint, --profile, --data-dir and --region.
func (c *cmdCtx) clientFlags() {
	f := &clientFlags{}
	c.client = f
	c.fs.StringVar(&f.endpoint, "endpoint", "", "moat's `URL` (default $MOAT_ENDPOINT or "+defaultEndpoint+")")
	c.fs.StringVar(&f.profile, "profile", "", "credentials profile `name` (default $MOAT_PROFILE or "+defaultProfile+")")
	c.fs.StringVar(&f.dataDir, "data-dir", "", "`dir`ectory whose credentials file holds the keys (default "+dataDirHelp+")")
	c.fs.StringVar(&f.region, "region", "", "signing `region` (default $AWS_REGION or "+defaultRegion+")")
}

const dataDirHelp = "$MOAT_DATA_DIR, $XDG_DATA_HOME/moat or ~/.local/share/moat"

// clientConfig is where and as whom a client command talks to moat.
type clientConfig struct {
	Endpoint string
	Region   string
	Creds    aws.Credentials
}

// resolveClient applies the precedence rules: a flag wins over its
// environment variable, which wins over the default. Keys come from the
// profile in <data dir>/credentials; only when that file does not exist
// from $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY and $AWS_SESSION_TOKEN.
func resolveClient(getenv func(string) string, f clientFlags) (clientConfig, error) {
	cfg := clientConfig{
		Endpoint: firstOf(f.endpoint, getenv("MOAT_ENDPOINT"), defaultEndpoint),
		Region:   firstOf(f.region, getenv("AWS_REGION"), defaultRegion),
	}
	endpoint, err := normalizeEndpoint(cfg.Endpoint)
	if err != nil {
		return cfg, usagef("%v", err)
	}
	cfg.Endpoint = endpoint

	dataDir := firstOf(f.dataDir, defaultDataDir(getenv))
	profile := firstOf(f.profile, getenv("MOAT_PROFILE"), defaultProfile)
	if dataDir != "" {
		path := filepath.Join(dataDir, "credentials")
		_, statErr := os.Stat(path)
		if statErr == nil {
			keys, err := credentials.Load(path)
			if err != nil {
				return cfg, err
			}
			key, ok := keys[profile]
			if !ok {
				return cfg, fmt.Errorf("read credentials: no profile %q in %s", profile, path)
			}
			cfg.Creds = aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, Source: path}
			return cfg, nil
		}
		if !errors.Is(statErr, fs.ErrNotExist) {
			return cfg, fmt.Errorf("read credentials: %w", statErr)
		}
	}
	ak, sk := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if ak == "" || sk == "" {
		where := "no data directory"
		if dataDir != "" {
			where = filepath.Join(dataDir, "credentials") + " does not exist"
		}
		return cfg, fmt.Errorf("no credentials: %s and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set (run 'moat up' once, or pass --data-dir)", where)
	}
	cfg.Creds = aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk, SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "environment"}
	return cfg, nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// normalizeEndpoint accepts "host:port" as shorthand for http://host:port
// and refuses anything that is not an http(s) URL without a query.
func normalizeEndpoint(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("endpoint %q is not an http or https URL", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// config resolves the command's client settings.
func (c *cmdCtx) config() (clientConfig, error) {
	return resolveClient(c.getenv, *c.client)
}

func (a *app) http() *http.Client {
	if a.httpClient != nil {
		return a.httpClient
	}
	// No overall timeout: a synchronous invoke may run for 15 minutes and
	// `logs --follow` for as long as the user likes. The context ends them.
	// Redirects are not followed, as the SDK's own client does not: a
	// signed request must not be replayed to another URL.
	return &http.Client{
		Transport:     http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// lambdaClient is an AWS SDK Lambda client pointed at moat. It does not
// retry: an invoke is not idempotent, and a refusal (429, 5xx) is shown to
// the user as it is.
func (a *app) lambdaClient(cfg clientConfig) *lambda.Client {
	return lambda.NewFromConfig(aws.Config{
		Region:           cfg.Region,
		Credentials:      awscreds.NewStaticCredentialsProvider(cfg.Creds.AccessKeyID, cfg.Creds.SecretAccessKey, cfg.Creds.SessionToken),
		HTTPClient:       a.http(),
		RetryMaxAttempts: 1,
		AppID:            "moat-cli",
	}, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(cfg.Endpoint)
	})
}

// emptySHA256 is the payload hash of a request without a body.
var emptySHA256 = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// moatGet calls one of moat's own GET endpoints (/moat/v1/...), signed as
// the SDK signs Lambda requests. See moatRequest.
func (a *app) moatGet(ctx context.Context, cfg clientConfig, op, path string, query url.Values) (*http.Response, error) {
	return a.moatRequest(ctx, cfg, op, http.MethodGet, path, query, nil)
}

// moatRequest sends one request to moat, signed as the SDK signs Lambda
// requests, with body (JSON) when it is not nil. It is for what the SDK
// cannot do: moat's own endpoints, and moat's own fields (Sandbox,
// Isolation) of Lambda's, which the SDK neither sends nor keeps. A
// response other than 2xx becomes an error carrying the AWS error code,
// under the operation name op. The caller closes the body.
func (a *app) moatRequest(ctx context.Context, cfg clientConfig, op, method, path string, query url.Values, body []byte) (*http.Response, error) {
	u := cfg.Endpoint + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	payloadHash := emptySHA256
	if body != nil {
		rd = bytes.NewReader(body)
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "moat", OperationName: op, Err: err}
	}
	req.Header.Set("User-Agent", "moat-cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	signer := v4.NewSigner()
	if err := signer.SignHTTP(ctx, cfg.Creds, req, payloadHash, signingService, cfg.Region, time.Now()); err != nil {
		return nil, &smithy.OperationError{ServiceID: "moat", OperationName: op, Err: fmt.Errorf("sign request: %w", err)}
	}
	resp, err := a.http().Do(req)
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "moat", OperationName: op, Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, &smithy.OperationError{ServiceID: "moat", OperationName: op, Err: decodeAPIError(resp)}
	}
	return resp, nil
}

// maxResponse bounds the JSON responses moatCall reads.
const maxResponse = 32 << 20

// moatCall is moatRequest for a JSON exchange: it sends in as the body
// (none when nil) and returns the response body, which it has checked is
// JSON.
func (a *app) moatCall(ctx context.Context, cfg clientConfig, op, method, path string, query url.Values, in any) ([]byte, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, &smithy.OperationError{ServiceID: "moat", OperationName: op, Err: fmt.Errorf("encode request: %w", err)}
		}
	}
	resp, err := a.moatRequest(ctx, cfg, op, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	switch {
	case err != nil:
		err = fmt.Errorf("read response: %w", err)
	case len(b) > maxResponse:
		err = fmt.Errorf("read response: larger than %d bytes", maxResponse)
	case !json.Valid(b):
		err = errors.New("read response: not JSON")
	}
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "moat", OperationName: op, Err: err}
	}
	return b, nil
}

// decodeResponse unmarshals a response body that moatCall returned for op.
func decodeResponse(op string, b []byte, out any) error {
	if err := json.Unmarshal(b, out); err != nil {
		return &smithy.OperationError{ServiceID: "moat", OperationName: op, Err: fmt.Errorf("decode response: %w", err)}
	}
	return nil
}

// decodeAPIError reads an AWS JSON error response: the code in the
// X-Amzn-ErrorType header (or the body), the message in the body.
func decodeAPIError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Code, Message string
		Lower         string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	code := resp.Header.Get("X-Amzn-ErrorType")
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	code = firstOf(code, e.Code, fmt.Sprintf("HTTP %d", resp.StatusCode))
	msg := firstOf(e.Message, e.Lower)
	if msg == "" && len(body) > 0 && !json.Valid(body) {
		msg = strings.TrimSpace(string(body))
	}
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

package registry

import (
	"encoding/json"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"moat.dev/moat/internal/names"
)

// Limits and defaults of function settings, as AWS documents them.
const (
	DefaultMemorySize       = 128
	DefaultTimeout          = 3
	DefaultEphemeralStorage = 512
	MinMemorySize           = 128
	MaxMemorySize           = 10240
	MinTimeout              = 1
	MaxTimeout              = 900
	MinEphemeralStorage     = 512
	MaxEphemeralStorage     = 10240
	MaxHandlerLen           = 128
	MaxDescriptionLen       = 256
	MaxEnvBytes             = 4096 // JSON of the variables map
	MaxFunctionNameLen      = names.MaxFunction
	MaxAliasNameLen         = 128
	DefaultMaxItems         = 50
	MaxMaxItems             = 10000
	MinEventAge             = 60
	MaxEventAge             = 21600
	MaxRetryAttempts        = 2
)

// Runtimes moat can run: custom runtimes, whose package carries a bootstrap
// executable.
var Runtimes = []string{"provided.al2023", "provided.al2", "provided"}

// Architectures accepted in a function's configuration.
var Architectures = []string{"x86_64", "arm64"}

// HostArchitecture is the architecture this node runs functions of, as
// Lambda names it: a function built for another would not start here.
func HostArchitecture() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

// checkHostArch refuses, at deploy, a function of another architecture
// than the host's.
func checkHostArch(archs []string) error {
	for _, a := range archs {
		if a != HostArchitecture() {
			return invalid("Architecture %s is not served here: this node runs %s functions (build the bootstrap for %s, or deploy to a node of that architecture)", a, HostArchitecture(), HostArchitecture())
		}
	}
	return nil
}

// reservedEnv are the variables Lambda sets itself and refuses in a
// function's configuration.
var reservedEnv = map[string]bool{
	"_HANDLER":                        true,
	"_X_AMZN_TRACE_ID":                true,
	"AWS_DEFAULT_REGION":              true,
	"AWS_REGION":                      true,
	"AWS_EXECUTION_ENV":               true,
	"AWS_LAMBDA_FUNCTION_NAME":        true,
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION":     true,
	"AWS_LAMBDA_INITIALIZATION_TYPE":  true,
	"AWS_LAMBDA_LOG_GROUP_NAME":       true,
	"AWS_LAMBDA_LOG_STREAM_NAME":      true,
	"AWS_ACCESS_KEY":                  true,
	"AWS_ACCESS_KEY_ID":               true,
	"AWS_SECRET_ACCESS_KEY":           true,
	"AWS_SESSION_TOKEN":               true,
	"AWS_LAMBDA_RUNTIME_API":          true,
	"LAMBDA_TASK_ROOT":                true,
	"LAMBDA_RUNTIME_DIR":              true,
}

// Patterns, as the Lambda API model states them (they appear in messages).
const (
	functionNamePattern = `(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`
	aliasNamePattern    = `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`
	versionPattern      = `(\$LATEST|[0-9]+)`
	envKeyPattern       = `[a-zA-Z]([a-zA-Z0-9_])+`
	handlerPattern      = `[^\s]+`
	rolePattern         = `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
	qualifierPattern    = `(|[a-zA-Z0-9$_-]+)`
)

var (
	envKeyRE  = regexp.MustCompile(`^` + envKeyPattern + `$`)
	roleRE    = regexp.MustCompile(`^` + rolePattern + `$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-\d{1}$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
	sqsNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`)
)

// isName reports whether s is a bare function name.
func isName(s string) bool { return names.Function(s) }

func isNameByte(c byte) bool { return names.FunctionByte(c) }

// isPartition reports whether s is an AWS partition name: aws[a-zA-Z-]*.
func isPartition(s string) bool {
	if !strings.HasPrefix(s, "aws") {
		return false
	}
	for i := 3; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// isVersion reports whether s is a published version number.
func isVersion(s string) bool {
	if len(s) == 0 || len(s) > 10 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isAliasName reports whether s is a valid alias name: name characters,
// not all digits, at most 128 bytes.
func isAliasName(s string) bool {
	if len(s) == 0 || len(s) > MaxAliasNameLen {
		return false
	}
	digits := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isNameByte(c) {
			return false
		}
		digits = digits && c >= '0' && c <= '9'
	}
	return !digits
}

// parseRef splits a function reference (name, name:qualifier, partial ARN
// "123456789012:function:name[:qualifier]" or full ARN) into its name and
// qualifier. An ARN naming another region or account is not found here.
func (r *Registry) parseRef(s string) (name, qualifier string, err error) {
	if isName(s) { // fast path: a bare name
		return s, "", nil
	}
	bad := func() error {
		var v validation
		v.pattern("functionName", s, functionNamePattern)
		return v.err()
	}
	if len(s) > 256 {
		return "", "", bad()
	}
	parts := strings.Split(s, ":")
	var rest []string
	switch {
	case len(parts) >= 7 && parts[0] == "arn":
		if len(parts) > 8 || parts[2] != "lambda" || parts[5] != "function" || !isPartition(parts[1]) {
			return "", "", bad()
		}
		if parts[3] != r.region || parts[4] != r.account { // the common case skips the patterns
			if !regionRE.MatchString(parts[3]) || !accountRE.MatchString(parts[4]) {
				return "", "", bad()
			}
			return "", "", notFound("Function not found: %s", s)
		}
		rest = parts[6:]
	case len(parts) >= 3 && parts[1] == "function":
		if len(parts) > 4 {
			return "", "", bad()
		}
		if parts[0] != r.account {
			if !accountRE.MatchString(parts[0]) {
				return "", "", bad()
			}
			return "", "", notFound("Function not found: %s", s)
		}
		rest = parts[2:]
	case len(parts) <= 2:
		rest = parts
	default:
		return "", "", bad()
	}
	name = rest[0]
	if !isName(name) {
		return "", "", bad()
	}
	if len(rest) == 2 {
		qualifier = rest[1]
		if qualifier != Latest && !isVersion(qualifier) && !isAliasName(qualifier) {
			return "", "", bad()
		}
	}
	return name, qualifier, nil
}

// parseQualified resolves a reference and a separate Qualifier parameter,
// which must agree when both name a qualifier.
func (r *Registry) parseQualified(s, qualifier string) (name, q string, err error) {
	name, q, err = r.parseRef(s)
	if err != nil {
		return "", "", err
	}
	if qualifier != "" {
		if qualifier != Latest && !isVersion(qualifier) && !isAliasName(qualifier) {
			var v validation
			v.pattern("qualifier", qualifier, qualifierPattern)
			return "", "", v.err()
		}
		if q != "" && q != qualifier {
			return "", "", invalid("The derived qualifier from the function name does not match the specified qualifier.")
		}
		q = qualifier
	}
	return name, q, nil
}

// parseUnqualified resolves a reference for operations on the function as a
// whole, which take no qualifier.
func (r *Registry) parseUnqualified(s string) (string, error) {
	name, q, err := r.parseRef(s)
	if err != nil {
		return "", err
	}
	if q != "" {
		return "", invalid("This operation does not accept a qualified function name or ARN: %s", clip(s))
	}
	return name, nil
}

// ParseName returns the bare function name of an unqualified reference (a
// name, partial ARN or ARN), without looking it up. Errors match ErrInvalid
// or ErrNotFound (an ARN of another region or account).
func (r *Registry) ParseName(ref string) (string, error) { return r.parseUnqualified(ref) }

// checkRuntime refuses runtimes moat cannot run.
func checkRuntime(rt string) error {
	if slices.Contains(Runtimes, rt) {
		return nil
	}
	return invalid("The runtime parameter of %s is not supported by moat. moat runs custom runtimes only: use %s and put an executable named bootstrap at the root of the deployment package.",
		clip(rt), strings.Join(Runtimes, ", "))
}

// checkSettings validates the settings shared by create and update.
func checkSettings(v *validation, handler, role, description *string, mem, timeout, eph *int, archs []string) {
	if handler != nil {
		v.maxLen("handler", *handler, MaxHandlerLen)
		if *handler != "" && strings.ContainsAny(*handler, " \t\r\n\v\f") {
			v.pattern("handler", *handler, handlerPattern)
		}
	}
	if role != nil && *role != "" && !roleRE.MatchString(*role) {
		v.pattern("role", *role, rolePattern)
	}
	if description != nil {
		v.maxLen("description", *description, MaxDescriptionLen)
	}
	v.between("memorySize", mem, MinMemorySize, MaxMemorySize)
	v.between("timeout", timeout, MinTimeout, MaxTimeout)
	v.between("ephemeralStorage.size", eph, MinEphemeralStorage, MaxEphemeralStorage)
	if archs != nil {
		if len(archs) != 1 {
			v.add("Value '[%s]' at 'architectures' failed to satisfy constraint: Member must have length less than or equal to 1 and greater than or equal to 1", clip(strings.Join(archs, ", ")))
		}
		for _, a := range archs {
			if !slices.Contains(Architectures, a) {
				v.add("Value '[%s]' at 'architectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]", clip(a))
			}
		}
	}
}

// checkEnv validates environment variables: key syntax and length as a
// ValidationException, reserved keys and the total size as AWS reports
// them. Values never appear in messages.
func checkEnv(env map[string]string) error {
	var v validation
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envKeyRE.MatchString(k) {
			v.add("Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: %s]", envKeyPattern)
			break
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	var reserved []string
	for _, k := range keys {
		if reservedEnv[k] {
			reserved = append(reserved, k)
		}
	}
	if len(reserved) > 0 {
		return invalid("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", strings.Join(reserved, ", "))
	}
	b, err := json.Marshal(env)
	if err != nil {
		return invalid("Lambda was unable to configure your environment variables: %v", err)
	}
	if len(b) > MaxEnvBytes {
		return invalid("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. Size measured: %d bytes.", len(b))
	}
	return nil
}

// checkMaxItems validates a page size and applies the default.
func checkMaxItems(n int) (int, error) {
	if n == 0 {
		return DefaultMaxItems, nil
	}
	var v validation
	v.min("maxItems", n, 1)
	v.max("maxItems", n, MaxMaxItems)
	return n, v.err()
}

// checkDestination accepts a Lambda function ARN or an SQS queue ARN. moat
// delivers to functions (resolved at delivery time) and maps queues to its
// own destinations stream.
func checkDestination(field, arn string) error {
	if arn == "" {
		return nil
	}
	p := strings.Split(arn, ":")
	ok := false
	switch {
	case len(p) < 6 || p[0] != "arn" || !isPartition(p[1]) || !regionRE.MatchString(p[3]) || !accountRE.MatchString(p[4]):
	case p[2] == "lambda":
		ok = (len(p) == 7 || len(p) == 8) && p[5] == "function" && isName(p[6]) &&
			(len(p) == 7 || p[7] == Latest || isVersion(p[7]) || isAliasName(p[7]))
	case p[2] == "sqs":
		ok = len(p) == 6 && sqsNameRE.MatchString(p[5])
	}
	if !ok {
		return invalid("The destination ARN %s in %s is not supported by moat: use a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>) or a standard SQS queue ARN (arn:aws:sqs:<region>:<account>:<queue>).", clip(arn), field)
	}
	return nil
}

// checkRouting validates an alias's routing configuration against the
// function's published versions.
func checkRouting(weights map[string]float64, primary string, published func(n int) bool) error {
	if len(weights) == 0 {
		return nil
	}
	var v validation
	if len(weights) > 1 {
		v.add("Value at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Member must have length less than or equal to 1")
	}
	for ver, w := range weights {
		if !isVersion(ver) {
			v.add("Value '%s' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]", clip(ver))
		}
		if !(w >= 0 && w <= 1) {
			v.add("Value '%v' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0 and greater than or equal to 0.0]", w)
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	if primary == Latest {
		return invalid("$LATEST is not supported for an alias pointing to more than 1 version")
	}
	for ver := range weights {
		if ver == primary {
			return invalid("Invalid function version %s. Function version %s is already included in routing configuration.", ver, ver)
		}
		n, _ := strconv.Atoi(ver)
		if !published(n) {
			return invalid("Function version %s does not exist; additional versions in routing configuration must be published versions.", ver)
		}
	}
	return nil
}

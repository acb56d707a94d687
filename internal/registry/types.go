package registry

import (
	"errors"
	"time"

	"moat.dev/moat/internal/secrets"
)

// Sentinel errors callers act on. Registry methods wrap them with a message
// fit to show the API caller, so errors.Is works and err.Error() reads well.
var (
	ErrNotFound           = errors.New("not found")             // ResourceNotFoundException
	ErrExists             = errors.New("already exists")        // ResourceConflictException
	ErrConflict           = errors.New("conflict")              // ResourceConflictException (concurrent update, resource in use)
	ErrPreconditionFailed = errors.New("precondition failed")   // PreconditionFailedException (RevisionId mismatch)
	ErrInvalid            = errors.New("invalid parameter")     // InvalidParameterValueException
	ErrInvalidZip         = errors.New("invalid zip file")      // a refused upload; also matches ErrInvalid (AWS: InvalidParameterValueException)
	ErrCodeTooLarge       = errors.New("code storage exceeded") // RequestEntityTooLargeException (zip over the direct upload limit)
	// ErrValidation marks a value outside the API model's constraints
	// (a range, a length, a pattern), which AWS reports as
	// ValidationException. Every error that matches ErrValidation also
	// matches ErrInvalid, so callers that only know ErrInvalid still treat it
	// as the caller's mistake.
	ErrValidation = errors.New("validation failed")
)

// Latest is the qualifier of a function's mutable, unpublished version.
const Latest = "$LATEST"

// Config is one version of a function: the deterministic spec of what an
// instance runs. Published versions are immutable snapshots; the $LATEST
// record changes with UpdateFunctionCode and UpdateFunctionConfiguration.
// A *Config handed out by the registry is shared and must not be modified.
type Config struct {
	FunctionName     string   `json:"FunctionName"`
	Version          string   `json:"Version"` // "$LATEST" or "1", "2", ...
	Runtime          string   `json:"Runtime"`
	Handler          string   `json:"Handler"`
	Description      string   `json:"Description,omitempty"`
	Role             string   `json:"Role,omitempty"`
	MemorySize       int      `json:"MemorySize"`       // MB, 128..10240
	Timeout          int      `json:"Timeout"`          // seconds, 1..900
	EphemeralStorage int      `json:"EphemeralStorage"` // MB of /tmp, 512..10240
	Architectures    []string `json:"Architectures,omitempty"`
	CodeSha256Hex    string   `json:"CodeSha256Hex"` // content address of the zip in the code store
	CodeSize         int64    `json:"CodeSize"`
	Env              *Sealed  `json:"Env,omitempty"` // encrypted environment variables
	// Sandbox holds moat's own settings of the function's instances.
	Sandbox      *SandboxConfig `json:"Sandbox,omitempty"`
	RevisionID   string         `json:"RevisionId"`
	LastModified time.Time      `json:"LastModified"`
}

// Ephemeral values.
const (
	EphemeralNone          = ""               // warm instances are reused, as on Lambda
	EphemeralPerInvocation = "per-invocation" // a fresh instance for every invocation
)

// Mode values: what the runtime sensor's findings do.
const (
	ModeMonitor = ""        // alert only (the default)
	ModeEnforce = "enforce" // the approved behaviour profile is also a kernel wall
)

// OnDenial values: what becomes of an instance where something was
// refused.
const (
	OnDenialNothing = ""        // the refusal is reported; the instance lives on
	OnDenialRecycle = "recycle" // escape attempts are killed; the instance is destroyed after the invocation
)

// SandboxConfig is moat's own part of a function's configuration.
type SandboxConfig struct {
	// Ephemeral is EphemeralNone or EphemeralPerInvocation.
	Ephemeral string `json:"Ephemeral,omitempty"`
	// Mode is ModeMonitor or ModeEnforce: in enforce mode, once the
	// version's profile is approved, what it does not list is refused by
	// the kernel (executables, network destinations) instead of only
	// reported.
	Mode string `json:"Mode,omitempty"`
	// OnDenial is OnDenialNothing or OnDenialRecycle. With recycle, a
	// process whose escape attempt (ptrace, mount, bpf, module loading,
	// ...) the sandbox refused is killed by the kernel on the spot, and
	// an instance where anything was refused (such a syscall, an exec
	// outside the approved profile, a connection outside the grants) is
	// destroyed once its invocation in progress ends instead of being
	// reused. Needs the runtime sensor on the node.
	OnDenial string `json:"OnDenial,omitempty"`
	// Egress lists the destinations instances may reach, as
	// "CIDR:PORTS[/PROTO]" or "HOST:PORTS[/PROTO]"; empty means no network
	// but the instance's own loopback.
	Egress []string `json:"Egress,omitempty"`
	// Resolved holds the grants with every host name resolved at deploy
	// time and pinned: what the instances are actually granted.
	Resolved []string `json:"Resolved,omitempty"`
	// Hosts maps each host name of Egress to the addresses it was pinned
	// to; instances find them in /etc/hosts (they have no DNS).
	Hosts map[string][]string `json:"Hosts,omitempty"`
}

// PerInvocation reports whether every invocation gets a fresh instance.
func (c *Config) PerInvocation() bool {
	return c.Sandbox != nil && c.Sandbox.Ephemeral == EphemeralPerInvocation
}

// Sealed is an envelope-encrypted blob: Data is sealed with a per-function
// data key, which is itself sealed with the node master key.
type Sealed = secrets.Sealed

// AsyncConfig is a function's event invoke configuration
// (PutFunctionEventInvokeConfig) with defaults filled in.
type AsyncConfig struct {
	MaximumRetryAttempts     int    // 0..2, default 2
	MaximumEventAgeInSeconds int    // 60..21600, default 21600
	OnSuccess                string // destination ARN or ""
	OnFailure                string // destination ARN or ""
}

// Defaults of AsyncConfig, as AWS applies them.
const (
	DefaultMaximumRetryAttempts     = 2
	DefaultMaximumEventAgeInSeconds = 21600
)

// Target is what an invoke runs: the resolved version and the function-wide
// settings the dispatcher needs.
type Target struct {
	Config     *Config
	InvokedARN string // the ARN as the caller named it, qualified if a qualifier was given
	Reserved   int    // reserved concurrency; -1 when unset
	Async      AsyncConfig
	// Qualifier is the qualifier the caller used, normalised: "$LATEST",
	// a version number or an alias name. Config.Version is the version it
	// resolved to.
	Qualifier string
}

// Alias is a named pointer to a published version (or $LATEST), optionally
// sending a share of invocations to one additional version.
type Alias struct {
	Name            string `json:"Name"`
	FunctionVersion string `json:"FunctionVersion"`
	Description     string `json:"Description,omitempty"`
	// AdditionalVersionWeights maps at most one other published version to
	// the share (0..1) of invocations it receives.
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights,omitempty"`
	RevisionID               string             `json:"RevisionId"`
}

// EventInvokeConfig is the stored event invoke configuration of a function,
// version or alias. Nil fields were not set by the caller; the dispatcher
// sees them with defaults through Target.Async.
type EventInvokeConfig struct {
	MaximumRetryAttempts     *int      `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int      `json:"MaximumEventAgeInSeconds,omitempty"`
	OnSuccess                string    `json:"OnSuccess,omitempty"` // destination ARN
	OnFailure                string    `json:"OnFailure,omitempty"` // destination ARN
	LastModified             time.Time `json:"LastModified"`
}

// Async returns c with defaults filled in. A nil c yields the defaults.
func (c *EventInvokeConfig) Async() AsyncConfig {
	a := AsyncConfig{
		MaximumRetryAttempts:     DefaultMaximumRetryAttempts,
		MaximumEventAgeInSeconds: DefaultMaximumEventAgeInSeconds,
	}
	if c == nil {
		return a
	}
	if c.MaximumRetryAttempts != nil {
		a.MaximumRetryAttempts = *c.MaximumRetryAttempts
	}
	if c.MaximumEventAgeInSeconds != nil {
		a.MaximumEventAgeInSeconds = *c.MaximumEventAgeInSeconds
	}
	a.OnSuccess, a.OnFailure = c.OnSuccess, c.OnFailure
	return a
}

// FunctionInfo is what GetFunction reports: one version's configuration and
// the function-wide settings.
type FunctionInfo struct {
	Config *Config
	// ARN is the function ARN as AWS reports it for the request: qualified
	// when a qualifier was given.
	ARN      string
	Reserved int               // reserved concurrency; -1 when unset
	Tags     map[string]string // the function's (a copy)
}

// CreateInput is a CreateFunction request. Nil pointers take the AWS
// defaults.
type CreateInput struct {
	FunctionName     string // name, partial ARN or ARN, unqualified
	Runtime          string
	Role             string
	Handler          string
	Description      string
	MemorySize       *int
	Timeout          *int
	EphemeralStorage *int
	Architectures    []string
	Environment      map[string]string
	ZipFile          []byte
	Publish          bool
	Sandbox          *SandboxConfig
	Tags             map[string]string
}

// UpdateConfigInput is an UpdateFunctionConfiguration request. Nil fields
// are left unchanged; a non-nil Environment replaces all variables (an
// empty map removes them).
type UpdateConfigInput struct {
	FunctionName     string
	RevisionID       string // when set, the update applies only to this revision of $LATEST
	Runtime          *string
	Role             *string
	Handler          *string
	Description      *string
	MemorySize       *int
	Timeout          *int
	EphemeralStorage *int
	Environment      *map[string]string
	Sandbox          *SandboxConfig // nil: unchanged
}

// UpdateCodeInput is an UpdateFunctionCode request.
type UpdateCodeInput struct {
	FunctionName  string
	RevisionID    string
	ZipFile       []byte
	Architectures []string // nil: unchanged
	Publish       bool
	DryRun        bool // validate and report, store nothing
}

// PublishInput is a PublishVersion request.
type PublishInput struct {
	FunctionName string
	CodeSha256   string // base64, as AWS reports it; when set, must match $LATEST
	Description  string // default: the function's description
	RevisionID   string
}

// AliasInput is a CreateAlias request.
type AliasInput struct {
	Name                     string
	FunctionVersion          string
	Description              string
	AdditionalVersionWeights map[string]float64
}

// AliasUpdate is an UpdateAlias request; nil fields are left unchanged and a
// non-nil AdditionalVersionWeights replaces the routing (empty: none).
type AliasUpdate struct {
	FunctionVersion          *string
	Description              *string
	AdditionalVersionWeights *map[string]float64
	RevisionID               string
}

// EventInvokeUpdate is a PutFunctionEventInvokeConfig (replace: nil fields
// are unset) or UpdateFunctionEventInvokeConfig (merge: nil fields are kept)
// request. An empty destination removes it.
type EventInvokeUpdate struct {
	MaximumRetryAttempts     *int
	MaximumEventAgeInSeconds *int
	OnSuccess                *string
	OnFailure                *string
}

package registry

import (
	"errors"
	"time"
)

// Sentinel errors callers act on. Registry methods wrap them with a message
// fit to show the API caller, so errors.Is works and err.Error() reads well.
var (
	ErrNotFound           = errors.New("not found")             // ResourceNotFoundException
	ErrExists             = errors.New("already exists")        // ResourceConflictException
	ErrConflict           = errors.New("conflict")              // ResourceConflictException (concurrent update)
	ErrPreconditionFailed = errors.New("precondition failed")   // PreconditionFailedException (RevisionId mismatch)
	ErrInvalid            = errors.New("invalid parameter")     // InvalidParameterValueException
	ErrInvalidZip         = errors.New("invalid zip file")      // InvalidZipFileException
	ErrCodeTooLarge       = errors.New("code storage exceeded") // CodeStorageExceededException / RequestEntityTooLarge
)

// Latest is the qualifier of a function's mutable, unpublished version.
const Latest = "$LATEST"

// Config is one version of a function: the deterministic spec of what an
// instance runs. Published versions are immutable snapshots; the $LATEST
// record changes with UpdateFunctionCode and UpdateFunctionConfiguration.
// A *Config handed out by the registry is shared and must not be modified.
type Config struct {
	FunctionName     string    `json:"FunctionName"`
	Version          string    `json:"Version"` // "$LATEST" or "1", "2", ...
	Runtime          string    `json:"Runtime"`
	Handler          string    `json:"Handler"`
	Description      string    `json:"Description,omitempty"`
	Role             string    `json:"Role,omitempty"`
	MemorySize       int       `json:"MemorySize"`       // MB, 128..10240
	Timeout          int       `json:"Timeout"`          // seconds, 1..900
	EphemeralStorage int       `json:"EphemeralStorage"` // MB of /tmp, 512..10240
	Architectures    []string  `json:"Architectures,omitempty"`
	CodeSha256Hex    string    `json:"CodeSha256Hex"` // content address of the zip in the code store
	CodeSize         int64     `json:"CodeSize"`
	Env              *Sealed   `json:"Env,omitempty"` // encrypted environment variables
	RevisionID       string    `json:"RevisionId"`
	LastModified     time.Time `json:"LastModified"`
}

// Sealed is an envelope-encrypted blob: Data is sealed with a per-function
// data key, which is itself sealed with the node master key.
type Sealed struct {
	KeyID      string `json:"KeyId"`      // which master key wrapped the data key
	WrappedKey []byte `json:"WrappedKey"` // AES-256-GCM(master, data key), nonce-prefixed
	Data       []byte `json:"Data"`       // AES-256-GCM(data key, JSON env), nonce-prefixed
}

// AsyncConfig is a function's event invoke configuration
// (PutFunctionEventInvokeConfig) with defaults filled in.
type AsyncConfig struct {
	MaximumRetryAttempts     int    // 0..2, default 2
	MaximumEventAgeInSeconds int    // 60..21600, default 21600
	OnSuccess                string // destination ARN or ""
	OnFailure                string // destination ARN or ""
}

// Target is what an invoke runs: the resolved version and the function-wide
// settings the dispatcher needs.
type Target struct {
	Config     *Config
	InvokedARN string // the ARN as the caller named it, qualified if a qualifier was given
	Reserved   int    // reserved concurrency; -1 when unset
	Async      AsyncConfig
}

package api

import (
	"encoding/json"

	"moat.dev/moat/internal/registry"
)

// Wire shapes of the control plane, named and spelled as in the Lambda API.

type (
	// FunctionConfiguration is Lambda's FunctionConfiguration.
	FunctionConfiguration struct {
		FunctionName     string               `json:"FunctionName"`
		FunctionArn      string               `json:"FunctionArn"`
		Runtime          string               `json:"Runtime"`
		Role             string               `json:"Role,omitempty"`
		Handler          string               `json:"Handler"`
		CodeSize         int64                `json:"CodeSize"`
		Description      string               `json:"Description"`
		Timeout          int                  `json:"Timeout"`
		MemorySize       int                  `json:"MemorySize"`
		LastModified     string               `json:"LastModified"`
		CodeSha256       string               `json:"CodeSha256"`
		Version          string               `json:"Version"`
		Environment      *EnvironmentResponse `json:"Environment,omitempty"`
		TracingConfig    TracingConfig        `json:"TracingConfig"`
		RevisionID       string               `json:"RevisionId"`
		State            string               `json:"State"`
		LastUpdateStatus string               `json:"LastUpdateStatus"`
		PackageType      string               `json:"PackageType"`
		Architectures    []string             `json:"Architectures"`
		EphemeralStorage EphemeralStorage     `json:"EphemeralStorage"`
		SnapStart        SnapStartResponse    `json:"SnapStart"`
		LoggingConfig    LoggingConfig        `json:"LoggingConfig"`
		// Sandbox is moat's own field (AWS SDKs ignore it).
		Sandbox *registry.SandboxConfig `json:"Sandbox,omitempty"`
	}
	// EnvironmentResponse is Lambda's EnvironmentResponse: the variables,
	// or the reason they cannot be shown.
	EnvironmentResponse struct {
		// Variables is the decrypted JSON object, passed through as sealed.
		Variables json.RawMessage   `json:"Variables,omitempty"`
		Error     *EnvironmentError `json:"Error,omitempty"`
	}
	EnvironmentError struct {
		ErrorCode string `json:"ErrorCode"`
		Message   string `json:"Message"`
	}
	TracingConfig struct {
		Mode string `json:"Mode"`
	}
	EphemeralStorage struct {
		Size *int `json:"Size"`
	}
	SnapStartResponse struct {
		ApplyOn            string `json:"ApplyOn"`
		OptimizationStatus string `json:"OptimizationStatus"`
	}
	LoggingConfig struct {
		LogFormat string `json:"LogFormat"`
		LogGroup  string `json:"LogGroup"`
	}
	Environment struct {
		Variables map[string]string `json:"Variables"`
	}
	FunctionCode struct {
		ZipFile         []byte `json:"ZipFile"`
		S3Bucket        string `json:"S3Bucket"`
		S3Key           string `json:"S3Key"`
		S3ObjectVersion string `json:"S3ObjectVersion"`
		ImageURI        string `json:"ImageUri"`
	}
	// CreateFunctionRequest is the CreateFunction body.
	CreateFunctionRequest struct {
		FunctionName     *string           `json:"FunctionName"`
		Runtime          string            `json:"Runtime"`
		Role             string            `json:"Role"`
		Handler          string            `json:"Handler"`
		Description      string            `json:"Description"`
		Timeout          *int              `json:"Timeout"`
		MemorySize       *int              `json:"MemorySize"`
		Publish          bool              `json:"Publish"`
		Code             *FunctionCode     `json:"Code"`
		Environment      *Environment      `json:"Environment"`
		PackageType      string            `json:"PackageType"`
		Architectures    []string          `json:"Architectures"`
		EphemeralStorage *EphemeralStorage `json:"EphemeralStorage"`
		Layers           []string          `json:"Layers"`
		VpcConfig        *VpcConfig        `json:"VpcConfig"`
		// Sandbox is moat's own: Ephemeral and Egress (Resolved is ignored).
		Sandbox *registry.SandboxConfig `json:"Sandbox"`
		Tags    map[string]string       `json:"Tags"`
	}
	// UpdateFunctionConfigurationRequest is the UpdateFunctionConfiguration body.
	UpdateFunctionConfigurationRequest struct {
		Role             *string                 `json:"Role"`
		Handler          *string                 `json:"Handler"`
		Description      *string                 `json:"Description"`
		Timeout          *int                    `json:"Timeout"`
		MemorySize       *int                    `json:"MemorySize"`
		Environment      *Environment            `json:"Environment"`
		Runtime          *string                 `json:"Runtime"`
		RevisionID       string                  `json:"RevisionId"`
		EphemeralStorage *EphemeralStorage       `json:"EphemeralStorage"`
		Layers           []string                `json:"Layers"`
		VpcConfig        *VpcConfig              `json:"VpcConfig"`
		Sandbox          *registry.SandboxConfig `json:"Sandbox"`
	}
	// UpdateFunctionCodeRequest is the UpdateFunctionCode body.
	UpdateFunctionCodeRequest struct {
		ZipFile         []byte   `json:"ZipFile"`
		S3Bucket        string   `json:"S3Bucket"`
		S3Key           string   `json:"S3Key"`
		S3ObjectVersion string   `json:"S3ObjectVersion"`
		ImageURI        string   `json:"ImageUri"`
		Publish         bool     `json:"Publish"`
		DryRun          bool     `json:"DryRun"`
		RevisionID      string   `json:"RevisionId"`
		Architectures   []string `json:"Architectures"`
	}
	// PublishVersionRequest is the PublishVersion body.
	PublishVersionRequest struct {
		CodeSha256  string `json:"CodeSha256"`
		Description string `json:"Description"`
		RevisionID  string `json:"RevisionId"`
	}
	GetFunctionResponse struct {
		Configuration *FunctionConfiguration `json:"Configuration"`
		Code          FunctionCodeLocation   `json:"Code"`
		Concurrency   *Concurrency           `json:"Concurrency,omitempty"`
		Tags          map[string]string      `json:"Tags,omitempty"`
		// Isolation is moat's own field: the walls each instance of the
		// function gets on this node (AWS SDKs ignore it).
		Isolation any `json:"Isolation,omitempty"`
	}
	FunctionCodeLocation struct {
		RepositoryType string `json:"RepositoryType"`
		Location       string `json:"Location"`
	}
	Concurrency struct {
		ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
	}
	ListFunctionsResponse struct {
		Functions  []FunctionConfiguration `json:"Functions"`
		NextMarker string                  `json:"NextMarker,omitempty"`
	}
	ListVersionsByFunctionResponse struct {
		Versions   []FunctionConfiguration `json:"Versions"`
		NextMarker string                  `json:"NextMarker,omitempty"`
	}
	AliasRoutingConfiguration struct {
		AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights"`
	}
	AliasConfiguration struct {
		AliasArn        string                     `json:"AliasArn"`
		Name            string                     `json:"Name"`
		FunctionVersion string                     `json:"FunctionVersion"`
		Description     string                     `json:"Description"`
		RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
		RevisionID      string                     `json:"RevisionId"`
	}
	// CreateAliasRequest is the CreateAlias body.
	CreateAliasRequest struct {
		Name            *string                    `json:"Name"`
		FunctionVersion *string                    `json:"FunctionVersion"`
		Description     string                     `json:"Description"`
		RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig"`
	}
	// UpdateAliasRequest is the UpdateAlias body.
	UpdateAliasRequest struct {
		FunctionVersion *string                    `json:"FunctionVersion"`
		Description     *string                    `json:"Description"`
		RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig"`
		RevisionID      string                     `json:"RevisionId"`
	}
	ListAliasesResponse struct {
		Aliases    []*AliasConfiguration `json:"Aliases"`
		NextMarker string                `json:"NextMarker,omitempty"`
	}
	// PutFunctionConcurrencyRequest is the PutFunctionConcurrency body.
	PutFunctionConcurrencyRequest struct {
		ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions"`
	}
	OnDestination struct {
		Destination *string `json:"Destination,omitempty"`
	}
	DestinationConfig struct {
		OnSuccess *OnDestination `json:"OnSuccess"`
		OnFailure *OnDestination `json:"OnFailure"`
	}
	// EventInvokeConfigRequest is the Put/UpdateFunctionEventInvokeConfig body.
	EventInvokeConfigRequest struct {
		MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts"`
		MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds"`
		DestinationConfig        *DestinationConfig `json:"DestinationConfig"`
	}
	FunctionEventInvokeConfig struct {
		LastModified             float64           `json:"LastModified"` // epoch seconds
		FunctionArn              string            `json:"FunctionArn"`
		MaximumRetryAttempts     *int              `json:"MaximumRetryAttempts,omitempty"`
		MaximumEventAgeInSeconds *int              `json:"MaximumEventAgeInSeconds,omitempty"`
		DestinationConfig        DestinationConfig `json:"DestinationConfig"`
	}
)

// lastModifiedLayout is how Lambda formats FunctionConfiguration.LastModified.
const lastModifiedLayout = "2006-01-02T15:04:05.000-0700"

// VpcConfig is read only to be refused when it asks for a VPC: moat's
// network grants are Sandbox.Egress.
type VpcConfig struct {
	SubnetIDs        []string `json:"SubnetIds"`
	SecurityGroupIDs []string `json:"SecurityGroupIds"`
}

// asksForVPC reports a VpcConfig that names subnets or security groups
// (an empty one detaches a function from a VPC, which it never is here).
func (v *VpcConfig) asksForVPC() bool {
	return v != nil && (len(v.SubnetIDs) > 0 || len(v.SecurityGroupIDs) > 0)
}

package api

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Code is an AWS Lambda error code. The table below is the only place that
// decides a code's HTTP status and error type; handlers return *Error values
// and writeError turns them into the AWS JSON error shape.
type Code string

// Error codes moat returns, named as the Lambda API names them.
const (
	CodeInvalidParameterValue  Code = "InvalidParameterValueException"
	CodeInvalidRequestContent  Code = "InvalidRequestContentException"
	CodeResourceNotFound       Code = "ResourceNotFoundException"
	CodeResourceConflict       Code = "ResourceConflictException"
	CodePreconditionFailed     Code = "PreconditionFailedException"
	CodeRequestTooLarge        Code = "RequestTooLargeException"
	CodeRequestEntityTooLarge  Code = "RequestEntityTooLargeException"
	CodeTooManyRequests        Code = "TooManyRequestsException"
	CodeCodeStorageExceeded    Code = "CodeStorageExceededException"
	CodeInvalidZipFile         Code = "InvalidZipFileException"
	CodeInvalidSignature       Code = "InvalidSignatureException"
	CodeIncompleteSignature    Code = "IncompleteSignatureException"
	CodeUnrecognizedClient     Code = "UnrecognizedClientException"
	CodeMissingAuthToken       Code = "MissingAuthenticationTokenException"
	CodeAccessDenied           Code = "AccessDeniedException"
	CodeUnsupportedMediaType   Code = "UnsupportedMediaTypeException"
	CodeInvalidRuntime         Code = "InvalidRuntimeException"
	CodeServiceException       Code = "ServiceException"
	CodeResourceNotReady       Code = "ResourceNotReadyException"
	CodeUnknownOperation       Code = "UnknownOperationException"
	CodeInvalidRuntimeResponse Code = "InvalidRuntimeResponseException" // moat: response over the limit
	CodeServiceUnavailable     Code = "ServiceUnavailableException"
	CodeEC2Unexpected          Code = "EC2UnexpectedException"
	CodeKMSAccessDenied        Code = "KMSAccessDeniedException"
	// CodeValidation: a value outside the API model's constraints (range,
	// length, pattern), as AWS's front end reports it.
	CodeValidation Code = "ValidationException"
)

// errorClass says whose fault a failure is: the caller's ("User") or the
// platform's ("Service"), as Lambda reports it in the body's Type field.
type errorClass string

const (
	classUser    errorClass = "User"
	classService errorClass = "Service"
)

type codeInfo struct {
	status int
	class  errorClass
}

var codeTable = map[Code]codeInfo{
	CodeInvalidParameterValue:  {http.StatusBadRequest, classUser},
	CodeConflict:               {http.StatusConflict, classUser},
	CodeInternalServer:         {http.StatusInternalServerError, classService},
	CodeInvalidRequestContent:  {http.StatusBadRequest, classUser},
	CodeResourceNotFound:       {http.StatusNotFound, classUser},
	CodeResourceConflict:       {http.StatusConflict, classUser},
	CodePreconditionFailed:     {http.StatusPreconditionFailed, classUser},
	CodeRequestTooLarge:        {http.StatusRequestEntityTooLarge, classUser},
	CodeRequestEntityTooLarge:  {http.StatusRequestEntityTooLarge, classUser},
	CodeTooManyRequests:        {http.StatusTooManyRequests, classUser},
	CodeCodeStorageExceeded:    {http.StatusBadRequest, classUser},
	CodeInvalidZipFile:         {http.StatusBadGateway, classUser},
	CodeInvalidSignature:       {http.StatusForbidden, classUser},
	CodeIncompleteSignature:    {http.StatusForbidden, classUser},
	CodeUnrecognizedClient:     {http.StatusForbidden, classUser},
	CodeMissingAuthToken:       {http.StatusForbidden, classUser},
	CodeAccessDenied:           {http.StatusForbidden, classUser},
	CodeUnsupportedMediaType:   {http.StatusUnsupportedMediaType, classUser},
	CodeInvalidRuntime:         {http.StatusBadGateway, classService},
	CodeServiceException:       {http.StatusInternalServerError, classService},
	CodeResourceNotReady:       {http.StatusBadGateway, classService},
	CodeUnknownOperation:       {http.StatusNotFound, classUser},
	CodeInvalidRuntimeResponse: {http.StatusBadGateway, classService},
	CodeServiceUnavailable:     {http.StatusServiceUnavailable, classService},
	CodeValidation:             {http.StatusBadRequest, classUser},
}

// Error is an API failure with its Lambda error code.
type Error struct {
	Code    Code
	Message string
	// Reason, when set, fills the "Reason" field some codes carry
	// (TooManyRequestsException: ReservedFunctionConcurrentInvocationLimitExceeded).
	Reason string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an *Error.
func errorf(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// writeError writes err in the AWS JSON error shape: the code in the
// X-Amzn-ErrorType header and a body with Type and Message. Errors that are
// not *Error are the platform's own failures and are reported as
// ServiceException without their internal detail.
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeServiceException, Message: "internal error"}
	}
	info, ok := codeTable[e.Code]
	if !ok {
		info = codeInfo{http.StatusBadRequest, classUser}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-ErrorType", string(e.Code))
	if e.RetryAfter != "" {
		h.Set("Retry-After", e.RetryAfter)
	}
	body := struct {
		Type    errorClass `json:"Type"`
		Message string     `json:"Message"`
		Reason  string     `json:"Reason,omitempty"`
	}{info.class, e.Message, e.Reason}
	w.WriteHeader(info.status)
	_ = json.NewEncoder(w).Encode(body)
}

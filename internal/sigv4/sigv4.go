package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a refusal to authenticate a request. Code is the AWS error code
// the API returns; every code maps to HTTP 403. Message never holds a secret,
// a signature or a derived key.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes, as the Lambda API names them.
const (
	// CodeMissingAuthenticationToken: the request carries neither an
	// Authorization header nor presigned query parameters.
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	// CodeIncompleteSignature: the Authorization header or the presigned
	// parameters are malformed or lack a required part, or the request date
	// is missing or badly formatted.
	CodeIncompleteSignature = "IncompleteSignatureException"
	// CodeInvalidSignature: the signature does not match, the request date is
	// outside the allowed skew, a presigned URL expired, or a header the
	// signature depends on (host, or one the client listed) is missing.
	CodeInvalidSignature = "InvalidSignatureException"
	// CodeUnrecognizedClient: the access key id is unknown.
	CodeUnrecognizedClient = "UnrecognizedClientException"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	terminator      = "aws4_request"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	isoLayout       = "20060102T150405Z"
	dateLayout      = "20060102"

	defaultMaxSkew   = 15 * time.Minute
	maxPresignExpiry = 604800 // seconds: seven days, as AWS allows

	msgMissingToken = "Missing Authentication Token"
	msgMismatch     = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgUnknownKey = "The security token included in the request is invalid."
)

// Query parameters of the presigned form.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qContentSHA256 = "X-Amz-Content-Sha256"
)

// Verifier checks SigV4 signatures against the node's access keys. Set its
// fields before first use and do not copy it afterwards; Verify is safe for
// concurrent use.
type Verifier struct {
	// Secret returns the secret key for an access key id, ok=false if unknown.
	Secret func(accessKeyID string) (secret string, ok bool)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far the request date may be from Now, either way;
	// zero (or negative) means 15 minutes, as AWS allows.
	MaxSkew time.Duration
	// Region and Service, when set, are the only credential scope
	// accepted: a request signed for another region or service is
	// refused (InvalidSignatureException), as AWS refuses it.
	Region, Service string

	keys keyCache
}

// auth is the authentication material of one request, parsed and checked
// for form but not yet for its signature.
type auth struct {
	accessKeyID   string
	scope         string // <YYYYMMDD>/<region>/<service>/aws4_request, as sent
	date          string // YYYYMMDD of the scope
	region        string
	service       string
	signedHeaders string // ';'-separated, as sent
	signature     [sha256.Size]byte

	amzDate string    // request time in ISO 8601 basic form, for the string to sign
	at      time.Time // request time

	presigned bool
	expires   time.Duration // presigned only
}

// Verify checks r's signature. payloadSHA256 is the SHA-256 of the full
// request body, which the caller has read; pass nil when the body's hash is
// unknown, and then only requests signed over UNSIGNED-PAYLOAD verify.
//
// It returns the access key id on success, or an *Error whose Code is one of
// the Code constants.
func (v *Verifier) Verify(r *http.Request, payloadSHA256 []byte) (accessKeyID string, err error) {
	params, e := parseQuery(r.URL.RawQuery)
	if e != nil {
		return "", e
	}

	var a auth
	authz, hasAuthz := r.Header["Authorization"]
	switch {
	case hasAuthz && !blank(authz):
		if hasParam(params, qAlgorithm) || hasParam(params, qCredential) || hasParam(params, qSignature) {
			return "", incomplete("Only one authentication mechanism is allowed: " +
				"sign with the Authorization header or with X-Amz-* query parameters, not both.")
		}
		if len(authz) != 1 {
			return "", incomplete("The request has more than one Authorization header.")
		}
		e = parseAuthorization(&a, r, authz[0])
	case hasParam(params, qAlgorithm) || hasParam(params, qCredential) || hasParam(params, qSignature):
		e = parsePresigned(&a, params)
	default:
		return "", &Error{Code: CodeMissingAuthenticationToken, Message: msgMissingToken}
	}
	if e != nil {
		return "", e
	}
	if e := v.checkTime(&a); e != nil {
		return "", e
	}
	if v.Region != "" && a.region != v.Region {
		return "", invalid("Credential should be scoped to a valid region. This endpoint serves '" + v.Region + "', not '" + a.region + "'.")
	}
	if v.Service != "" && a.service != v.Service {
		return "", invalid("Credential should be scoped to correct service: '" + v.Service + "'.")
	}

	secret, ok := "", false
	if v.Secret != nil {
		secret, ok = v.Secret(a.accessKeyID)
	}
	if !ok {
		return "", &Error{Code: CodeUnrecognizedClient, Message: msgUnknownKey}
	}

	payloads, e := payloadHashes(r, &a, params, payloadSHA256)
	if e != nil {
		return "", e
	}
	middle, e := canonicalMiddle(r, params, &a)
	if e != nil {
		return "", e
	}
	uris := canonicalURIs(r)

	sk := scopeKey{secret: secret, date: a.date, region: a.region, service: a.service}
	key, cached := v.keys.get(sk)
	if !cached {
		key = deriveKey(secret, a.date, a.region, a.service)
	}

	mac := hmac.New(sha256.New, key[:])
	buf := make([]byte, 0, 512+len(middle))
	var sum [sha256.Size]byte
	for _, uri := range uris {
		if uri == "" {
			continue
		}
		for _, payload := range payloads {
			if payload == "" {
				continue
			}
			buf = stringToSign(buf, &a, r.Method, uri, middle, payload)
			mac.Reset()
			mac.Write(buf)
			if hmac.Equal(a.signature[:], mac.Sum(sum[:0])) {
				if !cached {
					v.keys.put(sk, key)
				}
				return a.accessKeyID, nil
			}
		}
	}
	return "", invalid(msgMismatch)
}

// stringToSign returns the string to sign for one candidate canonical
// request, built in buf's storage (whose contents it discards), where the
// canonical request is assembled and hashed first.
func stringToSign(buf []byte, a *auth, method, uri string, middle []byte, payload string) []byte {
	cr := append(buf[:0], method...)
	cr = append(cr, '\n')
	cr = append(cr, uri...)
	cr = append(cr, middle...)
	cr = append(cr, payload...)
	crHash := sha256.Sum256(cr)

	sts := append(cr[:0], algorithm+"\n"...)
	sts = append(sts, a.amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, a.scope...)
	sts = append(sts, '\n')
	return hex.AppendEncode(sts, crHash[:])
}

func (v *Verifier) checkTime(a *auth) *Error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now().UTC()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	if a.at.After(t.Add(skew)) {
		return invalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s)",
			a.amzDate, t.Add(skew).Format(isoLayout), t.Format(isoLayout), span(skew)))
	}
	window := skew
	if a.presigned {
		window = a.expires
	}
	if a.at.Before(t.Add(-window)) {
		return invalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s)",
			a.amzDate, t.Add(-window).Format(isoLayout), t.Format(isoLayout), span(window)))
	}
	return nil
}

// span formats a duration the way AWS's skew messages do: "15 min." or
// "90 sec.".
func span(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min."
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + " sec."
}

// parseAuthorization reads the header form: the Authorization header and the
// request date from X-Amz-Date (or Date).
func parseAuthorization(a *auth, r *http.Request, header string) *Error {
	alg, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	if alg != algorithm {
		return incomplete("The Authorization header must use the " + algorithm + " algorithm.")
	}
	var cred, signed, sig string
	var seenCred, seenSigned, seenSig bool
	for field := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			return incomplete("The Authorization header is malformed: each part must have the form Name=value, separated by commas.")
		}
		var seen *bool
		switch k {
		case "Credential":
			cred, seen = val, &seenCred
		case "SignedHeaders":
			signed, seen = val, &seenSigned
		case "Signature":
			sig, seen = val, &seenSig
		default:
			return incomplete("The Authorization header is malformed: it may only hold Credential, SignedHeaders and Signature.")
		}
		if *seen {
			return incomplete("The Authorization header is malformed: " + k + " appears more than once.")
		}
		*seen = true
	}

	var missing []string
	if !seenCred {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !seenSig {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if !seenSigned {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	amzDate, dateHeader := r.Header.Values("X-Amz-Date"), r.Header.Values("Date")
	if len(amzDate) == 0 && len(dateHeader) == 0 {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return incomplete(strings.Join(missing, " "))
	}

	if e := a.setCredential(cred); e != nil {
		return e
	}
	if e := a.setSignedHeaders(signed); e != nil {
		return e
	}
	if e := a.setSignature(sig); e != nil {
		return e
	}
	switch {
	case len(amzDate) > 1:
		return incomplete("The request has more than one X-Amz-Date header.")
	case len(amzDate) == 1:
		if e := a.setISODate(amzDate[0], "X-Amz-Date"); e != nil {
			return e
		}
	case len(dateHeader) > 1:
		return incomplete("The request has more than one Date header.")
	default:
		t, err := http.ParseTime(dateHeader[0])
		if err != nil {
			if e := a.setISODate(dateHeader[0], "Date"); e != nil {
				return incomplete("The Date header must be an HTTP date or in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z').")
			}
			break
		}
		a.at = t.UTC()
		a.amzDate = a.at.Format(isoLayout)
	}
	return a.checkScopeDate()
}

// parsePresigned reads the presigned form from the query parameters.
func parsePresigned(a *auth, params []param) *Error {
	a.presigned = true
	names := [...]string{qAlgorithm, qCredential, qSignature, qDate, qSignedHeaders, qExpires}
	var vals [len(names)]string
	for i, name := range names {
		n := 0
		for _, p := range params {
			if p.key == name {
				vals[i] = p.value
				n++
			}
		}
		switch n {
		case 0:
			return incomplete("AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', " +
				"'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. Re-examine the query-string parameters.")
		case 1:
		default:
			return incomplete("The query-string parameter " + name + " appears more than once.")
		}
	}
	if vals[0] != algorithm {
		return incomplete("X-Amz-Algorithm only supports " + algorithm + ".")
	}
	if e := a.setCredential(vals[1]); e != nil {
		return e
	}
	if e := a.setSignature(vals[2]); e != nil {
		return e
	}
	if e := a.setISODate(vals[3], qDate); e != nil {
		return e
	}
	if e := a.setSignedHeaders(vals[4]); e != nil {
		return e
	}
	secs, err := strconv.Atoi(vals[5])
	if err != nil || secs < 1 || secs > maxPresignExpiry || vals[5][0] == '+' {
		return incomplete("X-Amz-Expires must be a whole number of seconds from 1 to 604800 (seven days).")
	}
	a.expires = time.Duration(secs) * time.Second
	return a.checkScopeDate()
}

// setCredential parses <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request.
func (a *auth) setCredential(s string) *Error {
	const form = "Credential must have the form <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request."
	akid, scope, ok := strings.Cut(s, "/")
	if !ok || akid == "" {
		return incomplete(form)
	}
	date, rest, ok1 := strings.Cut(scope, "/")
	region, rest, ok2 := strings.Cut(rest, "/")
	service, term, ok3 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || !ok3 || region == "" || service == "" || strings.IndexByte(term, '/') >= 0 {
		return incomplete(form)
	}
	if !isDigits(date, 8) {
		return incomplete("Credential should be scoped to a valid date (YYYYMMDD).")
	}
	if term != terminator {
		return incomplete("Credential should be scoped with a valid terminator: 'aws4_request'.")
	}
	a.accessKeyID, a.scope = akid, scope
	a.date, a.region, a.service = date, region, service
	return nil
}

// setSignedHeaders checks the ';'-separated list of lowercase header names,
// which must include host.
func (a *auth) setSignedHeaders(s string) *Error {
	host := false
	for name := range strings.SplitSeq(s, ";") {
		if name == "" || !isLowerToken(name) {
			return incomplete("SignedHeaders must be a ';'-separated list of lowercase header names.")
		}
		host = host || name == "host"
	}
	if !host {
		return invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	a.signedHeaders = s
	return nil
}

func (a *auth) setSignature(s string) *Error {
	if len(s) != hex.EncodedLen(sha256.Size) {
		return incomplete("Signature must be 64 hexadecimal characters.")
	}
	if _, err := hex.Decode(a.signature[:], []byte(s)); err != nil {
		return incomplete("Signature must be 64 hexadecimal characters.")
	}
	return nil
}

func (a *auth) setISODate(s, name string) *Error {
	var t time.Time
	var err error
	if len(s) == len(isoLayout) && isDigits(s[:8], 8) && s[8] == 'T' && isDigits(s[9:15], 6) && s[15] == 'Z' {
		t, err = time.Parse(isoLayout, s)
	}
	if t.IsZero() || err != nil {
		return incomplete(name + " must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z').")
	}
	a.at, a.amzDate = t, s
	return nil
}

func (a *auth) checkScopeDate() *Error {
	if a.amzDate[:len(dateLayout)] != a.date {
		return invalid(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.date, a.amzDate[:len(dateLayout)], a.amzDate))
	}
	return nil
}

// payloadHashes returns the payload line of the canonical request: one
// candidate, or for a presigned request without X-Amz-Content-Sha256 two
// (UNSIGNED-PAYLOAD as the SDKs presign, and the body's hash as some
// services presign). Empty strings are unused slots.
func payloadHashes(r *http.Request, a *auth, params []param, body []byte) ([2]string, *Error) {
	known := len(body) == sha256.Size
	declared := r.Header.Values(qContentSHA256)
	if len(declared) == 0 && a.presigned {
		for _, p := range params {
			if p.key == qContentSHA256 {
				declared = append(declared, p.value)
			}
		}
	}
	switch {
	case len(declared) > 1:
		return [2]string{}, invalid("The request has more than one x-amz-content-sha256 value.")
	case len(declared) == 1:
		d := declared[0]
		if d == unsignedPayload {
			return [2]string{unsignedPayload}, nil
		}
		var sum [sha256.Size]byte
		if len(d) != hex.EncodedLen(sha256.Size) {
			return [2]string{}, invalid("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex SHA-256 of the body.")
		}
		if _, err := hex.Decode(sum[:], []byte(d)); err != nil {
			return [2]string{}, invalid("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex SHA-256 of the body.")
		}
		if !known {
			return [2]string{}, invalid("The request body's hash is unknown, so x-amz-content-sha256 cannot be checked.")
		}
		if !hmac.Equal(sum[:], body) {
			return [2]string{}, invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		return [2]string{d}, nil
	case a.presigned:
		if known {
			return [2]string{unsignedPayload, hex.EncodeToString(body)}, nil
		}
		return [2]string{unsignedPayload}, nil
	case known:
		return [2]string{hex.EncodeToString(body)}, nil
	default:
		return [2]string{}, invalid("The request body's hash is unknown; only UNSIGNED-PAYLOAD requests can be verified.")
	}
}

func incomplete(msg string) *Error { return &Error{Code: CodeIncompleteSignature, Message: msg} }
func invalid(msg string) *Error    { return &Error{Code: CodeInvalidSignature, Message: msg} }

func blank(vals []string) bool {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isLowerToken reports whether s is an HTTP header name (RFC 9110 token)
// without uppercase letters.
func isLowerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

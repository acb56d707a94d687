package sigv4

import (
	"cmp"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// param is one query parameter: decoded, and in its canonical encoding.
type param struct {
	key, value   string // decoded
	ekey, evalue string // RFC 3986 encoded, as the canonical query holds them
}

// parseQuery splits a raw query string into its parameters, in order. It
// refuses what net/url would silently drop (bad escapes, ';' separators), so
// that nothing the handler might read escapes the signature.
func parseQuery(raw string) ([]param, *Error) {
	if raw == "" {
		return nil, nil
	}
	params := make([]param, 0, strings.Count(raw, "&")+1)
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			return nil, invalid("The query string is malformed: ';' is not a parameter separator.")
		}
		rk, rv, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(rk)
		if err != nil {
			return nil, invalid("The query string is malformed: it holds an invalid percent-encoding.")
		}
		v, err := url.QueryUnescape(rv)
		if err != nil {
			return nil, invalid("The query string is malformed: it holds an invalid percent-encoding.")
		}
		params = append(params, param{key: k, value: v, ekey: escape(k, false), evalue: escape(v, false)})
	}
	return params, nil
}

func hasParam(params []param, key string) bool {
	for _, p := range params {
		if p.key == key {
			return true
		}
	}
	return false
}

// canonicalMiddle returns the part of the canonical request between the URI
// and the payload hash:
//
//	\n<canonical query>\n<canonical headers>\n<signed headers>\n
//
// A presigned request's X-Amz-Signature is left out of the query.
func canonicalMiddle(r *http.Request, params []param, a *auth) ([]byte, *Error) {
	sorted := make([]*param, 0, len(params))
	for i := range params {
		if a.presigned && params[i].key == qSignature {
			continue
		}
		sorted = append(sorted, &params[i])
	}
	slices.SortFunc(sorted, func(x, y *param) int {
		if c := cmp.Compare(x.ekey, y.ekey); c != 0 {
			return c
		}
		return cmp.Compare(x.evalue, y.evalue)
	})

	n := 4 + 2*len(a.signedHeaders)
	for _, p := range sorted {
		n += len(p.ekey) + len(p.evalue) + 2
	}
	b := make([]byte, 0, n+256)
	b = append(b, '\n')
	for i, p := range sorted {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.ekey...)
		b = append(b, '=')
		b = append(b, p.evalue...)
	}
	b = append(b, '\n')

	for name := range strings.SplitSeq(a.signedHeaders, ";") {
		vals, ok := headerValues(r, name)
		if !ok {
			return nil, invalid("The request does not carry the signed header '" + name + "'.")
		}
		b = append(b, name...)
		b = append(b, ':')
		for i, v := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendTrimmed(b, v)
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, a.signedHeaders...)
	b = append(b, '\n')
	return b, nil
}

// headerValues returns the values of the lowercase header name as the client
// signed them. Go's HTTP server moves Host, and sometimes Content-Length and
// Transfer-Encoding, out of r.Header; they are read back from the request.
func headerValues(r *http.Request, name string) ([]string, bool) {
	var key [64]byte
	if len(name) <= len(key) {
		if vals := r.Header[string(canonicalKey(key[:0], name))]; len(vals) > 0 {
			return vals, true
		}
	} else if vals := r.Header[textproto.CanonicalMIMEHeaderKey(name)]; len(vals) > 0 {
		return vals, true
	}
	var vals []string
	for k, vs := range r.Header {
		if strings.EqualFold(k, name) {
			vals = append(vals, vs...)
		}
	}
	if len(vals) > 0 {
		return vals, true
	}
	switch name {
	case "host":
		host := r.Host
		if host == "" && r.URL != nil {
			host = r.URL.Host
		}
		return []string{host}, host != ""
	case "content-length":
		if r.ContentLength > 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}, true
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}, true
		}
	}
	return nil, false
}

// canonicalKey appends the canonical form (as net/textproto makes it) of
// name, a lowercase header token: each letter at the start or after '-' is
// upper-cased.
func canonicalKey(dst []byte, name string) []byte {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

// appendTrimmed appends v without leading and trailing whitespace and with
// each inner run of spaces collapsed to one, as the SDKs canonicalize header
// values.
func appendTrimmed(b []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b = append(b, c)
	}
	return b
}

// canonicalURIs returns the canonical URI as the AWS SDK for Go signs it
// (the path as sent, escaped once more) and, when removing dot segments and
// empty segments changes the path, also as botocore signs it. An empty
// string is an unused slot.
func canonicalURIs(r *http.Request) [2]string {
	p := escapedPath(r.URL)
	out := [2]string{escape(p, true)}
	if n := normalizePath(p); n != p {
		out[1] = escape(n, true)
	}
	return out
}

// escapedPath returns the path as the client put it on the wire.
func escapedPath(u *url.URL) string {
	var p string
	if u.Opaque != "" {
		o := u.Opaque
		if i := strings.IndexByte(o, '?'); i >= 0 {
			o = o[:i]
		}
		o = strings.TrimPrefix(o, "//")
		if i := strings.IndexByte(o, '/'); i >= 0 {
			p = o[i:]
		}
	} else {
		p = u.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	return p
}

// normalizePath removes "." and ".." segments (RFC 3986 section 5.2.4) and
// empty segments, keeping a leading and a trailing slash.
func normalizePath(p string) string {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	var b strings.Builder
	if strings.HasPrefix(p, "/") {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if strings.HasSuffix(p, "/") && len(out) > 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// escape percent-encodes every byte outside the RFC 3986 unreserved set
// (A-Z a-z 0-9 - . _ ~), with uppercase hex, keeping '/' when keepSlash.
// It returns s itself when nothing needs escaping.
func escape(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep(s[i], keepSlash) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexdigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c, keepSlash) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
		}
	}
	return string(b)
}

func keep(c byte, keepSlash bool) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	case c == '-', c == '.', c == '_', c == '~':
		return true
	case c == '/':
		return keepSlash
	}
	return false
}

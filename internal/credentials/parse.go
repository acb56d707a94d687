package credentials

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
)

// Settings of a shared-credentials profile that this package reads.
const (
	keyAccessKeyID     = "aws_access_key_id"
	keySecretAccessKey = "aws_secret_access_key"
	keySessionToken    = "aws_session_token"
)

// SyntaxError is a malformed line of a credentials file. It never quotes the
// line, which may hold a secret.
type SyntaxError struct {
	Line int // 1-based
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Parse parses the contents of a shared-credentials file and returns every
// profile by name, each with its key (a field is empty when the profile does
// not set it). Malformed contents are a *SyntaxError.
//
// The format is the INI dialect the AWS CLI reads: "[name]" starts a
// profile; "name = value" (or "name: value") lines set a value, with
// whitespace around the delimiter and the value ignored and setting names
// case-insensitive; lines starting with '#' or ';' are comments (a comment
// may also follow a profile header, but values have no inline comments);
// a line indented deeper than the setting above it continues that setting's
// value. aws_session_token and other settings (region, output, nested s3
// blocks) are accepted and ignored. A repeated profile, or a setting repeated
// within a profile, is an error, as it is for the AWS CLI.
func Parse(data []byte) (map[string]Key, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	profiles := make(map[string]Key)
	profileLine := make(map[string]int)
	var (
		profile   string         // current profile; "" before the first header
		seen      map[string]int // settings of the current profile -> line
		setting   string         // setting whose value may continue below
		setIndent int
	)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		text := strings.TrimSpace(line)
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		indent := len(line) - len(strings.TrimLeftFunc(line, unicode.IsSpace))
		if setting != "" && indent > setIndent {
			switch setting {
			case keyAccessKeyID, keySecretAccessKey, keySessionToken:
				return nil, &SyntaxError{n, "the value of " + setting + " continues on this indented line; it must fit on one line"}
			}
			continue
		}
		setting = ""

		if text[0] == '[' {
			end := strings.IndexByte(text, ']')
			if end < 0 {
				return nil, &SyntaxError{n, "profile header lacks its closing ']'"}
			}
			if rest := strings.TrimSpace(text[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				return nil, &SyntaxError{n, "unexpected text after the profile header"}
			}
			name := strings.TrimSpace(text[1:end])
			switch {
			case name == "":
				return nil, &SyntaxError{n, "empty profile name"}
			case strings.IndexByte(name, '[') >= 0:
				return nil, &SyntaxError{n, "profile name contains '['"}
			}
			if first, dup := profileLine[name]; dup {
				return nil, &SyntaxError{n, fmt.Sprintf("profile [%s] repeats the one on line %d", name, first)}
			}
			profileLine[name] = n
			profiles[name] = Key{}
			profile, seen = name, make(map[string]int)
			continue
		}

		d := strings.IndexAny(text, "=:")
		if d < 0 {
			return nil, &SyntaxError{n, "expected a [profile] header, a 'name = value' setting or a comment"}
		}
		name := strings.ToLower(strings.TrimSpace(text[:d]))
		value := strings.TrimSpace(text[d+1:])
		switch {
		case name == "":
			return nil, &SyntaxError{n, "setting has no name before '" + text[d:d+1] + "'"}
		case profile == "":
			return nil, &SyntaxError{n, "setting " + printable(name) + " comes before any [profile] header"}
		}
		if first, dup := seen[name]; dup {
			return nil, &SyntaxError{n, fmt.Sprintf("setting %s repeats the one on line %d in profile [%s]", printable(name), first, profile)}
		}
		seen[name] = n
		k := profiles[profile]
		switch name {
		case keyAccessKeyID:
			k.AccessKeyID = value
		case keySecretAccessKey:
			k.SecretAccessKey = value
		}
		profiles[profile] = k
		setting, setIndent = name, indent
	}
	return profiles, nil
}

// printable names a setting in an error. Only well-known names are quoted:
// a malformed line could begin with a secret.
func printable(name string) string {
	switch name {
	case keyAccessKeyID, keySecretAccessKey, keySessionToken, "region", "output":
		return name
	}
	return "(a setting)"
}

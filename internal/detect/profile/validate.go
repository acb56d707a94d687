package profile

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Validate checks a profile: the function and version names, the state,
// the window, the times, and every entry (absolute path patterns without
// empty, . or .. segments, "**" only as the whole last segment,
// destinations that parse, printable UTF-8), within the limits. It
// returns an error wrapping ErrInvalid. It also forgets the compiled
// lists, so entries changed in place take effect.
func (p *Profile) Validate() error {
	p.m, p.drift = nil, nil
	if msg := p.problem(); msg != "" {
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	return nil
}

func (p *Profile) problem() string {
	if msg := checkFunction(p.Function); msg != "" {
		return "function: " + msg
	}
	if msg := checkVersion(p.Version); msg != "" {
		return "version: " + msg
	}
	if msg := checkState(p.State); msg != "" {
		return "state: " + msg
	}
	if msg := checkWindow(p.Learning); msg != "" {
		return "learning: " + msg
	}
	if msg := checkInherited(p.InheritedFrom, p.Version); msg != "" {
		return "inherited_from: " + msg
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"learning.started", p.Learning.Started}, {"updated", p.Updated}} {
		if msg := checkTime(t.t); msg != "" {
			return t.name + ": " + msg
		}
	}
	total := 0
	for _, l := range []struct {
		cat   string
		items []string
	}{{CategoryExec, p.Exec}, {CategoryRead, p.Read}, {CategoryWrite, p.Write}, {CategoryConnect, p.Connect}, {"drift", p.Drifted}} {
		if len(l.items) > MaxItems {
			return fmt.Sprintf("%s: %d entries; at most %d are allowed", l.cat, len(l.items), MaxItems)
		}
		for i, it := range l.items {
			var msg string
			if l.cat == "drift" {
				msg = checkDrift(it)
			} else {
				msg = checkItem(l.cat, it)
			}
			if msg != "" {
				return fmt.Sprintf("%s[%d]: %s", l.cat, i, msg)
			}
			total += len(it)
		}
	}
	if total > MaxTotalBytes {
		return fmt.Sprintf("the entries hold %d bytes; at most %d are allowed", total, MaxTotalBytes)
	}
	return ""
}

// checkFunction: a Lambda function name, [A-Za-z0-9_-]{1,64}.
func checkFunction(s string) string {
	if s == "" || len(s) > 64 {
		return fmt.Sprintf("%q is not a function name (1 to 64 letters, digits, - or _)", s)
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' && s[i] != '_' {
			return fmt.Sprintf("%q is not a function name (1 to 64 letters, digits, - or _)", s)
		}
	}
	return ""
}

// checkVersion: $LATEST or a published version number.
func checkVersion(s string) string {
	if s == "$LATEST" {
		return ""
	}
	if s == "" || len(s) > 10 || s[0] == '0' || !allDigits(s) {
		return fmt.Sprintf("%q is not $LATEST or a version number", s)
	}
	return ""
}

func checkInherited(s, version string) string {
	switch {
	case s == "":
		return ""
	case s == version:
		return fmt.Sprintf("%q is the profile's own version", s)
	}
	return checkVersion(s)
}

func checkState(s State) string {
	switch s {
	case StateLearning, StateLearned, StateApproved:
		return ""
	}
	return fmt.Sprintf("must be learning, learned or approved, not %q", s)
}

func checkWindow(w Window) string {
	switch {
	case w.Invocations < 0:
		return "invocations must not be negative"
	case w.Duration < 0:
		return "duration must not be negative"
	case w.Seen < 0:
		return "seen must not be negative"
	}
	return ""
}

var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

func checkTime(t time.Time) string {
	if t.Before(minTime) || t.After(maxTime) {
		return "must lie between the years 1 and 9999"
	}
	return ""
}

// checkItem checks an entry of a category's list.
func checkItem(cat, it string) string {
	if len(it) > MaxItemLen {
		return fmt.Sprintf("an entry of %d bytes; at most %d are allowed", len(it), MaxItemLen)
	}
	var msg string
	if cat == CategoryConnect {
		_, msg = parseDest(it)
	} else {
		msg = checkPattern(it)
	}
	if msg != "" {
		return strconv.Quote(it) + ": " + msg
	}
	return ""
}

// checkDrift checks a Drifted entry, "CATEGORY ITEM".
func checkDrift(d string) string {
	cat, it, ok := strings.Cut(d, " ")
	switch {
	case !ok:
		return strconv.Quote(d) + ": want CATEGORY ENTRY, such as \"exec /bin/sh\""
	case cat != CategoryExec && cat != CategoryRead && cat != CategoryWrite && cat != CategoryConnect:
		return strconv.Quote(d) + ": the category must be exec, read, write or connect"
	}
	return checkItem(cat, it)
}

// checkPattern checks a path pattern.
func checkPattern(p string) string {
	switch {
	case p == "":
		return "an empty path"
	case p[0] != '/':
		return "not an absolute path"
	case p == "/":
		return ""
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == "":
			return "an empty segment (// or a trailing /)"
		case s == "." || s == "..":
			return "a . or .. segment"
		case strings.Contains(s, "**") && (s != "**" || i != len(segs)-1):
			return "** is only allowed as the whole last segment"
		case !printableText(s):
			return "a character that is not printable UTF-8"
		}
	}
	return ""
}

// checkUnix checks the path of a unix: destination.
func checkUnix(p string) string {
	switch {
	case p == "":
		return "no socket path"
	case !printableText(p):
		return "a character that is not printable UTF-8"
	case p[0] == '@':
		return ""
	case p[0] != '/':
		return "a unix socket is an absolute path or @NAME (abstract)"
	case path.Clean(p) != p:
		return "the socket path is not clean (//, . or .. segments, or a trailing /)"
	}
	return ""
}

func printableText(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

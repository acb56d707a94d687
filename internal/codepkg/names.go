package codepkg

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// Linux limits. Longer names could not be opened by the function anyway.
const (
	maxNameLen   = 4096 // PATH_MAX
	maxElemLen   = 255  // NAME_MAX
	maxTargetLen = 4095 // longest symlink target Linux stores
)

// cleanName turns a zip entry name into a clean relative slash-separated path
// without a trailing slash. "" means the package root ("./"). Absolute names,
// ".." elements, backslashes, NUL and other control characters are refused;
// empty and "." elements are dropped, so "a//./b" and "a/b" are the same
// entry (and duplicates of each other).
func cleanName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", fmt.Errorf("%w: an entry has an empty name", ErrInvalid)
	case len(raw) > maxNameLen:
		return "", fmt.Errorf("%w: entry %.64q... has a name longer than %d bytes", ErrInvalid, raw, maxNameLen)
	case strings.ContainsRune(raw, '\\'):
		return "", fmt.Errorf("%w: entry %q contains a backslash; zip paths must use '/'", ErrInvalid, raw)
	case hasControl(raw):
		return "", fmt.Errorf("%w: entry %q contains a control character", ErrInvalid, raw)
	case raw[0] == '/':
		return "", fmt.Errorf("%w: entry %q has an absolute path", ErrInvalid, raw)
	}
	elems := strings.Split(raw, "/")
	kept := elems[:0]
	for _, e := range elems {
		switch {
		case e == "" || e == ".":
			continue
		case e == "..":
			return "", fmt.Errorf("%w: entry %q escapes the package ('..' is not allowed in entry names)", ErrInvalid, raw)
		case len(e) > maxElemLen:
			return "", fmt.Errorf("%w: entry %q has a path element longer than %d bytes", ErrInvalid, raw, maxElemLen)
		}
		kept = append(kept, e)
	}
	name := strings.Join(kept, "/")
	if name != "" && !filepath.IsLocal(name) {
		// Unreachable after the checks above; kept as the final word.
		return "", fmt.Errorf("%w: entry %q escapes the package", ErrInvalid, raw)
	}
	return name, nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// checkLinkTarget accepts a symlink target only if it stays inside the
// package. name is the link's clean entry name; its parent directories are
// real directories (parse refuses entries below a symlink).
//
// The target must be relative, and ".." may only appear as a leading run
// ("../../lib/x"). A ".." after a name ("sub/../x") could climb out of
// whatever "sub" resolves to if it is itself a symlink, so a lexical check
// would not be enough. With leading ".." only, resolution climbs real
// directories first, then only descends, so the lexical check below is the
// real one.
func checkLinkTarget(name, target string) error {
	switch {
	case target == "":
		return fmt.Errorf("%w: symlink %q has an empty target", ErrInvalid, name)
	case len(target) > maxTargetLen:
		return fmt.Errorf("%w: symlink %q has a target longer than %d bytes", ErrInvalid, name, maxTargetLen)
	case strings.ContainsRune(target, '\\'):
		return fmt.Errorf("%w: symlink %q has target %q containing a backslash", ErrInvalid, name, target)
	case hasControl(target):
		return fmt.Errorf("%w: symlink %q has a target containing a control character", ErrInvalid, name)
	case target[0] == '/':
		return fmt.Errorf("%w: symlink %q points to absolute path %q; only relative targets inside the package are allowed", ErrInvalid, name, target)
	}
	leading := true
	for _, e := range strings.Split(target, "/") {
		switch e {
		case "", ".":
		case "..":
			if !leading {
				return fmt.Errorf("%w: symlink %q has target %q with '..' after a name; '..' is only allowed at the start", ErrInvalid, name, target)
			}
		default:
			leading = false
		}
	}
	if !filepath.IsLocal(path.Join(path.Dir(name), target)) {
		return fmt.Errorf("%w: symlink %q points outside the package (target %q)", ErrInvalid, name, target)
	}
	return nil
}

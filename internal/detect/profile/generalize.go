package profile

import (
	"slices"
	"strings"
)

// Generalization is what keeps a benign function from alerting on the
// names it makes up at run time. A learned path becomes a pattern by
// these rules:
//
//  1. Only where names are made at run time: under a scratch root (/tmp,
//     /var/tmp, /dev/shm, the only places a function can create files),
//     and for process and descriptor numbers under /proc and /dev/fd.
//     Everywhere else the file system is read-only, so its names are a
//     fixed set and are listed exactly (an executable in /usr/bin stays
//     /usr/bin/sha256sum, never /usr/bin/*).
//  2. Under /proc and /dev/fd, an all-digit segment becomes "*":
//     /proc/1234/stat → /proc/*/stat, /dev/fd/7 → /dev/fd/*.
//  3. Under a scratch root, a segment is cut into tokens (runs of ASCII
//     letters and digits, split at any other character). A token looks
//     generated when it is all digits; or holds a run of three or more
//     digits; or is six or more hex digits with a digit among them, or
//     eight or more hex digits (hashes, uuids, %08x names); or is six or
//     more characters long with two or more switches between letters and
//     digits or from a lower- to an upper-case letter (mkstemp's XyZ9aB,
//     tempfile's tmpk3j_q). The segment's text from its first to its
//     last generated token becomes "*", keeping what is around it:
//     scratch-7f3a9c1e.json → scratch-*.json, job-1234 → job-*,
//     tmp.XyZ123 → tmp.*, 6f1c8a0e-3b2d-4e5f-9a8b-7c6d5e4f3a2b → *.
//  4. Under a scratch root, once more than collapseAfter distinct names
//     were learned at one place (the same parent in one list), they
//     become "*" there: /tmp/run-a/out, /tmp/run-b/out, ... →
//     /tmp/*/out. Directly under the scratch root itself, read and write
//     entries become the whole root instead: /tmp/**. Exec entries never
//     become "**" (enforce mode would make the whole root executable).
//  5. Anywhere, a segment that holds a '*', a character that is not
//     printable or bytes that are not UTF-8 becomes "*": an entry must be
//     a well-formed pattern that reads the same in YAML.
//
// Every rule maps a path to a pattern that matches it, so what was
// learned always covers what was seen.

// collapseAfter distinct names at one place of a scratch root are
// replaced by "*" (rule 4).
const collapseAfter = 8

// scratchRoots are the writable places where a function makes up names.
var scratchRoots = []string{"/tmp", "/var/tmp", "/dev/shm"}

// numberRoots are where all-digit segments are process or descriptor
// numbers.
var numberRoots = []string{"/proc", "/dev/fd"}

// under returns the number of segments of the root in roots p lies
// beneath (not the root itself), or 0.
func under(p string, roots []string) int {
	for _, r := range roots {
		if len(p) > len(r)+1 && p[len(r)] == '/' && strings.HasPrefix(p, r) {
			return strings.Count(r, "/")
		}
	}
	return 0
}

// generalize turns a clean absolute path into the pattern a profile
// lists for it (rules 1, 2, 3 and 5).
func generalize(p string) string {
	if p == "/" {
		return p
	}
	scratch := under(p, scratchRoots)
	numbers := under(p, numberRoots)
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case !wellFormedSegment(s):
			segs[i] = "*"
		case scratch > 0 && i >= scratch:
			segs[i] = generalizeSegment(s)
		case numbers > 0 && i >= numbers && allDigits(s):
			segs[i] = "*"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// wellFormedSegment reports whether a path segment can stand in a
// pattern as itself: printable UTF-8 without '*'.
func wellFormedSegment(s string) bool {
	return !strings.Contains(s, "*") && printableText(s)
}

// generalizeSegment applies rule 3 to one segment.
func generalizeSegment(s string) string {
	start, end := -1, -1
	for i := 0; i < len(s); {
		if !isAlnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		if generatedToken(s[i:j]) {
			if start < 0 {
				start = i
			}
			end = j
		}
		i = j
	}
	if start < 0 {
		return s
	}
	return s[:start] + "*" + s[end:]
}

func isAlnum(c byte) bool { return isDigit(c) || isLetter(c) }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// generatedToken reports whether a run of letters and digits looks made
// up at run time (rule 3).
func generatedToken(t string) bool {
	digits, run, maxRun, switches := 0, 0, 0, 0
	hex := true
	for i := 0; i < len(t); i++ {
		c := t[i]
		if isDigit(c) {
			digits++
			run++
			maxRun = max(maxRun, run)
		} else {
			run = 0
		}
		if !isHex(c) {
			hex = false
		}
		if i > 0 {
			p := t[i-1]
			if isDigit(p) != isDigit(c) || p >= 'a' && p <= 'z' && c >= 'A' && c <= 'Z' {
				switches++
			}
		}
	}
	switch {
	case digits == len(t), maxRun >= 3:
		return true
	case hex && (len(t) >= 8 || len(t) >= 6 && digits > 0):
		return true
	case len(t) >= 6 && switches >= 2:
		return true
	}
	return false
}

// segments splits a clean absolute path or pattern.
func segments(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

func join(segs []string) string { return "/" + strings.Join(segs, "/") }

// collapse applies rule 4 after item x was added to list l: at each
// place of x beneath its scratch root, deepest first, more than
// collapseAfter distinct names become "*" (or, directly beneath the root
// and unless exec, the root's "**"). It returns the new list, sorted,
// without entries another entry covers.
func collapse(l []string, x string, exec bool) []string {
	root := under(x, scratchRoots)
	if root == 0 {
		return l
	}
	xs := segments(x)
	changed := false
	for k := len(xs) - 1; k >= root; k-- {
		distinct := map[string]bool{}
		var members []int
		for i, it := range l {
			s := segments(it)
			if len(s) > k && slices.Equal(s[:k], xs[:k]) && !(s[k] == "**" && k == len(s)-1) {
				members = append(members, i)
				distinct[s[k]] = true
			}
		}
		if len(distinct) <= collapseAfter {
			continue
		}
		changed = true
		if k == root && !exec {
			wide := join(xs[:k]) + "/**"
			l = slices.DeleteFunc(l, func(it string) bool { return covers(wide, it) })
			l = append(l, wide)
			break
		}
		for _, i := range members {
			s := segments(l[i])
			if s[k] == "*" {
				continue
			}
			s[k] = "*"
			l[i] = join(s)
		}
		xs[k] = "*"
	}
	if !changed {
		return l
	}
	return prune(l)
}

// prune sorts a list and drops duplicates and entries another entry
// covers (of two entries that cover each other, the first in order
// stays).
func prune(l []string) []string {
	slices.Sort(l)
	l = slices.Compact(l)
	pats := make([]pattern, len(l))
	for i, it := range l {
		pats[i] = compilePattern(it)
	}
	out := make([]string, 0, len(l))
	for i, it := range l {
		covered := false
		for j := range l {
			if i != j && pats[j].covers(&pats[i]) && (j < i || !pats[i].covers(&pats[j])) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, it)
		}
	}
	return out
}

package logs

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// StartLine is the line Lambda writes before an invocation's output:
//
//	START RequestId: <id> Version: <version>\n
func StartLine(requestID, version string) string {
	return "START RequestId: " + requestID + " Version: " + version + "\n"
}

// EndLine is the line Lambda writes after an invocation's output:
//
//	END RequestId: <id>\n
func EndLine(requestID string) string {
	return "END RequestId: " + requestID + "\n"
}

// Report is what the REPORT line of one invocation says.
type Report struct {
	RequestID       string
	Duration        time.Duration // time from the invoke to the response
	MemorySizeMB    int           // configured memory
	MaxMemoryUsedMB int           // the instance's peak memory so far
	// InitDuration is set (>0) only for the first invocation an instance
	// serves: the time its init phase took.
	InitDuration time.Duration
	// Status is empty for an invocation that returned normally; otherwise
	// "timeout" or "error", as Lambda's newer format prints it.
	Status string
}

// ReportLine formats r as Lambda's REPORT line. Every field is
// "<Name>: <value>" followed by a tab, so the line ends in a tab and then a
// newline, and fields appear in Lambda's order:
//
//	REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\t[Init Duration: 105.23 ms\t][Status: timeout\t]\n
//
// Duration and Init Duration are milliseconds rounded to two decimals. Billed
// Duration is Duration rounded up to the next whole millisecond, at least
// 1 ms, as Lambda bills since December 2020. Init Duration appears only when
// r.InitDuration > 0 and Status only when r.Status is set.
func ReportLine(r Report) string {
	var b strings.Builder
	b.Grow(160 + len(r.RequestID))
	b.WriteString("REPORT RequestId: ")
	b.WriteString(r.RequestID)
	b.WriteString("\tDuration: ")
	b.WriteString(formatMS(r.Duration))
	b.WriteString(" ms\tBilled Duration: ")
	b.WriteString(strconv.FormatInt(billedMS(r.Duration), 10))
	b.WriteString(" ms\tMemory Size: ")
	b.WriteString(strconv.Itoa(r.MemorySizeMB))
	b.WriteString(" MB\tMax Memory Used: ")
	b.WriteString(strconv.Itoa(r.MaxMemoryUsedMB))
	b.WriteString(" MB\t")
	if r.InitDuration > 0 {
		b.WriteString("Init Duration: ")
		b.WriteString(formatMS(r.InitDuration))
		b.WriteString(" ms\t")
	}
	if r.Status != "" {
		b.WriteString("Status: ")
		b.WriteString(r.Status)
		b.WriteString("\t")
	}
	b.WriteString("\n")
	return b.String()
}

// formatMS prints d in milliseconds with two decimals.
func formatMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// billedMS is d rounded up to whole milliseconds, at least 1.
func billedMS(d time.Duration) int64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return max(ms, 1)
}

// Tail returns the last n bytes of s or fewer: when byte len(s)-n falls
// inside a multi-byte UTF-8 sequence, the partial character is left out, so a
// valid UTF-8 s gives a valid UTF-8 tail. It serves X-Amz-Log-Result, which
// carries the last 4 KB of an invocation's log.
func Tail(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	// A valid sequence has at most UTFMax-1 continuation bytes; skipping more
	// would only eat through invalid input.
	for k := 0; k < utf8.UTFMax-1 && i < len(s) && !utf8.RuneStart(s[i]); k++ {
		i++
	}
	return s[i:]
}

package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// The examples of AWS's cron documentation, and the special characters,
// each followed from a fixed instant for three ticks.
func TestCronNext(t *testing.T) {
	cases := []struct {
		expr string
		from string // UTC
		want []string
	}{
		{"cron(0 10 * * ? *)", "2026-12-07 09:00", []string{"2026-12-07 10:00", "2026-12-08 10:00", "2026-12-09 10:00"}},
		{"cron(15 12 * * ? *)", "2026-12-07 12:15", []string{"2026-12-08 12:15", "2026-12-09 12:15", "2026-12-10 12:15"}},
		// 2026-12-11 is a Friday.
		{"cron(0 18 ? * MON-FRI *)", "2026-12-11 17:00", []string{"2026-12-11 18:00", "2026-12-14 18:00", "2026-12-15 18:00"}},
		{"cron(0 8 1 * ? *)", "2026-12-07 00:00", []string{"2027-01-01 08:00", "2027-02-01 08:00", "2027-03-01 08:00"}},
		{"cron(0/15 * * * ? *)", "2026-12-07 10:07", []string{"2026-12-07 10:15", "2026-12-07 10:30", "2026-12-07 10:45"}},
		{"cron(0/5 8-17 ? * MON-FRI *)", "2026-12-11 17:52", []string{"2026-12-11 17:55", "2026-12-14 08:00", "2026-12-14 08:05"}},
		// Day-of-week counts from Sunday = 1: 2#1 is the first Monday.
		{"cron(0 9 ? * 2#1 *)", "2026-12-01 00:00", []string{"2026-12-07 09:00", "2027-01-04 09:00", "2027-02-01 09:00"}},
		{"cron(0 9 ? * MON#1 *)", "2026-12-01 00:00", []string{"2026-12-07 09:00", "2027-01-04 09:00", "2027-02-01 09:00"}},
		{"cron(0 0 ? * 1 *)", "2026-12-07 00:00", []string{"2026-12-13 00:00", "2026-12-20 00:00", "2026-12-27 00:00"}},
		{"cron(0 0 ? * 7 *)", "2026-12-07 00:00", []string{"2026-12-12 00:00", "2026-12-19 00:00", "2026-12-26 00:00"}},
		// L: the last day of the month; of the week, Saturday.
		{"cron(0 0 L * ? *)", "2027-01-15 00:00", []string{"2027-01-31 00:00", "2027-02-28 00:00", "2027-03-31 00:00"}},
		{"cron(0 0 ? * L *)", "2026-12-07 00:00", []string{"2026-12-12 00:00", "2026-12-19 00:00", "2026-12-26 00:00"}},
		// 6L: the last Friday of the month.
		{"cron(0 12 ? * 6L *)", "2026-12-01 00:00", []string{"2026-12-25 12:00", "2027-01-29 12:00", "2027-02-26 12:00"}},
		// 3W: the weekday nearest the 3rd (2027-01-03 is a Sunday: Monday the 4th;
		// 2027-04-03 a Saturday: Friday the 2nd).
		{"cron(0 0 3W * ? *)", "2026-12-31 00:00", []string{"2027-01-04 00:00", "2027-02-03 00:00", "2027-03-03 00:00"}},
		{"cron(0 0 3W 4 ? *)", "2026-12-31 00:00", []string{"2027-04-02 00:00", "2028-04-03 00:00", "2029-04-03 00:00"}},
		// LW: the last weekday (2027-01-31 is a Sunday).
		{"cron(0 0 LW * ? *)", "2027-01-01 00:00", []string{"2027-01-29 00:00", "2027-02-26 00:00", "2027-03-31 00:00"}},
		{"cron(30 6 1,15 JAN,JUL ? 2027)", "2026-12-07 00:00", []string{"2027-01-01 06:30", "2027-01-15 06:30", "2027-07-01 06:30"}},
		{"cron(0 0 29 2 ? 2029-2031)", "2026-12-07 00:00", nil}, // no 29 February in those years
		{"cron(0 0 29 2 ? *)", "2026-12-07 00:00", []string{"2028-02-29 00:00", "2032-02-29 00:00", "2036-02-29 00:00"}},
		{"cron(0 0 1 1 ? 2026)", "2026-12-07 00:00", nil}, // in the past
		{"cron(*/20 3 * * ? *)", "2026-12-07 03:30", []string{"2026-12-07 03:40", "2026-12-08 03:00", "2026-12-08 03:20"}},
		{"cron(5-10/5 * * * ? *)", "2026-12-07 03:30", []string{"2026-12-07 04:05", "2026-12-07 04:10", "2026-12-07 05:05"}},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.expr, "")
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		at := mustTime(t, time.UTC, c.from)
		var got []string
		for range 3 {
			at = e.Next(at)
			if at.IsZero() {
				break
			}
			got = append(got, at.UTC().Format("2006-01-02 15:04"))
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s from %s: got %v, want %v", c.expr, c.from, got, c.want)
		}
	}
}

// A cron expression follows its time zone's wall clock: the hour skipped in
// spring does not fire, the hour repeated in autumn fires once.
func TestCronDaylightSaving(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		expr string
		from string // New York wall clock
		want []time.Time
	}{
		// 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that day.
		{"cron(30 2 * * ? *)", "2026-03-07 03:00", []time.Time{
			time.Date(2026, 3, 9, 6, 30, 0, 0, time.UTC), // 02:30 EDT on the 9th
			time.Date(2026, 3, 10, 6, 30, 0, 0, time.UTC),
		}},
		// 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens twice, fires once.
		{"cron(30 1 * * ? *)", "2026-10-31 12:00", []time.Time{
			time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), // 01:30 EDT
			time.Date(2026, 11, 2, 6, 30, 0, 0, time.UTC), // 01:30 EST the next day
		}},
		// Every 30 minutes across the fall-back: 01:00 and 01:30 only once,
		// then 02:00 EST.
		{"cron(0/30 * * * ? *)", "2026-11-01 00:45", []time.Time{
			time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC),  // 01:00 EDT
			time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), // 01:30 EDT
			time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC),  // 02:00 EST
		}},
		// Noon stays noon local time on both sides of the change.
		{"cron(0 12 * * ? *)", "2026-03-07 13:00", []time.Time{
			time.Date(2026, 3, 8, 16, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC),
		}},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.expr, "America/New_York")
		if err != nil {
			t.Fatal(err)
		}
		at := mustTime(t, ny, c.from)
		for i, want := range c.want {
			at = e.Next(at)
			if !at.Equal(want) {
				t.Errorf("%s from %s tick %d: got %s, want %s", c.expr, c.from, i, at.UTC(), want)
				break
			}
		}
	}
	// Resuming inside the repeated hour (the second 01:10) does not fire
	// 01:30 a second time.
	e, _ := ParseExpr("cron(30 1 * * ? *)", "America/New_York")
	second := time.Date(2026, 11, 1, 6, 10, 0, 0, time.UTC) // 01:10 EST
	if got, want := e.Next(second), time.Date(2026, 11, 2, 6, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("from the repeated hour: got %s, want %s", got.UTC(), want)
	}
}

func TestRateAndAt(t *testing.T) {
	e, err := ParseExpr("rate(5 minutes)", "")
	if err != nil {
		t.Fatal(err)
	}
	anchor := time.Date(2026, 12, 7, 10, 0, 7, 0, time.UTC)
	if got := e.RateNext(anchor, anchor.Add(-time.Nanosecond)); !got.Equal(anchor) {
		t.Errorf("first tick: got %s, want the anchor", got)
	}
	if got := e.RateNext(anchor, anchor); !got.Equal(anchor.Add(5 * time.Minute)) {
		t.Errorf("second tick: got %s", got)
	}
	if got := e.RateNext(anchor, anchor.Add(12*time.Minute)); !got.Equal(anchor.Add(15 * time.Minute)) {
		t.Errorf("tick after 12m: got %s", got)
	}
	d, _ := ParseExpr("rate(1 day)", "Europe/Berlin")
	if d.Period() != 24*time.Hour {
		t.Errorf("rate(1 day) = %s, want 24h", d.Period())
	}

	a, err := ParseExpr("at(2027-03-28T02:30:00)", "Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2027, 3, 27, 17, 30, 0, 0, time.UTC)
	if got := a.Next(want.Add(-time.Hour)); !got.Equal(want) {
		t.Errorf("at: got %s, want %s", got, want)
	}
	if got := a.Next(want); !got.IsZero() {
		t.Errorf("at fires twice: %s", got)
	}
}

func TestParseExprRefuses(t *testing.T) {
	cases := map[string]string{
		"":                           "Expected",
		"every(5 minutes)":           "Expected",
		"rate(5 minutes":             "Expected",
		"rate(0 minutes)":            "positive",
		"rate(-1 minutes)":           "positive",
		"rate(5 weeks)":              "unit",
		"rate(1 minutes)":            "singular",
		"rate(5 minute)":             "singular",
		"rate(5)":                    "rate(value unit)",
		"at(2027-13-01T00:00:00)":    "yyyy-mm-dd",
		"at(2027-01-01 00:00:00)":    "yyyy-mm-dd",
		"cron(0 10 * * *)":           "six fields",
		"cron(0 10 * * * *)":         "Exactly one",
		"cron(0 10 ? * ? *)":         "Exactly one",
		"cron(60 10 * * ? *)":        "minutes",
		"cron(0 24 * * ? *)":         "hours",
		"cron(0 0 32 * ? *)":         "day-of-month",
		"cron(0 0 0 * ? *)":          "day-of-month",
		"cron(0 0 * 13 ? *)":         "month",
		"cron(0 0 ? * 8 *)":          "day-of-week",
		"cron(0 0 ? * 0 *)":          "day-of-week",
		"cron(0 0 ? * MON#6 *)":      "# must be 1 to 5",
		"cron(0 0 * * ? 1969)":       "year",
		"cron(0 0 * * ? 2150)":       "year",
		"cron(? 0 * * ? *)":          "? is allowed only",
		"cron(0 0 L * ? *) extra":    "Expected",
		"cron(0 0 5L * ? *)":         "day-of-month",
		"cron(0 0 ? * 2W *)":         "day-of-week",
		"cron(0/0 * * * ? *)":        "increment",
		"cron(0/61 * * * ? *)":       "increment",
		"cron(10-5 * * * ? *)":       "backwards",
		"cron(1,,2 * * * ? *)":       "empty",
		"cron(0 0 L,5 * ? *)":        "list",
		"cron(+5 0 * * ? *)":         "not a value",
		"cron(0 0 ? FOO * *)":        "month",
		"cron(0 0 ? * MON-FOO *)":    "day-of-week",
		"cron(0 0 * * ? *)extra":     "Expected",
		"cron(0 0 ? * FRI-MON *)":    "backwards",
		"cron(0 0 * * ? 2027-2026)":  "backwards",
		"cron(0 0 1-40 * ? *)":       "out of range",
		"cron(0 0 ? JAN-DEC/13 ? *)": "Exactly one",
	}
	for expr, want := range cases {
		_, err := ParseExpr(expr, "")
		var ee *ExprError
		if !errors.As(err, &ee) {
			t.Errorf("%q: got %v, want an ExprError", expr, err)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q does not mention %q", expr, err, want)
		}
	}
	for _, tz := range []string{"Mars/Olympus", "Local", "../../etc/passwd", "America/New_York\\x"} {
		if _, err := ParseExpr("rate(1 minute)", tz); err == nil {
			t.Errorf("time zone %q accepted", tz)
		}
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"cron(0 10 * * ? *)", "cron(0/5 8-17 ? * MON-FRI *)", "cron(0 9 ? * 2#1 *)",
		"cron(0 0 LW * ? *)", "cron(0 12 ? * 6L 2027-2030)", "rate(5 minutes)", "rate(1 day)", "at(2027-01-01T00:00:00)"} {
		f.Add(s, "")
		f.Add(s, "America/New_York")
	}
	from := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr, tz string) {
		e, err := ParseExpr(expr, tz)
		if err != nil {
			var ee *ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("%q: error of type %T", expr, err)
			}
			return
		}
		// A valid expression's ticks move strictly forward.
		at := from
		for range 3 {
			next := e.RateNext(from, at)
			if next.IsZero() {
				return
			}
			if !next.After(at) {
				t.Fatalf("%q: Next(%s) = %s, not after", expr, at, next)
			}
			at = next
		}
	})
}

func BenchmarkCronNext(b *testing.B) {
	e, err := ParseExpr("cron(0/5 8-17 ? * MON-FRI *)", "America/New_York")
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		at = e.Next(at)
	}
}

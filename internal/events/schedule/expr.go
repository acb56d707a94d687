package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones resolve on hosts without a zoneinfo database

	"github.com/hashicorp/cronexpr"
)

// Kind is the form of a schedule expression.
type Kind int

const (
	KindAt   Kind = iota + 1 // at(yyyy-mm-ddThh:mm:ss): once
	KindRate                 // rate(value unit): every fixed duration
	KindCron                 // cron(min hour dom month dow year)
)

// Expr is a parsed schedule expression in its time zone.
type Expr struct {
	Kind   Kind
	Source string         // the expression as written
	Loc    *time.Location // ScheduleExpressionTimezone (UTC by default)

	at     time.Time     // KindAt
	period time.Duration // KindRate
	cron   *cronexpr.Expression
}

// An ExprError says what is wrong with an expression, in the words the
// Scheduler API's ValidationException uses.
type ExprError struct {
	Expr   string
	Reason string
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("Invalid Schedule Expression %s. %s", e.Expr, e.Reason)
}

// ParseExpr parses an EventBridge Scheduler schedule expression evaluated in
// the IANA time zone tz ("" is UTC).
func ParseExpr(expr, tz string) (*Expr, error) {
	loc, err := LoadZone(tz)
	if err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) error {
		return &ExprError{Expr: expr, Reason: fmt.Sprintf(format, a...)}
	}
	open := strings.IndexByte(expr, '(')
	if open < 0 || !strings.HasSuffix(expr, ")") {
		return nil, bad("Expected at(...), rate(...) or cron(...).")
	}
	body := expr[open+1 : len(expr)-1]
	e := &Expr{Source: expr, Loc: loc}
	switch expr[:open] {
	case "at":
		t, err := time.ParseInLocation("2006-01-02T15:04:05", body, loc)
		if err != nil {
			return nil, bad("The time must be yyyy-mm-ddThh:mm:ss.")
		}
		e.Kind, e.at = KindAt, t
	case "rate":
		d, err := parseRate(body)
		if err != nil {
			return nil, bad("%s", err)
		}
		e.Kind, e.period = KindRate, d
	case "cron":
		c, err := translateCron(body)
		if err != nil {
			return nil, bad("%s", err)
		}
		ce, err := cronexpr.Parse(c)
		if err != nil {
			return nil, bad("%s.", err)
		}
		e.Kind, e.cron = KindCron, ce
	default:
		return nil, bad("Expected at(...), rate(...) or cron(...).")
	}
	return e, nil
}

// LoadZone resolves a ScheduleExpressionTimezone: an IANA name, "" for UTC.
func LoadZone(tz string) (*time.Location, error) {
	if tz == "" || tz == "UTC" {
		return time.UTC, nil
	}
	if tz == "Local" || strings.ContainsAny(tz, "\\") || strings.Contains(tz, "..") {
		return nil, &ExprError{Expr: tz, Reason: "Invalid time zone."}
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, &ExprError{Expr: tz, Reason: "Invalid time zone."}
	}
	return loc, nil
}

func parseRate(body string) (time.Duration, error) {
	f := strings.Fields(body)
	if len(f) != 2 {
		return 0, fmt.Errorf("A rate is rate(value unit): a positive number and minute(s), hour(s) or day(s).")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 || n > 1_000_000 {
		return 0, fmt.Errorf("The rate value must be a positive whole number.")
	}
	unit := f[1]
	var d time.Duration
	switch strings.TrimSuffix(unit, "s") {
	case "minute":
		d = time.Minute
	case "hour":
		d = time.Hour
	case "day":
		d = 24 * time.Hour // a day is 24 hours, whatever daylight saving does
	default:
		return 0, fmt.Errorf("The rate unit must be minute(s), hour(s) or day(s).")
	}
	if plural := strings.HasSuffix(unit, "s"); plural != (n != 1) {
		return 0, fmt.Errorf("The unit must be singular for a value of 1 and plural otherwise.")
	}
	return time.Duration(n) * d, nil
}

// Next returns the first time the schedule fires strictly after t, or the
// zero time if it never does again.
//
// A cron expression is evaluated on the wall clock of its time zone, as
// EventBridge Scheduler does across daylight saving changes: a time that
// does not exist (the hour skipped in spring) is skipped, and a time that
// exists twice (the hour repeated in autumn) fires once, the first time.
func (e *Expr) Next(t time.Time) time.Time {
	switch e.Kind {
	case KindAt:
		if e.at.After(t) {
			return e.at
		}
		return time.Time{}
	case KindCron:
		return e.nextCron(t)
	}
	return time.Time{} // rates need an anchor: RateNext
}

// RateNext returns the first tick of a rate expression strictly after t,
// counting from anchor: anchor, anchor+period, anchor+2*period, ...
func (e *Expr) RateNext(anchor, t time.Time) time.Time {
	if e.Kind != KindRate {
		return e.Next(t)
	}
	if t.Before(anchor) {
		return anchor
	}
	k := t.Sub(anchor)/e.period + 1
	return anchor.Add(k * e.period)
}

// Period is a rate expression's interval.
func (e *Expr) Period() time.Duration { return e.period }

// wall is the wall-clock reading of t in loc, as a UTC instant: cron
// arithmetic on it is free of daylight saving.
func wall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

func (e *Expr) nextCron(t time.Time) time.Time {
	w := wall(t, e.Loc)
	for range 1000 { // each round skips one nonexistent or repeated reading
		w = e.cron.Next(w)
		if w.IsZero() {
			return w
		}
		real := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, e.Loc)
		if !wall(real, e.Loc).Equal(w) {
			continue // this reading is in the hour daylight saving skips
		}
		if !real.After(t) {
			continue // this reading already passed: the hour repeated in autumn
		}
		return real
	}
	return time.Time{}
}

// A cron field: its name for errors, its range, and the names and special
// characters it accepts.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
	question bool     // accepts ?
	dom      bool     // accepts L, LW, nW
	dow      bool     // accepts L, nL, n#k
}

var cronFields = [6]cronField{
	{name: "minutes", min: 0, max: 59},
	{name: "hours", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31, question: true, dom: true},
	{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day-of-week", min: 1, max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, question: true, dow: true},
	// AWS accepts years to 2199; the evaluator stops at 2099, so moat
	// refuses what it could not honour rather than never firing.
	{name: "year", min: 1970, max: 2099},
}

// translateCron checks an AWS six-field cron body against AWS's rules and
// returns the same schedule in the evaluator's syntax (day-of-week 0-6 from
// Sunday instead of AWS's 1-7).
func translateCron(body string) (string, error) {
	fields := strings.Fields(body)
	if len(fields) != 6 {
		return "", fmt.Errorf("A cron expression has six fields: minutes hours day-of-month month day-of-week year; got %d.", len(fields))
	}
	if (fields[2] == "?") == (fields[4] == "?") {
		return "", fmt.Errorf("Exactly one of day-of-month and day-of-week must be ?.")
	}
	out := make([]string, 6)
	for i, f := range fields {
		t, err := cronFields[i].translate(f)
		if err != nil {
			return "", fmt.Errorf("Field %s (%q): %s.", cronFields[i].name, f, err)
		}
		out[i] = t
	}
	return strings.Join(out, " "), nil
}

func (c *cronField) translate(f string) (string, error) {
	if f == "?" {
		if !c.question {
			return "", fmt.Errorf("? is allowed only in day-of-month and day-of-week")
		}
		return "*", nil
	}
	items := strings.Split(f, ",")
	out := make([]string, len(items))
	for i, it := range items {
		t, err := c.item(it)
		if err != nil {
			return "", err
		}
		out[i] = t
	}
	if len(items) > 1 {
		for _, it := range items {
			if it == "*" || ((c.dom || c.dow) && strings.ContainsAny(it, "LW#")) {
				return "", fmt.Errorf("%q cannot be part of a list", it)
			}
		}
	}
	return strings.Join(out, ","), nil
}

// item translates one comma-separated item of a field.
func (c *cronField) item(it string) (string, error) {
	switch {
	case it == "":
		return "", fmt.Errorf("empty list item")
	case it == "*":
		return "*", nil
	case it == "L" && c.dom:
		return "L", nil
	case it == "LW" && c.dom:
		return "LW", nil
	case it == "L" && c.dow:
		return "6", nil // the last day of the week: Saturday
	}
	if c.dom && strings.HasSuffix(it, "W") {
		n, err := c.value(strings.TrimSuffix(it, "W"))
		if err != nil {
			return "", err
		}
		return strconv.Itoa(n) + "W", nil
	}
	if c.dow && strings.HasSuffix(it, "L") {
		n, err := c.value(strings.TrimSuffix(it, "L"))
		if err != nil {
			return "", err
		}
		return strconv.Itoa(n-1) + "L", nil
	}
	if c.dow && strings.Contains(it, "#") {
		day, nth, _ := strings.Cut(it, "#")
		n, err := c.value(day)
		if err != nil {
			return "", err
		}
		k, err := strconv.Atoi(nth)
		if err != nil || k < 1 || k > 5 {
			return "", fmt.Errorf("the week after # must be 1 to 5")
		}
		return strconv.Itoa(n-1) + "#" + strconv.Itoa(k), nil
	}
	rng, step, hasStep := strings.Cut(it, "/")
	suffix := ""
	if hasStep {
		s, err := strconv.Atoi(step)
		if err != nil || s < 1 || s > c.max-c.min+1 {
			return "", fmt.Errorf("the increment after / must be 1 to %d", c.max-c.min+1)
		}
		suffix = "/" + strconv.Itoa(s)
	}
	if rng == "*" {
		if !hasStep {
			return "*", nil
		}
		return c.emit(c.min) + "-" + c.emit(c.max) + suffix, nil
	}
	lo, hi, isRange := strings.Cut(rng, "-")
	a, err := c.value(lo)
	if err != nil {
		return "", err
	}
	if !isRange {
		if hasStep {
			return c.emit(a) + "-" + c.emit(c.max) + suffix, nil
		}
		return c.emit(a), nil
	}
	b, err := c.value(hi)
	if err != nil {
		return "", err
	}
	if b < a {
		return "", fmt.Errorf("range %s runs backwards", rng)
	}
	return c.emit(a) + "-" + c.emit(b) + suffix, nil
}

// value parses a number or name of the field and checks its range.
func (c *cronField) value(s string) (int, error) {
	for i, n := range c.names {
		if strings.EqualFold(s, n) {
			return c.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q is not a value of this field", s)
	}
	if n < c.min || n > c.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, c.min, c.max)
	}
	return n, nil
}

// emit writes a checked value in the evaluator's numbering.
func (c *cronField) emit(n int) string {
	if c.dow {
		n-- // AWS 1-7 from Sunday; the evaluator 0-6
	}
	return strconv.Itoa(n)
}

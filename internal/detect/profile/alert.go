package profile

import (
	"moat.dev/moat/internal/detect"
)

// deviationSeverity ranks what a deviation of each category means:
// running something new or reaching somewhere new is how compromises
// act; writes change things; reads only look.
var deviationSeverity = map[string]detect.Severity{
	CategoryExec:    detect.SeverityHigh,
	CategoryConnect: detect.SeverityHigh,
	CategoryWrite:   detect.SeverityMedium,
	CategoryRead:    detect.SeverityLow,
}

// driftSeverity: drift is a change between versions, usually a deploy's
// intent, so it informs rather than warns.
var driftSeverity = map[string]detect.Severity{
	CategoryExec:    detect.SeverityLow,
	CategoryConnect: detect.SeverityLow,
	CategoryWrite:   detect.SeverityInfo,
	CategoryRead:    detect.SeverityInfo,
}

// nouns and verbs word summaries per category.
var (
	nouns = map[string]string{CategoryExec: "exec of", CategoryRead: "read of", CategoryWrite: "write of", CategoryConnect: "connect to"}
	verbs = map[string]string{CategoryExec: "spawns", CategoryRead: "reads", CategoryWrite: "writes", CategoryConnect: "connects to"}
)

// DeviationAlert is the alert for an event's action outside a learned or
// approved profile: Source "profile", Rule "profile.CATEGORY", summary
// "exec of /bin/sh is not in the profile of fn:3".
func DeviationAlert(ev *detect.Event, d Deviation, p *Profile) detect.Alert {
	return alert(ev, p, detect.SourceProfile, "profile."+d.Category, deviationSeverity[d.Category],
		nouns[d.Category]+" "+displayed(d)+" is not in the profile of "+p.Function+":"+p.Version+failure(ev))
}

// DriftAlert is the alert for what a version does that the version it
// inherited its profile from never did: Source "drift", Rule
// "drift.CATEGORY", summary "version 7 spawns /bin/sh, version 6 never
// did".
func DriftAlert(ev *detect.Event, d Deviation, p *Profile) detect.Alert {
	return alert(ev, p, detect.SourceDrift, "drift."+d.Category, driftSeverity[d.Category],
		"version "+p.Version+" "+verbs[d.Category]+" "+displayed(d)+", version "+p.InheritedFrom+" never did"+failure(ev))
}

func alert(ev *detect.Event, p *Profile, source, rule string, sev detect.Severity, summary string) detect.Alert {
	a := detect.Alert{
		Time:      ev.Time,
		Source:    source,
		Rule:      rule,
		Severity:  sev,
		Summary:   summary,
		Function:  ev.Function,
		Version:   ev.Version,
		Instance:  ev.Instance,
		RequestID: ev.RequestID,
		Evidence:  []detect.Event{*ev},
	}
	if a.Function == "" {
		a.Function, a.Version = p.Function, p.Version
	}
	if a.Severity == "" {
		a.Severity = detect.SeverityMedium
	}
	return a
}

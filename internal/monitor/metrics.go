package monitor

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"moat.dev/moat/internal/detect"
)

// metrics are the monitor's Prometheus counters. Totals the monitor
// already keeps are exported as counter functions rather than counted
// twice.
type metrics struct {
	reg      *prometheus.Registry
	events   *prometheus.CounterVec
	alerts   *prometheus.CounterVec
	mu       sync.Mutex
	eventsBy map[string]prometheus.Counter
}

func newMetrics(m *Monitor) *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_sensor_events_total", Help: "Sensor events of function instances, by kind.",
		}, []string{"kind"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_alerts_total", Help: "Alerts raised, by function, rule and severity.",
		}, []string{"function", "rule", "severity"}),
		eventsBy: map[string]prometheus.Counter{},
	}
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	x.reg.MustRegister(
		x.events, x.alerts,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "moat_monitoring_enabled", Help: "1 when the runtime sensor is loaded and instances are monitored, 0 when monitoring is off.",
		}, func() float64 {
			if m.src != nil {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "moat_monitor_watched_instances", Help: "Instances whose cgroup the sensor watches.",
		}, func() float64 { return float64(m.counters().WatchedInstances) }),
		counter("moat_sensor_dropped_events_total", "Events the kernel dropped because the ring buffer was full.", func() uint64 {
			if m.src == nil {
				return 0
			}
			return m.src.Dropped()
		}),
		counter("moat_monitor_unknown_cgroup_events_total", "Events from a cgroup the monitor could not attribute.", m.unknown.Load),
		counter("moat_monitor_records_written_total", "Forensic records stored.", m.records.Load),
		counter("moat_monitor_record_errors_total", "Forensic records that could not be stored.", m.recordErrs.Load),
		counter("moat_monitor_quiet_invocations_total", "Invocations that did nothing the sensor reports (their record is kept in memory only).", m.quietCount.Load),
		counter("moat_monitor_events_omitted_total", "Events left out of records because a record reached its bound.", m.omitted.Load),
		counter("moat_monitor_alert_errors_total", "Alerts that could not be stored.", m.alertErrs.Load),
		counter("moat_monitor_profile_errors_total", "Profile loads or stores that failed.", m.opts.Profiles.Errors),
		counter("moat_rule_eval_errors_total", "User rule evaluations that failed (the rule did not match).", func() uint64 {
			if e := m.engine.Load(); e != nil {
				return e.EvalErrors()
			}
			return 0
		}),
	)
	return x
}

func (x *metrics) event(kind string) {
	x.mu.Lock()
	c := x.eventsBy[kind]
	if c == nil {
		c = x.events.WithLabelValues(kind)
		x.eventsBy[kind] = c
	}
	x.mu.Unlock()
	c.Inc()
}

func (x *metrics) alert(a *detect.Alert) {
	x.alerts.WithLabelValues(a.Function, a.Rule, string(a.Severity)).Inc()
}

// Registry is the registry the monitor's metrics are in; the node adds
// its own collectors to it.
func (m *Monitor) Registry() *prometheus.Registry { return m.metrics.reg }

// MetricsHandler serves the registry in the Prometheus text format.
func (m *Monitor) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{})
}

package tasks

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the task metrics of a worker:
//
//	packflow_tasks_processed_total{type, outcome}   counter; outcome ok|error|panic
//	packflow_task_duration_seconds{type}            histogram
//	packflow_tasks_in_flight{type}                  gauge
type Metrics struct {
	processed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  *prometheus.GaugeVec
}

// NewMetrics creates the task metrics and registers them on reg (nil: not
// registered, still counted). Metrics already registered on reg by an
// earlier call are reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "packflow", Name: "tasks_processed_total",
			Help: "Tasks run by this worker, by type and outcome (ok, error, panic).",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "packflow", Name: "task_duration_seconds",
			Help:    "Time spent in task handlers, by type.",
			Buckets: []float64{.001, .005, .025, .1, .5, 2.5, 10, 60, 300, 1800},
		}, []string{"type"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "packflow", Name: "tasks_in_flight",
			Help: "Tasks running on this worker now, by type.",
		}, []string{"type"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.processed, err = register(reg, m.processed); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(reg, m.inFlight); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("tasks: register metrics: %w", err)
}

// typeMetrics are one type's metric children, looked up once.
type typeMetrics struct {
	inFlight prometheus.Gauge
	duration prometheus.Observer
	outcome  [3]prometheus.Counter
}

func (m *Metrics) forType(typ string) typeMetrics {
	if m == nil {
		// Unregistered: counts nobody reads.
		return typeMetrics{inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tasks_in_flight"})}
	}
	tm := typeMetrics{
		inFlight: m.inFlight.WithLabelValues(typ),
		duration: m.duration.WithLabelValues(typ),
	}
	for _, o := range []Outcome{OutcomeOK, OutcomeError, OutcomePanic} {
		tm.outcome[o] = m.processed.WithLabelValues(typ, o.String())
	}
	return tm
}

func (tm typeMetrics) observe(o Outcome, d time.Duration) {
	if tm.duration == nil {
		return
	}
	tm.duration.Observe(d.Seconds())
	tm.outcome[o].Inc()
}

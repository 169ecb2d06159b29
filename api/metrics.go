package api

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// httpMetrics counts and times requests by method, route and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packflow_http_requests_total",
			Help: "HTTP requests answered, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "packflow_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "code"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records one answered request. route is the route pattern, never
// the raw path, to keep the label set small.
func (m *httpMetrics) observe(method, route string, status int, took time.Duration) {
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(method, route, code).Inc()
	m.duration.WithLabelValues(method, route, code).Observe(took.Seconds())
}

// serveMetrics answers GET /metrics from the server's registry.
func (s *Server) serveMetrics() echo.HandlerFunc {
	h := promhttp.HandlerFor(s.opts.Metrics, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
	return echo.WrapHandler(h)
}

// queueCollector reports asynq queue figures, read from Redis when
// Prometheus scrapes (nothing runs between scrapes).
type queueCollector struct {
	insp   *asynq.Inspector
	queues []string
	log    *slog.Logger

	up, tasks, latency, paused, processed, failed *prometheus.Desc
}

func newQueueCollector(rdb redis.UniversalClient, queues []string, log *slog.Logger) *queueCollector {
	return &queueCollector{
		insp:   asynq.NewInspectorFromRedisClient(rdb),
		queues: queues,
		log:    log,
		up: prometheus.NewDesc("packflow_queue_inspect_up",
			"1 when the queue figures could be read from Redis at this scrape, else 0.", nil, nil),
		tasks: prometheus.NewDesc("packflow_queue_tasks",
			"Tasks in a queue, by state.", []string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("packflow_queue_latency_seconds",
			"Age of the oldest pending task of a queue.", []string{"queue"}, nil),
		paused: prometheus.NewDesc("packflow_queue_paused",
			"1 when a queue is paused.", []string{"queue"}, nil),
		processed: prometheus.NewDesc("packflow_queue_processed_total",
			"Tasks processed from a queue, succeeded or failed.", []string{"queue"}, nil),
		failed: prometheus.NewDesc("packflow_queue_failed_total",
			"Tasks of a queue whose processing failed.", []string{"queue"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{q.up, q.tasks, q.latency, q.paused, q.processed, q.failed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	queues := q.queues
	if len(queues) == 0 {
		var err error
		if queues, err = q.insp.Queues(); err != nil {
			q.log.Warn("metrics: list queues", "err", err)
			ch <- prometheus.MustNewConstMetric(q.up, prometheus.GaugeValue, 0)
			return
		}
	}
	up := 1.0
	for _, name := range queues {
		info, err := q.insp.GetQueueInfo(name)
		if err != nil {
			// A configured queue nothing was ever enqueued to is not an
			// outage: asynq simply does not know it yet.
			if q.queueUnknown(name) {
				continue
			}
			q.log.Warn("metrics: read queue", "queue", name, "err", err)
			up = 0
			continue
		}
		gauge := func(state string, n int) {
			ch <- prometheus.MustNewConstMetric(q.tasks, prometheus.GaugeValue, float64(n), name, state)
		}
		gauge("pending", info.Pending)
		gauge("active", info.Active)
		gauge("scheduled", info.Scheduled)
		gauge("retry", info.Retry)
		gauge("archived", info.Archived)
		gauge("completed", info.Completed)
		gauge("aggregating", info.Aggregating)
		ch <- prometheus.MustNewConstMetric(q.latency, prometheus.GaugeValue, info.Latency.Seconds(), name)
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(q.paused, prometheus.GaugeValue, paused, name)
		ch <- prometheus.MustNewConstMetric(q.processed, prometheus.CounterValue, float64(info.ProcessedTotal), name)
		ch <- prometheus.MustNewConstMetric(q.failed, prometheus.CounterValue, float64(info.FailedTotal), name)
	}
	ch <- prometheus.MustNewConstMetric(q.up, prometheus.GaugeValue, up)
}

func (q *queueCollector) queueUnknown(name string) bool {
	known, err := q.insp.Queues()
	if err != nil {
		return false
	}
	for _, k := range known {
		if k == name {
			return false
		}
	}
	return true
}

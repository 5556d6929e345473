// Package metrics exposes arca's Prometheus metrics, all named arca_*. Their
// labels never carry repository or user names, which would make one series
// per repository; per-repository figures belong in the REST API.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BlobCounter reports how many blobs the store holds and their total size.
type BlobCounter func(ctx context.Context) (count, bytes int64, err error)

// Metrics holds the collectors and their registry.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	proxy    *prometheus.CounterVec
}

// New registers arca's metrics, the Go runtime's and the process's, and the
// blob store gauges read through count (at most every 30 seconds).
func New(count BlobCounter) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arca_http_requests_total",
			Help: "HTTP requests answered, by format, method and status class.",
		}, []string{"format", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arca_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by format and method.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"format", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arca_http_request_bytes_total",
			Help: "Bytes of request bodies read, by format.",
		}, []string{"format"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arca_http_response_bytes_total",
			Help: "Bytes of response bodies written, by format.",
		}, []string{"format"}),
	}
	m.proxy = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arca_proxy_requests_total",
		Help: "Items asked of proxy repositories' caches, by format and result (hit, miss, error).",
	}, []string{"format", "result"})
	blobs := &blobGauges{count: count}
	m.registry.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.proxy, blobs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Observe records one answered request. format is "" outside repositories.
func (m *Metrics) Observe(format, method string, status int, in, out int64, d time.Duration) {
	if m == nil {
		return
	}
	if format == "" {
		format = "none"
	}
	method = knownMethod(method)
	m.requests.WithLabelValues(format, method, strconv.Itoa(status/100)+"xx").Inc()
	m.duration.WithLabelValues(format, method).Observe(d.Seconds())
	m.bytesIn.WithLabelValues(format).Add(float64(in))
	m.bytesOut.WithLabelValues(format).Add(float64(out))
}

// ObserveProxy records one result of a proxy cache: "hit", "miss" or
// "error".
func (m *Metrics) ObserveProxy(format, result string) {
	if m == nil {
		return
	}
	m.proxy.WithLabelValues(format, result).Inc()
}

// knownMethod bounds the method label to the methods clients use.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// blobGauges reads the blob totals on scrape, from a copy at most 30 seconds
// old, since counting a large store is not free.
type blobGauges struct {
	count BlobCounter

	mu            sync.Mutex
	read          time.Time
	blobs, bytes  int64
	lastReadError error
}

var (
	blobCountDesc = prometheus.NewDesc("arca_blob_store_blobs",
		"Blobs recorded in the blob store.", nil, nil)
	blobBytesDesc = prometheus.NewDesc("arca_blob_store_bytes",
		"Total size of the blobs recorded in the blob store.", nil, nil)
)

func (g *blobGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- blobCountDesc
	ch <- blobBytesDesc
}

func (g *blobGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.read) > 30*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		blobs, bytes, err := g.count(ctx)
		cancel()
		g.lastReadError = err
		if err == nil {
			g.blobs, g.bytes, g.read = blobs, bytes, time.Now()
		}
	}
	if g.lastReadError != nil && g.read.IsZero() {
		ch <- prometheus.NewInvalidMetric(blobCountDesc, g.lastReadError)
		return
	}
	ch <- prometheus.MustNewConstMetric(blobCountDesc, prometheus.GaugeValue, float64(g.blobs))
	ch <- prometheus.MustNewConstMetric(blobBytesDesc, prometheus.GaugeValue, float64(g.bytes))
}

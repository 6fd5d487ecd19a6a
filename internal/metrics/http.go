package metrics

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests by route pattern, method and status code and
// observes their latency by route pattern and method.
//
// The request path never becomes a label: the route is the pattern the
// router matched ("/api/v1/customers/{id}"), or "unmatched". Methods come
// from a fixed set. So the series are bounded by the route table.
//
// ObserveRequest is on every request's path, so it resolves its series
// through a copy-on-write cache instead of the vectors' label hashing: a
// map read and a short slice scan, no lock and no allocation once a
// route, method and status have been seen.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu     sync.Mutex                        // serializes cache misses
	routes atomic.Pointer[map[string]*route] // by r.Pattern; replaced, never mutated
}

// route holds the series of one pattern, per request method.
type route struct {
	label   string // the pattern's path: "/api/v1/customers/{id}"
	methods [len(methodLabels)]atomic.Pointer[series]
}

// series is one route and method: its latency histogram and a counter per
// status code seen.
type series struct {
	duration prometheus.Observer
	codes    atomic.Pointer[[]codeCounter] // replaced, never mutated
}

type codeCounter struct {
	code    int
	counter prometheus.Counter
}

// methodLabels is the fixed set of method label values; anything else is
// "OTHER".
var methodLabels = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	case "CONNECT":
		return 7
	case "TRACE":
		return 8
	}
	return 9
}

// Unmatched is the route label of requests no pattern matched.
const Unmatched = "unmatched"

func newHTTPMetrics() *httpMetrics {
	h := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_http_requests_total",
			Help: "HTTP requests by route pattern (never the raw path), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "custos_http_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to the handler's return, by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
	}
	empty := map[string]*route{}
	h.routes.Store(&empty)
	return h
}

// ObserveRequest records one served request: pattern is the router's
// matched pattern (http.Request.Pattern, "" when none matched), method the
// request method, code the status written (0: nothing written, which
// net/http sends as 200) and d the time it took.
func (m *Metrics) ObserveRequest(pattern, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if code == 0 {
		code = 200
	}
	h := m.http
	rt := (*h.routes.Load())[pattern]
	if rt == nil {
		rt = h.route(pattern)
	}
	mi := methodIndex(method)
	s := rt.methods[mi].Load()
	if s == nil {
		s = h.series(rt, mi)
	}
	s.duration.Observe(d.Seconds())
	for _, c := range *s.codes.Load() {
		if c.code == code {
			c.counter.Inc()
			return
		}
	}
	h.counter(rt, mi, s, code).Inc()
}

// route returns the cache entry of pattern, adding it.
func (h *httpMetrics) route(pattern string) *route {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.routes.Load()
	if rt := old[pattern]; rt != nil {
		return rt
	}
	rt := &route{label: routeLabel(pattern)}
	next := make(map[string]*route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[pattern] = rt
	h.routes.Store(&next)
	return rt
}

func (h *httpMetrics) series(rt *route, mi int) *series {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := rt.methods[mi].Load(); s != nil {
		return s
	}
	s := &series{duration: h.duration.WithLabelValues(rt.label, methodLabels[mi])}
	s.codes.Store(&[]codeCounter{})
	rt.methods[mi].Store(s)
	return s
}

func (h *httpMetrics) counter(rt *route, mi int, s *series, code int) prometheus.Counter {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *s.codes.Load()
	for _, c := range old {
		if c.code == code {
			return c.counter
		}
	}
	c := h.requests.WithLabelValues(rt.label, methodLabels[mi], strconv.Itoa(code))
	next := append(old[:len(old):len(old)], codeCounter{code: code, counter: c})
	s.codes.Store(&next)
	return c
}

// routeLabel is the path of a ServeMux pattern ("[METHOD ][HOST]/PATH"):
// the method has its own label and Custos's patterns name no host.
func routeLabel(pattern string) string {
	if pattern == "" {
		return Unmatched
	}
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:] // a host pattern: keep the path
	}
	return pattern
}

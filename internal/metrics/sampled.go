package metrics

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Sample is one object's share of a Sampled metric.
type Sample struct {
	// Labels are the metric's label values, in its labels' order.
	Labels []string
	Value  float64
}

// Sampled is a gauge computed at each scrape from a source (the manager's
// cache), summed by label values: a cost that grows by the second needs no
// status write to be current.
type Sampled struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	source func() []Sample
}

// SetSource sets what the gauge is computed from; nil reports nothing.
func (s *Sampled) SetSource(source func() []Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.source = source
}

// Describe implements prometheus.Collector.
func (s *Sampled) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

// Collect implements prometheus.Collector.
func (s *Sampled) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	source := s.source
	s.mu.Unlock()
	if source == nil {
		return
	}
	sums := map[string]float64{}
	for _, sm := range source() {
		sums[strings.Join(sm.Labels, "\x00")] += sm.Value
	}
	for key, v := range sums {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, v, strings.Split(key, "\x00")...)
	}
}

func sampled(name, help string, labels ...string) *Sampled {
	return define(&Sampled{desc: prometheus.NewDesc(name, help, labels, nil)}, "gauge", name, help, labels)
}

package managerchild

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// requests counts the manager's API server requests (watches excepted) by
// "VERB resource[/subresource]", the time spent waiting for their answers,
// and the writes of each object.
type requests struct {
	mu       sync.Mutex
	counts   map[string]int
	wait     map[string]time.Duration
	byObject map[string]map[string]int // "resource/name" → "VERB resource[/sub]" → n
	// trace names objects whose writes are printed to standard error, with their bodies.
	trace []string
}

func (c *requests) traceRequest(r *http.Request) {
	var body []byte
	if r.GetBody != nil {
		if rc, err := r.GetBody(); err == nil {
			body, _ = io.ReadAll(rc)
			_ = rc.Close()
		}
	}
	fmt.Fprintf(os.Stderr, "TRACE %s %s %s %s\n", time.Now().Format("15:04:05.000"), r.Method, r.URL.Path, body)
}

func (c *requests) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Query().Get("watch") == "true" {
			return rt.RoundTrip(r)
		}
		resource, object := resourceOf(r.URL.Path)
		if _, name, _ := strings.Cut(object, "/"); name != "" && r.Method != http.MethodGet && slices.Contains(c.trace, name) {
			c.traceRequest(r)
		}
		began := time.Now()
		resp, err := rt.RoundTrip(r)
		key := r.Method + " " + resource
		c.mu.Lock()
		defer c.mu.Unlock()
		c.counts[key]++
		c.wait[key] += time.Since(began)
		if r.Method != http.MethodGet && object != "" {
			if c.byObject[object] == nil {
				c.byObject[object] = map[string]int{}
			}
			c.byObject[object][key]++
		}
		return resp, err
	})
}

func (c *requests) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts, c.wait, c.byObject = map[string]int{}, map[string]time.Duration{}, map[string]map[string]int{}
}

// Writes is what the manager wrote to the API server.
type Writes struct {
	// Requests and WaitSeconds are by "VERB resource[/subresource]", GETs and LISTs included.
	Requests    map[string]int
	WaitSeconds map[string]float64
	// PerObject are the writes of each object of a kind, by
	// "VERB resource[/subresource]": the median and the largest.
	PerObject map[string]PerObject
}

// PerObject are the writes of the objects of one kind.
type PerObject struct {
	Objects           int
	Median, Max       map[string]int
	MedianAll, MaxAll int
}

func (c *requests) report() Writes {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := Writes{Requests: map[string]int{}, WaitSeconds: map[string]float64{}, PerObject: map[string]PerObject{}}
	for k, n := range c.counts {
		w.Requests[k] = n
		w.WaitSeconds[k] = c.wait[k].Seconds()
	}
	byKind := map[string][]map[string]int{}
	for object, counts := range c.byObject {
		kind, _, _ := strings.Cut(object, "/")
		byKind[kind] = append(byKind[kind], counts)
	}
	for kind, objs := range byKind {
		keys := map[string]bool{}
		for _, o := range objs {
			for k := range o {
				keys[k] = true
			}
		}
		p := PerObject{Objects: len(objs), Median: map[string]int{}, Max: map[string]int{}}
		for k := range keys {
			p.Median[k], p.Max[k] = medianMax(objs, func(o map[string]int) int { return o[k] })
		}
		p.MedianAll, p.MaxAll = medianMax(objs, func(o map[string]int) int {
			n := 0
			for _, v := range o {
				n += v
			}
			return n
		})
		w.PerObject[kind] = p
	}
	return w
}

func medianMax(objs []map[string]int, f func(map[string]int) int) (median, largest int) {
	ns := make([]int, len(objs))
	for i, o := range objs {
		ns[i] = f(o)
	}
	slices.Sort(ns)
	return ns[len(ns)/2], ns[len(ns)-1]
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// resourceOf turns /apis/g/v/namespaces/ns/kind/name/sub into "kind/sub"
// and the object "kind/name" ("" for a collection).
func resourceOf(path string) (resource, object string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			rest := parts[i+2:]
			switch len(rest) {
			case 1:
				return rest[0], ""
			case 2:
				return rest[0], rest[0] + "/" + rest[1]
			default:
				return rest[0] + "/" + rest[2], rest[0] + "/" + rest[1]
			}
		}
	}
	if len(parts) > 0 {
		return parts[len(parts)-1], ""
	}
	return path, ""
}

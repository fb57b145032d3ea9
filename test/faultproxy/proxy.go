// Package faultproxy is an HTTP reverse proxy in front of moto that counts
// AWS calls, injects faults, and fills gaps where moto is not real EC2:
// in-between states, ClientToken idempotency and spot prices.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Proxy forwards AWS API calls to moto and alters them on the way.
type Proxy struct {
	target   *url.URL
	listener net.Listener
	server   *http.Server
	client   *http.Client

	mu         sync.Mutex
	counts     map[string]int
	durations  map[string]time.Duration
	onCall     func(action string, form url.Values)
	rules      []*Injection
	rng        *rand.Rand
	tokens     map[string]*tokenEntry
	spotPrices map[spotKey]string
	states     states
	init       initialization
}

// call is one incoming AWS API request.
type call struct {
	service string // "ec2" for the query protocol, else the X-Amz-Target prefix ("AmazonSQS")
	action  string
	json    bool
	form    url.Values // query parameters, or the top-level scalars of a JSON body
	account string     // x-moto-account-id
}

// response is an HTTP answer held in memory.
type response struct {
	status int
	header http.Header
	body   []byte
}

const defaultSeed = 1

// New starts a proxy on 127.0.0.1 in front of target, a loopback moto URL.
func New(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("faultproxy: target %q is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		target:     u,
		listener:   ln,
		client:     &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32}},
		counts:     map[string]int{},
		rng:        newRand(defaultSeed),
		tokens:     map[string]*tokenEntry{},
		spotPrices: map[spotKey]string{},
		states:     newStates(),
		init:       newInitialization(),
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.server.Serve(ln) }()
	return p, nil
}

// URL is the proxy's base URL, to use as the AWS endpoint.
func (p *Proxy) URL() string { return "http://" + p.listener.Addr().String() }

// Close stops the proxy.
func (p *Proxy) Close() error {
	err := p.server.Close()
	p.client.CloseIdleConnections()
	return err
}

// Count is how many calls of action arrived (faulted ones included).
func (p *Proxy) Count(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[action]
}

// Counts returns a copy of the calls per action.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// Total is how many calls arrived.
func (p *Proxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

// ResetCounts sets every count to zero.
func (p *Proxy) ResetCounts() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.counts)
}

// OnCall sets a hook run for every call as it arrives, before any fault;
// nil removes it. The hook must not block for long.
func (p *Proxy) OnCall(hook func(action string, form url.Values)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onCall = hook
}

// ServeHTTP counts, faults, forwards and rewrites one AWS call.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := identify(r, body)
	p.record(c)
	if f, ok := p.pickFault(c); ok {
		if !sleep(r.Context(), f.Delay) {
			return
		}
		if f.Status != 0 {
			writeResponse(w, errorResponse(c, f.Status, f.code(c), f.Message))
			return
		}
	}
	began := time.Now()
	defer func() { p.spent(c.action, time.Since(began)) }()
	forward := func() (*response, error) { return p.forward(r, body) }
	switch {
	case c.service == "ec2" && c.action == "DescribeVolumeStatus":
		forward = func() (*response, error) { return p.describeVolumeStatus(r, c) }
	case c.service == "ec2" && c.action == "RunInstances":
		p.noteRestores(c.form)
	}
	var resp *response
	if token := c.form.Get("ClientToken"); token != "" && c.service == "ec2" && idempotentActions[c.action] {
		resp, err = p.idempotent(c, token, forward)
	} else {
		resp, err = forward()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if resp.status == http.StatusOK && c.service == "ec2" {
		resp = &response{status: resp.status, header: resp.header, body: p.rewrite(c, resp.body)}
	}
	writeResponse(w, resp)
}

func (p *Proxy) spent(action string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.durations == nil {
		p.durations = map[string]time.Duration{}
	}
	p.durations[action] += d
}

// Durations returns the time spent answering each action, faults included.
func (p *Proxy) Durations() map[string]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.durations)
}

func (p *Proxy) record(c *call) {
	if c.action == "" {
		return
	}
	p.mu.Lock()
	p.counts[c.action]++
	hook := p.onCall
	p.mu.Unlock()
	if hook != nil {
		hook(c.action, c.form)
	}
}

// rewrite fills in what moto skips in a successful EC2 response.
func (p *Proxy) rewrite(c *call, body []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch c.action {
	case "DescribeInstances":
		return p.states.rewriteInstances(body)
	case "CreateVolume", "DescribeVolumes":
		p.init.noteVolumes(body, time.Now())
		return p.states.rewriteVolumes(c.action, body)
	case "CreateSnapshot", "CopySnapshot", "DescribeSnapshots":
		return p.states.rewriteSnapshots(c.action, body)
	case "DescribeSpotPriceHistory":
		return rewriteSpotPrices(p.spotPrices, c.form, body, time.Now())
	}
	return body
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"}

// forward sends the request to moto unchanged (headers included) and reads the answer.
func (p *Proxy) forward(r *http.Request, body []byte) (*response, error) {
	u := *p.target
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	for _, h := range append(hopHeaders, "Accept-Encoding") {
		out.Header.Del(h)
	}
	out.Host = r.Host
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	header := resp.Header.Clone()
	for _, h := range hopHeaders {
		header.Del(h)
	}
	return &response{status: resp.StatusCode, header: header, body: data}, nil
}

func writeResponse(w http.ResponseWriter, resp *response) {
	maps.Copy(w.Header(), resp.header)
	w.Header().Set("Content-Length", fmt.Sprint(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

var signingService = regexp.MustCompile(`Credential=[^/]*/[^/]*/[^/]*/([^/]+)/`)

// identify finds the service, action and parameters of a request.
func identify(r *http.Request, body []byte) *call {
	c := &call{account: r.Header.Get("x-moto-account-id")}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		c.service, c.action, _ = strings.Cut(target, ".")
		c.json = true
		c.form = jsonScalars(body)
		return c
	}
	c.form = r.URL.Query()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		if form, err := url.ParseQuery(string(body)); err == nil {
			for k, vs := range form {
				c.form[k] = append(c.form[k], vs...)
			}
		}
	}
	c.action = c.form.Get("Action")
	c.service = "ec2"
	if m := signingService.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		c.service = m[1]
	}
	return c
}

// jsonScalars returns the top-level strings, numbers and booleans of a JSON object.
func jsonScalars(body []byte) url.Values {
	form := url.Values{}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return form
	}
	for k, raw := range obj {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			form.Set(k, s)
		} else if t := strings.TrimSpace(string(raw)); t != "" && t[0] != '{' && t[0] != '[' && t != "null" {
			form.Set(k, t)
		}
	}
	return form
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

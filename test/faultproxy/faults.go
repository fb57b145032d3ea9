package faultproxy

import (
	cryptorand "crypto/rand"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Fault is what an injected rule does to a call: wait Delay, then answer
// with an AWS error when Status is set, or else forward the call.
type Fault struct {
	Status   int           // HTTP status of the error; 0 forwards the call
	Code     string        // AWS error code
	Message  string        // AWS error message
	Delay    time.Duration // wait before answering or forwarding
	notFound bool          // Code is the Invalid<X>.NotFound code of the call
}

const injected = " (injected by faultproxy)"

// Throttle is EC2's RequestLimitExceeded (HTTP 503); the SDK retries it.
func Throttle() Fault {
	return Fault{Status: http.StatusServiceUnavailable, Code: "RequestLimitExceeded", Message: "Request limit exceeded." + injected}
}

// ServerError is an InternalError (HTTP 500).
func ServerError() Fault {
	return Fault{Status: http.StatusInternalServerError, Code: "InternalError", Message: "An internal error has occurred." + injected}
}

// InsufficientCapacity is InsufficientInstanceCapacity (HTTP 400).
func InsufficientCapacity() Fault {
	return Fault{Status: http.StatusBadRequest, Code: "InsufficientInstanceCapacity",
		Message: "We currently do not have sufficient capacity in the Availability Zone you requested." + injected}
}

// NotFoundYet is the eventual-consistency NotFound of the call's resource,
// such as InvalidInstanceID.NotFound for DescribeInstances (HTTP 400).
func NotFoundYet() Fault {
	return Fault{Status: http.StatusBadRequest, Message: "The resource does not exist yet." + injected, notFound: true}
}

// Latency delays the call by d and then forwards it.
func Latency(d time.Duration) Fault { return Fault{Delay: d} }

// APIError is any AWS error.
func APIError(status int, code, message string) Fault {
	return Fault{Status: status, Code: code, Message: message + injected}
}

func (f Fault) code(c *call) string {
	if f.notFound {
		return notFoundCode(c)
	}
	return f.Code
}

// Rule says which calls get a fault.
type Rule struct {
	Action      string                // e.g. "RunInstances" or "ReceiveMessage"; "" matches any EC2 action
	Match       func(url.Values) bool // optional condition on the call's parameters
	Times       int                   // fire this many times, then stop; 0 fires forever
	Probability float64               // chance to fire on a matching call, drawn from the seeded source; 0 means 1
	Fault       Fault
}

// Injection is an active rule.
type Injection struct {
	proxy   *Proxy
	rule    Rule
	fired   int
	removed bool
}

// Fired is how many times the rule fired.
func (in *Injection) Fired() int {
	in.proxy.mu.Lock()
	defer in.proxy.mu.Unlock()
	return in.fired
}

// Remove stops the rule.
func (in *Injection) Remove() {
	in.proxy.mu.Lock()
	defer in.proxy.mu.Unlock()
	in.removed = true
}

// Inject adds a rule; rules are tried in the order they were added and the
// first that fires applies.
func (p *Proxy) Inject(r Rule) *Injection {
	in := &Injection{proxy: p, rule: r}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, in)
	return in
}

// ClearRules removes every rule.
func (p *Proxy) ClearRules() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range p.rules {
		in.removed = true
	}
	p.rules = nil
}

// Seed restarts the random source that Probability draws from.
func (p *Proxy) Seed(seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rng = newRand(seed)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// pickFault returns the fault of the first rule that fires for c.
func (p *Proxy) pickFault(c *call) (Fault, bool) {
	if c.action == "" {
		return Fault{}, false
	}
	p.mu.Lock()
	rules := append([]*Injection(nil), p.rules...)
	p.mu.Unlock()

	var matching []*Injection
	for _, in := range rules {
		r := in.rule
		actionOK := r.Action == c.action || (r.Action == "" && c.service == "ec2")
		if actionOK && (r.Match == nil || r.Match(c.form)) {
			matching = append(matching, in)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range matching {
		r := in.rule
		if in.removed || (r.Times > 0 && in.fired >= r.Times) {
			continue
		}
		if r.Probability > 0 && r.Probability < 1 && p.rng.Float64() >= r.Probability {
			continue
		}
		in.fired++
		return r.Fault, true
	}
	return Fault{}, false
}

// errorResponse renders an AWS error in the call's protocol: EC2's XML, or JSON.
func errorResponse(c *call, status int, code, message string) *response {
	id := requestID()
	if c.json {
		body, _ := json.Marshal(map[string]string{"__type": code, "message": message})
		return &response{status: status, body: body, header: http.Header{
			"Content-Type":     {"application/x-amz-json-1.1"},
			"X-Amzn-Errortype": {code},
			"X-Amzn-Requestid": {id},
		}}
	}
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Response><Errors><Error>" +
		leafXML("Code", code) + leafXML("Message", message) + "</Error></Errors>" +
		leafXML("RequestID", id) + "</Response>"
	return &response{status: status, body: []byte(body), header: http.Header{
		"Content-Type": {"text/xml;charset=UTF-8"},
	}}
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = cryptorand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var notFoundByService = map[string]string{
	"AmazonSSM": "ParameterNotFound",
	"AmazonSQS": "QueueDoesNotExist",
	"AWSEvents": "ResourceNotFoundException",
}

var notFoundByAction = map[string]string{}

func init() {
	for code, actions := range map[string][]string{
		"InvalidInstanceID.NotFound": {"DescribeInstances", "DescribeInstanceStatus", "DescribeInstanceAttribute",
			"ModifyInstanceAttribute", "TerminateInstances", "StopInstances", "StartInstances", "RebootInstances"},
		"InvalidVolume.NotFound": {"DescribeVolumes", "DescribeVolumeStatus", "DescribeVolumesModifications",
			"ModifyVolume", "DeleteVolume", "AttachVolume", "DetachVolume", "CreateSnapshot"},
		"InvalidSnapshot.NotFound": {"DescribeSnapshots", "DeleteSnapshot", "CopySnapshot", "CreateVolume",
			"DescribeSnapshotAttribute", "ModifySnapshotAttribute"},
		"InvalidAMIID.NotFound":                 {"DescribeImages", "RunInstances"},
		"InvalidSpotInstanceRequestID.NotFound": {"DescribeSpotInstanceRequests", "CancelSpotInstanceRequests"},
		"InvalidSubnetID.NotFound":              {"DescribeSubnets"},
	} {
		for _, a := range actions {
			notFoundByAction[a] = code
		}
	}
}

var notFoundByIDPrefix = []struct{ prefix, code string }{
	{"i-", "InvalidInstanceID.NotFound"},
	{"vol-", "InvalidVolume.NotFound"},
	{"snap-", "InvalidSnapshot.NotFound"},
	{"ami-", "InvalidAMIID.NotFound"},
	{"sir-", "InvalidSpotInstanceRequestID.NotFound"},
	{"subnet-", "InvalidSubnetID.NotFound"},
	{"sg-", "InvalidGroup.NotFound"},
}

// notFoundCode is the NotFound code for c: by service, by action, or by the
// first resource ID among its parameters (CreateTags).
func notFoundCode(c *call) string {
	if code, ok := notFoundByService[c.service]; ok {
		return code
	}
	if code, ok := notFoundByAction[c.action]; ok {
		return code
	}
	keys := make([]string, 0, len(c.form))
	for k := range c.form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, id := range notFoundByIDPrefix {
			if strings.HasPrefix(c.form.Get(k), id.prefix) && strings.Contains(k, "Id") {
				return id.code
			}
		}
	}
	return "InvalidResourceID.NotFound"
}

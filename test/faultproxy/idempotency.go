package faultproxy

import (
	"net/http"
	"net/url"
	"sync"
)

// idempotentActions are the calls whose ClientToken the proxy honours, as EC2 does.
var idempotentActions = map[string]bool{"RunInstances": true, "CreateVolume": true}

// volatileParams differ between retries of the same request.
var volatileParams = []string{"Action", "Version", "ClientToken"}

// tokenEntry is the first successful answer to a ClientToken.
type tokenEntry struct {
	mu     sync.Mutex // held while the first request with the token is in flight
	params string
	resp   *response
}

// idempotent answers a repeated ClientToken (same account and action) with
// the cached answer, or with IdempotentParameterMismatch when the parameters
// differ; otherwise it forwards and caches a success.
func (p *Proxy) idempotent(c *call, token string, forward func() (*response, error)) (*response, error) {
	key := c.account + "\x00" + c.action + "\x00" + token
	p.mu.Lock()
	e := p.tokens[key]
	if e == nil {
		e = &tokenEntry{}
		p.tokens[key] = e
	}
	p.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	params := stableParams(c.form)
	if e.resp != nil {
		if e.params != params {
			return errorResponse(c, http.StatusBadRequest, "IdempotentParameterMismatch",
				"The client token '"+token+"' was already used with different parameters."), nil
		}
		return e.resp, nil
	}
	resp, err := forward()
	if err == nil && resp.status == http.StatusOK {
		e.params, e.resp = params, resp
	}
	return resp, err
}

// stableParams encodes the parameters that identify a request.
func stableParams(form url.Values) string {
	stable := url.Values{}
	for k, vs := range form {
		stable[k] = vs
	}
	for _, k := range volatileParams {
		stable.Del(k)
	}
	return stable.Encode()
}

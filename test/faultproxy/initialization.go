package faultproxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// moto neither models EBS volume initialization nor answers
// DescribeVolumeStatus; the proxy answers it. A volume restored from a
// snapshot loads its blocks from the moment the proxy first sees it, at the
// VolumeInitializationRate of the last RunInstances that restored its
// snapshot before then, else at the default rate.

// defaultInitRateMiBps is how fast a volume without a provisioned rate loads
// its blocks here: EBS's lazy loading has no stated rate.
const defaultInitRateMiBps = 50

// initialization is the modelled state of restores; guarded by Proxy.mu.
type initialization struct {
	defaultMiBps int
	speedup      float64
	rateOf       map[string]int       // snapshot -> rate of its last restore
	started      map[string]time.Time // volume -> first seen
	rate         map[string]int       // volume -> its rate, as of then
}

func newInitialization() initialization {
	return initialization{defaultMiBps: defaultInitRateMiBps, speedup: 1, rateOf: map[string]int{}, started: map[string]time.Time{}, rate: map[string]int{}}
}

// SetInitialization sets the rate of a restore without a provisioned rate,
// and how many times faster than real time every restore loads its blocks
// (0 freezes every restore where it is).
func (p *Proxy) SetInitialization(defaultMiBps int, speedup float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init.defaultMiBps, p.init.speedup = defaultMiBps, speedup
}

// noteRestores remembers the initialization rate of each snapshot a RunInstances restores.
func (p *Proxy) noteRestores(form url.Values) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range form {
		prefix, ok := strings.CutSuffix(k, ".Ebs.SnapshotId")
		if !ok || len(v) == 0 {
			continue
		}
		rate, _ := strconv.Atoi(form.Get(prefix + ".Ebs.VolumeInitializationRate"))
		p.init.rateOf[v[0]] = rate
	}
}

// noteVolumes starts the clock of each restored volume in a DescribeVolumes answer.
func (in *initialization) noteVolumes(doc []byte, now time.Time) {
	items, _ := findItems(doc, volumesPath)
	for _, it := range items {
		if snap := it.field("snapshotId"); snap != "" {
			in.see(it.field("volumeId"), snap, now)
		}
	}
}

// see starts the clock of a restored volume the first time it is seen.
func (in *initialization) see(volumeID, snapshotID string, now time.Time) {
	if in.started[volumeID].IsZero() {
		in.started[volumeID], in.rate[volumeID] = now, in.rateOf[snapshotID]
	}
}

// progress is how far a volume has loaded, its type, and the time left (provisioned rate only).
func (in *initialization) progress(volumeID, snapshotID string, sizeGiB int, now time.Time) (int, string, time.Duration) {
	in.see(volumeID, snapshotID, now)
	rate, kind := in.rate[volumeID], "provisioned-rate"
	if rate == 0 {
		rate, kind = in.defaultMiBps, "default"
	}
	total := float64(max(sizeGiB, 1) * 1024)
	done := now.Sub(in.started[volumeID]).Seconds() * in.speedup * float64(rate)
	pct := min(int(100*done/total), 100)
	scale := in.speedup
	if scale == 0 {
		scale = 1 // frozen: the time left as if it went on now
	}
	left := time.Duration(max(total-done, 0) / float64(rate) / scale * float64(time.Second))
	return pct, kind, left
}

// describeVolumeStatus answers DescribeVolumeStatus from moto's DescribeVolumes.
func (p *Proxy) describeVolumeStatus(r *http.Request, c *call) (*response, error) {
	q := url.Values{"Action": {"DescribeVolumes"}, "Version": {c.form.Get("Version")}}
	for k, v := range c.form {
		if strings.HasPrefix(k, "VolumeId.") {
			q[k] = v
		}
	}
	body := q.Encode()
	fwd := r.Clone(r.Context())
	fwd.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := p.forward(fwd, []byte(body))
	if err != nil || resp.status != http.StatusOK {
		return resp, err
	}
	items, err := findItems(resp.body, volumesPath)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<DescribeVolumeStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` + leafXML("requestId", requestID()) + "<volumeStatusSet>")
	p.mu.Lock()
	for _, it := range items {
		b.WriteString("<item>" + leafXML("volumeId", it.field("volumeId")) + leafXML("availabilityZone", it.field("availabilityZone")) +
			"<volumeStatus>" + leafXML("status", "ok") + "<details><item>" + leafXML("name", "io-enabled") + leafXML("status", "passed") +
			"</item></details></volumeStatus>")
		if snap := it.field("snapshotId"); snap != "" {
			size, _ := strconv.Atoi(it.field("size"))
			pct, kind, left := p.init.progress(it.field("volumeId"), snap, size, now)
			b.WriteString("<initializationStatusDetails>" + leafXML("initializationType", kind) + leafXML("progress", fmt.Sprint(pct)))
			if kind == "provisioned-rate" {
				b.WriteString(leafXML("estimatedTimeToCompleteInSeconds", fmt.Sprint(int(left.Seconds()))))
			}
			b.WriteString("</initializationStatusDetails>")
		}
		b.WriteString("</item>")
	}
	p.mu.Unlock()
	b.WriteString("</volumeStatusSet></DescribeVolumeStatusResponse>")
	return &response{status: http.StatusOK, header: http.Header{"Content-Type": {"text/xml;charset=UTF-8"}}, body: []byte(b.String())}, nil
}

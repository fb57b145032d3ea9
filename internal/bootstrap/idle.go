package bootstrap

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
)

// Signal is one activity signal reported by `xdrive-ctl status --idle`.
type Signal struct {
	// Name is ssh, jupyter, gpu, cpu, network or command.
	Name string `json:"name"`
	// State is active, idle or unknown (it could not be read: counted as active).
	State string `json:"state"`
	// Detail is what was read, for people.
	Detail string `json:"detail"`
}

// Signal states.
const (
	SignalActive  = "active"
	SignalIdle    = "idle"
	SignalUnknown = "unknown"
)

// IdleCheck is what the instance checks for activity. It is passed with
// each status call, with the probe script itself, so a change of
// spec.idleStop needs no relaunch and the user-data stays small.
type IdleCheck struct {
	// CPULoad is the 1-minute load average that counts as busy (decimal).
	CPULoad string
	// GPUPercent is the utilisation of any GPU that counts as busy.
	GPUPercent int32
	// Ports are host TCP ports whose traffic counts.
	Ports []int32
	// BytesPerSecond on Ports that counts as busy.
	BytesPerSecond int64
	// Jupyter lists the containers' Jupyter servers.
	Jupyter []JupyterPort
	// Command is run by bash: exit 0 is busy, 1 idle.
	Command string
}

// JupyterPort is a container's Jupyter server on a host port.
type JupyterPort struct {
	Container string
	Port      int32
}

// StatusArgs are the arguments of `xdrive-ctl status` that ask for the
// activity signals: only base64, so they are safe in a command line.
func (c IdleCheck) StatusArgs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CPU=%s\nGPU=%d\nBPS=%d\nPORTS=%s\n", c.CPULoad, c.GPUPercent, c.BytesPerSecond, joinPorts(c.Ports))
	jup := make([]string, len(c.Jupyter))
	for i, j := range c.Jupyter {
		jup[i] = fmt.Sprintf("%s:%d", j.Container, j.Port)
	}
	fmt.Fprintf(&b, "JUPYTER=%s\nCHECK=%s\n", strings.Join(jup, " "), base64.StdEncoding.EncodeToString([]byte(c.Command)))
	return " --idle " + base64.StdEncoding.EncodeToString([]byte(b.String())) + " --probe " + idleProbe()
}

// idleProbe is xdrive-idle.sh, gzipped and base64-encoded.
var idleProbe = sync.OnceValue(func() string {
	data, _ := installedData("xdrive-idle.sh") // embedded: an empty probe would fail the status call
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
})

func joinPorts(ports []int32) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, " ")
}

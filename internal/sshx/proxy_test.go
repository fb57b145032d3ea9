package sshx_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy is a TCP proxy on 127.0.0.1 that counts connections and can reset
// (RST via SetLinger(0) + Close) or hold the first ones instead of forwarding.
type proxy struct {
	Addr string

	target     string
	resetFirst int    // reset this many connections; -1 resets all
	hold       bool   // accept and never answer (instead of forwarding)
	onAccept   func() // called for each accepted connection

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	count int
}

func startProxy(t *testing.T, p *proxy) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ln, p.Addr = ln, ln.Addr().String()
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Count returns how many connections the proxy accepted.
func (p *proxy) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.count++
		n := p.count
		p.mu.Unlock()
		if p.onAccept != nil {
			p.onAccept()
		}
		switch {
		case p.resetFirst < 0 || n <= p.resetFirst:
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		case p.hold:
			p.track(c)
		default:
			p.track(c)
			p.wg.Add(1)
			go p.forward(c)
		}
	}
}

func (p *proxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.track(up)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, up)
	c.(*net.TCPConn).CloseWrite()
	<-done
}

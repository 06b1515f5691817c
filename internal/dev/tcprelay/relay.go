// Package tcprelay copies TCP connections from a listening address to a target. It lets pods on a real
// node, which reach the node address but not this machine's loopback, talk to a server that listens on
// 127.0.0.1 only (RabbitMQ as Debian starts it, say). Traffic stays on this machine.
package tcprelay

import (
	"io"
	"net"
	"sync"
)

// Relay is a running relay.
type Relay struct {
	l      net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool // set by Close: a connection accepted after it is closed at once
	wg     sync.WaitGroup
}

// Start listens on listen (host:port; port 0 for a free one) and relays each connection to target.
func Start(listen, target string) (*Relay, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &Relay{l: l, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.serve(target)
	return r, nil
}

// Addr is the address the relay listens on.
func (r *Relay) Addr() string { return r.l.Addr().String() }

func (r *Relay) serve(target string) {
	defer r.wg.Done()
	for {
		in, err := r.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			_ = in.Close()
			continue
		}
		if !r.track(in, true) || !r.track(out, true) {
			_ = in.Close()
			_ = out.Close()
			return
		}
		r.wg.Add(2)
		go r.pipe(out, in)
		go r.pipe(in, out)
	}
}

// pipe copies from src to dst, then closes dst.
func (r *Relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	r.track(dst, false)
}

// track adds or removes a connection to close on Close; adding reports false once the relay is closed.
func (r *Relay) track(c net.Conn, add bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !add {
		delete(r.conns, c)
		return true
	}
	if r.closed {
		return false
	}
	r.conns[c] = true
	return true
}

// Close stops listening, closes every relayed connection and waits for the copies to end.
func (r *Relay) Close() error {
	err := r.l.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

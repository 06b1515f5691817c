package natsjetstream

// OutMsgs is how many messages (requests, and the CONNECT) the pool's connections have sent: the
// client's own count, a check on the request observer.
func (p *Pool) OutMsgs() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, s := range p.servers {
		if s.client != nil {
			n += s.client.outMsgs()
		}
	}
	return n
}

package testenv

// Restart starts the server again with the same arguments (ports, server name, JetStream store) after
// Stop, as a restarted pod would, and waits until it answers. A stream with file storage keeps its
// messages and consumers across the restart; one with memory storage loses them.
func (s *NATSServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

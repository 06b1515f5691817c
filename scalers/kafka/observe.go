package kafka

import (
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ebbscale/ebb/scalers"
)

// ObserveRequests is a client option (for NewPool) that tells o about every request of the pool's
// clients: request is the API key's name (ListOffsets, OffsetFetch, Metadata, ...), or "Connect" for a
// connection attempt, and server the broker's host:port. A request fails when it could not be written or
// its answer not read, a connection when the dial (or TLS handshake) failed: a broker that is down shows
// as failed Connects. Kafka error codes inside an answer are not failures here.
func ObserveRequests(o scalers.RequestObserver) kgo.Opt {
	return kgo.WithHooks(requestHook{observe: o})
}

type requestHook struct {
	observe scalers.RequestObserver
}

var (
	_ kgo.HookBrokerE2E     = requestHook{}
	_ kgo.HookBrokerConnect = requestHook{}
)

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h requestHook) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	name := kmsg.NameForKey(key)
	if name == "" {
		name = "Unknown"
	}
	h.observe(server(meta), name, e2e.DurationE2E(), e2e.Err())
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h requestHook) OnBrokerConnect(meta kgo.BrokerMetadata, dial time.Duration, _ net.Conn, err error) {
	h.observe(server(meta), "Connect", dial, err)
}

func server(meta kgo.BrokerMetadata) string {
	return net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
}

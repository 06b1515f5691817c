package loadgen_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ebbscale/ebb/internal/dev/loadgen"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// A burst and a steady stream to a subject of a stream the sink creates on the real server: the stream
// holds every confirmed message.
func TestNATSDelivers(t *testing.T) {
	u, err := url.Parse(testenv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RequireTCP(t, "NATS", u.Host, "hack/ensure-nats.sh")
	name := testenv.UniqueName(t, "load")
	sink, err := loadgen.NewNATS(t.Context(), loadgen.NATSConfig{URLs: testenv.NATSURL, Subject: name + ".orders", Stream: name, MaxInflight: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	nc, err := nats.Connect(testenv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })

	st, err := loadgen.Run(t.Context(), sink, loadgen.Schedule{Burst: 500, Rate: 100, Duration: time.Second}, loadgen.Options{Payload: make([]byte, 64)})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 600 || st.Confirmed != 600 || st.Failed != 0 {
		t.Errorf("stats: sent %d, confirmed %d, failed %d; want 600, 600, 0", st.Sent, st.Confirmed, st.Failed)
	}
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 600 {
		t.Errorf("stream %s holds %d messages, want 600", name, n)
	}

	// A subject no stream captures: every message fails.
	lost, err := loadgen.NewNATS(t.Context(), loadgen.NATSConfig{URLs: testenv.NATSURL, Subject: name + "-nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	defer lost.Close()
	st, err = loadgen.Run(t.Context(), lost, loadgen.Schedule{Burst: 5}, loadgen.Options{Payload: []byte("x")})
	if st.Failed != 5 || err == nil {
		t.Errorf("to a subject no stream captures: stats %+v, error %v; want 5 failed and an error", st, err)
	}
}

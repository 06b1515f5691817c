package natsjetstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
)

// Benchmark layout: 100 streams of 10 consumers, one trigger per consumer (1,000 triggers); stream i
// holds i mod 10 messages.
const (
	benchStreams   = 100
	benchConsumers = 10
)

// BenchmarkTick times one poll tick of 1,000 triggers on one nats-server (started by the benchmark, with
// a monitoring endpoint), every trigger sampled at once as the controller does when polling intervals
// align: over the client protocol (mode=client), from /jsz (mode=monitoring), and the way KEDA's design
// does the same work, one /jsz request per trigger (mode=keda-design; our code, KEDA's request). The
// pool's clock moves past the freshness window before each tick, so every tick takes a new reading; the
// values are checked every tick. It reports requests per tick, connections, and the heap the pool and its
// triggers hold after a tick (after GC).
func BenchmarkTick(b *testing.B) {
	srv := testenv.StartNATS(b, testenv.NATSOptions{})
	fillStreams(b, srv.URL)
	for _, mode := range []string{"client", "monitoring", "keda-design"} {
		b.Run("mode="+mode, func(b *testing.B) {
			var requests atomic.Int64
			observe := func(string, string, time.Duration, error) { requests.Add(1) }
			heapBefore := heap()
			var clock atomic.Int64
			clock.Store(time.Now().UnixNano())
			p := NewPool(ObserveRequests(observe))
			p.now = func() time.Time { return time.Unix(0, clock.Load()) }
			defer p.Close()
			triggers := make([]scalers.Scaler, benchStreams*benchConsumers)
			for i := range triggers {
				md := map[string]string{"stream": fmt.Sprintf("s%03d", i/benchConsumers), "consumer": fmt.Sprintf("c%d", i%benchConsumers)}
				switch mode {
				case "client":
					md["natsServerURL"] = srv.URL
				default:
					md["natsServerMonitoringEndpoint"] = srv.Monitor
				}
				s, err := p.New(scalers.Config{TriggerName: "t", Metadata: md, PollingInterval: 5 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				triggers[i] = s
			}
			sample := func(i int, s scalers.Scaler) (float64, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if mode == "keda-design" {
					requests.Add(1)
					return kedaDesignRead(ctx, srv.Monitor, s.(*Scaler).md.Stream, s.(*Scaler).md.Consumer)
				}
				smp, err := s.Sample(ctx)
				if err != nil {
					return 0, err
				}
				return smp.Values[0], nil
			}
			tick := func() {
				var wg sync.WaitGroup
				for i, s := range triggers {
					wg.Go(func() {
						v, err := sample(i, s)
						if err != nil {
							b.Error(err)
						} else if want := float64((i / benchConsumers) % 10); v != want {
							b.Errorf("trigger %d: %v, want %v", i, v, want)
						}
					})
				}
				wg.Wait()
			}
			tick() // connect, learn the consumer counts
			heapAfter := heap()
			requests.Store(0)
			b.ResetTimer()
			for range b.N {
				clock.Add(int64(10 * time.Second))
				tick()
			}
			b.StopTimer()
			b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/tick")
			b.ReportMetric(float64(p.Connections()), "connections")
			b.ReportMetric(float64(heapAfter-heapBefore)/(1<<20), "heap-MiB")
		})
	}
}

// kedaDesignRead is one trigger's reading the way KEDA's scaler makes it: its own GET of
// /jsz?acc=$G&consumers=true&accounts=true, decoded whole, and the consumer looked up in it.
func kedaDesignRead(ctx context.Context, endpoint, stream, consumer string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+"/jsz?acc=%24G&consumers=true&accounts=true", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	var j jsz
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return 0, err
	}
	for _, a := range j.Accounts {
		for _, s := range a.Streams {
			if s.Name != stream {
				continue
			}
			for _, c := range s.Consumers {
				if c.Name == consumer {
					return float64(c.NumPending + uint64(c.NumAckPending)), nil
				}
			}
		}
	}
	return 0, fmt.Errorf("%s/%s not found", stream, consumer)
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// fillStreams creates the benchmark's streams and consumers on the server at url.
func fillStreams(b *testing.B, url string) {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for s := range benchStreams {
		name := fmt.Sprintf("s%03d", s)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
			b.Fatal(err)
		}
		for c := range benchConsumers {
			if _, err := js.CreateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: fmt.Sprintf("c%d", c), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
				b.Fatal(err)
			}
		}
		for range s % 10 {
			if _, err := js.Publish(ctx, name+".m", []byte("m")); err != nil {
				b.Fatal(err)
			}
		}
	}
}

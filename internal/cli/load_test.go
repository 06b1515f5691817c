package cli_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ebbscale/ebb/internal/dev/devkafka"
)

// `ebb load kafka` wires its flags to the load generator: the topic it creates holds what it reports as
// confirmed, and the summary says so.
func TestLoadKafka(t *testing.T) {
	k, err := devkafka.Start(devkafka.Config{NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	brokers := strings.Join(k.ListenAddrs(), ",")
	out, errOut, code := run(t, "load", "kafka", "--brokers", brokers, "--topic", "orders", "--partitions", "3",
		"--burst", "300", "--rate", "100", "--duration", "1s", "--size", "10")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if !strings.Contains(out, "400 messages of 10 bytes to topic orders at "+brokers) ||
		!regexp.MustCompile(`done: \S+: sent 400, confirmed 400, failed 0; \d+ msg/s confirmed`).MatchString(out) {
		t.Errorf("output does not state the plan and the summary:\n%s", out)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 400 || len(ends["orders"]) != 3 {
		t.Errorf("topic orders has %d records in %d partitions, want 400 in 3", total, len(ends["orders"]))
	}
}

func TestLoadRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "nothing-to-send", args: []string{"kafka", "--topic", "t"}, wantErr: "nothing to send"},
		{name: "no-topic", args: []string{"kafka", "--burst", "1"}, wantErr: "--topic is required"},
		{name: "negative-rate", args: []string{"kafka", "--topic", "t", "--rate", "-1"}, wantErr: "rate -1"},
		{name: "negative-size", args: []string{"kafka", "--topic", "t", "--burst", "1", "--size", "-1"}, wantErr: "--size -1"},
		{name: "interval-without-burst", args: []string{"kafka", "--topic", "t", "--rate", "1", "--burst-every", "1s"}, wantErr: "needs a burst size"},
		{name: "ca-without-tls", args: []string{"kafka", "--topic", "t", "--burst", "1", "--ca", "ca.pem"}, wantErr: "need --tls"},
		{name: "bad-sasl", args: []string{"kafka", "--topic", "t", "--burst", "1", "--sasl", "gssapi"}, wantErr: "SASL mechanism"},
		{name: "user-without-sasl", args: []string{"kafka", "--topic", "t", "--burst", "1", "--username", "u"}, wantErr: "needs a SASL mechanism"},
		{name: "rabbitmq-no-queue", args: []string{"rabbitmq", "--burst", "1"}, wantErr: "a queue (or an exchange) is required"},
		{name: "rabbitmq-queue-and-key", args: []string{"rabbitmq", "--burst", "1", "--queue", "q", "--routing-key", "k"}, wantErr: "give one"},
		{name: "rabbitmq-bad-url", args: []string{"rabbitmq", "--burst", "1", "--queue", "q", "--url", "http://x/"}, wantErr: "want amqp://"},
		{name: "rabbitmq-ca-without-amqps", args: []string{"rabbitmq", "--burst", "1", "--queue", "q", "--ca", "ca.pem"}, wantErr: "need an amqps://"},
		{name: "unknown-broker", args: []string{"kafak"}, wantErr: `unknown command "kafak"`},
		{name: "negative-inflight", args: []string{"kafka", "--topic", "t", "--burst", "1", "--max-inflight", "-1"}, wantErr: "--max-inflight -1"},
		{name: "zero-progress", args: []string{"rabbitmq", "--queue", "q", "--burst", "1", "--progress-every", "0s"}, wantErr: "--progress-every 0s"},
		{name: "negative-partitions", args: []string{"kafka", "--topic", "t", "--burst", "1", "--partitions", "-3"}, wantErr: "--partitions -3"},
		{name: "empty-brokers", args: []string{"kafka", "--topic", "t", "--burst", "1", "--brokers", ""}, wantErr: "--brokers"},
		{name: "rabbitmq-declare-with-exchange", args: []string{"rabbitmq", "--burst", "1", "--exchange", "x", "--routing-key", "k", "--declare"}, wantErr: "default exchange only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, append([]string{"load"}, tc.args...)...)
			if code == 0 || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want a failure mentioning %q", code, errOut, tc.wantErr)
			}
		})
	}
}

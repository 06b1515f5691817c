package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ebbscale/ebb/internal/cli"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(t.Context(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	if code != 0 || !regexp.MustCompile(`^ebb \S+ .*go1\.\d+.* linux/`).MatchString(out) {
		t.Errorf("ebb version = %q (exit %d), want 'ebb <version> ... go1.x linux/...'", out, code)
	}
}

func TestDevKafkaRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "zero-partitions", args: []string{"--topic", "orders:0"}, wantErr: "partitions must be a positive integer"},
		{name: "empty-topic", args: []string{"--topic", ":3"}, wantErr: "empty name"},
		{name: "remote-listen", args: []string{"--listen", "10.1.2.3:9092"}, wantErr: "listens on 127.0.0.1 only"},
		{name: "bad-port", args: []string{"--listen", "127.0.0.1:http"}, wantErr: "bad port"},
		{name: "bad-sasl", args: []string{"--listen", "127.0.0.1:0", "--sasl-user", "u", "--sasl-password", "p", "--sasl-mechanism", "gssapi"}, wantErr: "SASL mechanism"},
		{name: "password-without-user", args: []string{"--listen", "127.0.0.1:0", "--sasl-password", "p"}, wantErr: "--sasl-user and --sasl-password go together"},
		{name: "user-without-password", args: []string{"--listen", "127.0.0.1:0", "--sasl-user", "u"}, wantErr: "--sasl-user and --sasl-password go together"},
		{name: "extra-arg", args: []string{"now"}, wantErr: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, append([]string{"dev", "kafka"}, tc.args...)...)
			if code == 0 || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want a failure mentioning %q", code, errOut, tc.wantErr)
			}
		})
	}
}

// startDevKafka runs `ebb dev kafka` as a separate process and returns its bootstrap address.
func startDevKafka(t *testing.T, args ...string) string {
	t.Helper()
	// Three brokers take three consecutive ports; find a run of free ones. Another process can take one
	// between the check and the listen (tests of other packages run at the same time), so a start that
	// fails to bind is tried again on other ports.
	for attempt := 1; ; attempt++ {
		port := testenv.FreePort(t)
		for !portsFree(port+1, port+2) {
			port = testenv.FreePort(t)
		}
		cmd := exec.Command(testenv.EbbBinary(t), append([]string{"dev", "kafka", "--listen", "127.0.0.1:" + strconv.Itoa(port)}, args...)...)
		dev := startDevProcess(t, cmd)
		line, err := dev.readyOrExit(t, 30*time.Second)
		if err != nil {
			if attempt < 5 && strings.Contains(dev.stderr.String(), "address already in use") {
				t.Logf("port taken before ebb dev kafka bound it; trying others: %s", dev.stderr.String())
				continue
			}
			t.Fatalf("%v exited before it was ready: %v\nstderr:\n%s", cmd.Args, err, dev.stderr.String())
		}
		t.Cleanup(func() {
			if err := dev.stop(t, syscall.SIGINT, 10*time.Second); err != nil {
				t.Errorf("ebb dev kafka exited with %v on SIGINT; stderr: %s", err, dev.stderr.String())
			}
		})
		t.Logf("%s", line)
		return "127.0.0.1:" + strconv.Itoa(port)
	}
}

func portsFree(ports ...int) bool {
	for _, p := range ports {
		cmd := exec.Command("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", p))
		if cmd.Run() == nil {
			return false
		}
	}
	return true
}

// kcat, Debian's Kafka client, produces to and reads from `ebb dev kafka`; franz-go reads the same records.
func TestDevKafkaWithKcat(t *testing.T) {
	kcat := testenv.LookPath(t, "kcat", "hack/ensure-tools.sh")
	addr := startDevKafka(t, "--brokers", "3", "--topic", "orders:6")

	meta, err := exec.CommandContext(t.Context(), kcat, "-b", addr, "-L", "-t", "orders").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, meta)
	}
	for _, want := range []string{"3 brokers:", `topic "orders" with 6 partitions`} {
		if !strings.Contains(string(meta), want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, meta)
		}
	}

	var in []string
	for i := range 20 {
		in = append(in, fmt.Sprintf("key-%d:order-%d", i, i))
	}
	produce := exec.CommandContext(t.Context(), kcat, "-b", addr, "-t", "orders", "-P", "-K:", "-X", "acks=all")
	produce.Stdin = strings.NewReader(strings.Join(in, "\n") + "\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	consume := exec.CommandContext(t.Context(), kcat, "-b", addr, "-t", "orders", "-C", "-o", "beginning", "-e", "-q", "-f", "%k:%s\n")
	out, err := consume.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	want := slices.Clone(in)
	slices.Sort(want)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("kcat read back (-got +want):\n%s", diff)
	}

	// franz-go sees the same records.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var fromGo []string
	for len(fromGo) < len(in) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			fromGo = append(fromGo, string(r.Key)+":"+string(r.Value))
		})
	}
	slices.Sort(fromGo)
	if diff := cmp.Diff(fromGo, want); diff != "" {
		t.Errorf("franz-go read back (-got +want):\n%s", diff)
	}
}

// With --sasl-user the broker refuses clients without the right credentials. franz-go is the client here:
// Debian's kcat (librdkafka 2.0.2) will not start SASL with a broker that, like Kafka 4 and kfake, no
// longer lists SaslHandshake v0 (docs/development.md).
func TestDevKafkaSASL(t *testing.T) {
	addr := startDevKafka(t, "--sasl-user", "ebb", "--sasl-password", "s3cret", "--sasl-mechanism", "SCRAM-SHA-256")
	ping := func(pass string) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "ebb", Pass: pass}.AsSha256Mechanism()),
			kgo.RetryTimeout(2*time.Second))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		// Metadata is refused before authentication completes, unlike ApiVersions.
		_, err = cl.Request(ctx, kmsg.NewPtrMetadataRequest())
		return err
	}
	if err := ping("s3cret"); err != nil {
		t.Errorf("SCRAM-SHA-256 with the right password: %v", err)
	}
	if err := ping("wrong"); err == nil {
		t.Error("SCRAM-SHA-256 with a wrong password succeeded")
	}
}

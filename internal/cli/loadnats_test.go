package cli_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// ebb load nats creates the stream it is asked for and publishes into it; the stream holds every
// message the command reports confirmed.
func TestLoadNATS(t *testing.T) {
	u, err := url.Parse(testenv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RequireTCP(t, "NATS", u.Host, "hack/ensure-nats.sh")
	stream := testenv.UniqueName(t, "cli")
	nc, err := nats.Connect(testenv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })

	out, errOut, code := run(t, "load", "nats", "--url", testenv.NATSURL, "--subject", stream+".new", "--stream", stream, "--burst", "300", "--quiet")
	if code != 0 || !strings.Contains(out, "confirmed 300, failed 0") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 300 confirmed", code, out, errOut)
	}
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 300 {
		t.Errorf("stream %s holds %d messages, want 300", stream, n)
	}

	for name, args := range map[string][]string{
		"no-subject":            {"load", "nats", "--burst", "1"},
		"password-without-user": {"load", "nats", "--burst", "1", "--subject", "s", "--password", "p"},
		"nothing-to-send":       {"load", "nats", "--subject", "s"},
	} {
		if _, errOut, code := run(t, args...); code == 0 {
			t.Errorf("%s: exit 0, stderr %q; want a failure", name, errOut)
		}
	}
}

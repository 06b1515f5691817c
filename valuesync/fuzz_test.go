package valuesync_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ebbscale/ebb/valuesync"
)

// FuzzSnapshot decodes a fuzzed values response body as a follower does. Whatever the bytes: no panic;
// an error, or a snapshot that encodes again (as the leader's handler would) and decodes to the same
// instance, revision and store items, NaN and infinities included.
func FuzzSnapshot(f *testing.F) {
	f.Add([]byte(`{"instance":"a1","revision":7,"entries":[{"namespace":"shop","scaledConsumer":"orders","metric":"lag","value":1234.5,"time":"2026-12-06T12:00:00Z","staleAfter":"15s","fallback":3}]}`))
	f.Add([]byte(`{"instance":"a1","revision":0,"entries":[{"namespace":"n","scaledConsumer":"s","metric":"m","value":"NaN","time":"2026-12-06T12:00:00.123456789+05:30","fallback":"+Inf"},{"value":"-Inf","time":"0001-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"instance":"","revision":18446744073709551615,"entries":[]}`))
	f.Add([]byte(`{"entries":[{"value":-0,"time":"2026-12-06T12:00:00Z","staleAfter":"-1h"}]}`))
	f.Add([]byte(`{"entries":[{"value":"1e400","time":"2026-12-06T12:00:00Z"}]}`))
	f.Add([]byte(`{"entries":[{"value":null,"fallback":null,"time":"9999-12-31T23:59:59Z","staleAfter":"2562047h47m16.854775807s"}]}`))
	f.Add([]byte(`{"entries":[{"value":1e308,"staleAfter":"1e3s"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var snap valuesync.Snapshot
		if err := json.Unmarshal(body, &snap); err != nil {
			return
		}
		items := snap.Items()
		if len(items) != len(snap.Entries) {
			t.Fatalf("%d entries became %d items", len(snap.Entries), len(items))
		}
		again, err := json.Marshal(snap)
		if err != nil {
			t.Fatalf("a snapshot that decoded does not encode again: %v", err)
		}
		var back valuesync.Snapshot
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("a snapshot encoded as %s does not decode: %v", again, err)
		}
		if back.Instance != snap.Instance || back.Revision != snap.Revision {
			t.Fatalf("instance and revision %q, %d came back as %q, %d", snap.Instance, snap.Revision, back.Instance, back.Revision)
		}
		if diff := cmp.Diff(back.Items(), items, cmpopts.EquateNaNs(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("items changed on the way back (-got +want):\n%s", diff)
		}
	})
}

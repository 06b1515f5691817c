package natsjetstream

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/scalers"
)

// base is the least a nats-jetstream trigger needs, plus extra key/value pairs.
func base(extra ...string) map[string]string {
	md := map[string]string{"natsServerURL": "nats://nats:4222", "stream": "orders", "consumer": "workers"}
	for i := 0; i+1 < len(extra); i += 2 {
		md[extra[i]] = extra[i+1]
	}
	return md
}

// monitoringBase is base with the monitoring endpoint instead of natsServerURL.
func monitoringBase(extra ...string) map[string]string {
	md := base()
	delete(md, "natsServerURL")
	md["natsServerMonitoringEndpoint"] = "nats:8222"
	for i := 0; i+1 < len(extra); i += 2 {
		md[extra[i]] = extra[i+1]
	}
	return md
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		want     metadata
	}{
		{
			name:     "defaults",
			metadata: base(),
			want: metadata{Connection: Connection{ServerURL: []string{"nats://nats:4222"}, TLS: scalers.TLS{Mode: "disable"}},
				Stream: "orders", Consumer: "workers", LagThreshold: 10},
		},
		{
			name:     "cluster-tls-nkey",
			metadata: base("natsServerURL", "tls://a:4222, tls://b:4222", "lagThreshold", "50", "activationLagThreshold", "5"),
			auth:     map[string]string{"nkeySeed": "SU...", "ca": "CA"},
			want: metadata{Connection: Connection{ServerURL: []string{"tls://a:4222", "tls://b:4222"}, NKeySeed: "SU...", TLS: scalers.TLS{Mode: "disable", CA: "CA"}},
				Stream: "orders", Consumer: "workers", LagThreshold: 50, ActivationLagThreshold: 5},
		},
		{
			name:     "keda-monitoring",
			metadata: monitoringBase("account", "$G", "useHttps", "true"),
			auth:     map[string]string{"ca": "CA"},
			want: metadata{Connection: Connection{MonitoringEndpoints: []string{"nats:8222"}, UseHTTPS: true, Account: "$G", TLS: scalers.TLS{Mode: "disable", CA: "CA"}},
				Stream: "orders", Consumer: "workers", LagThreshold: 10},
		},
		{
			name:     "user-password",
			metadata: base("username", "ebb"),
			auth:     map[string]string{"password": "s3cret"},
			want: metadata{Connection: Connection{ServerURL: []string{"nats://nats:4222"}, Credentials: scalers.Credentials{Username: "ebb", Password: "s3cret"}, TLS: scalers.TLS{Mode: "disable"}},
				Stream: "orders", Consumer: "workers", LagThreshold: 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got metadata
			if err := scalers.Parse(tt.metadata, tt.auth, &got); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want)\n%s", diff)
			}
		})
	}
}

// Every rejection names the key to change.
func TestParseMetadataRejects(t *testing.T) {
	tests := []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		want     []string // each must appear in the error
	}{
		{"neither-server", map[string]string{"stream": "s", "consumer": "c"}, nil, []string{"natsServerURL: required"}},
		{"both-servers", base("natsServerMonitoringEndpoint", "nats:8222"), nil, []string{"natsServerURL and natsServerMonitoringEndpoint are both set"}},
		{"no-stream", map[string]string{"natsServerURL": "nats://n:4222", "consumer": "c"}, nil, []string{"stream:"}},
		{"no-consumer", map[string]string{"natsServerURL": "nats://n:4222", "stream": "s"}, nil, []string{"consumer:"}},
		{"bad-scheme", base("natsServerURL", "http://nats:4222"), nil, []string{"natsServerURL: scheme must be nats or tls"}},
		{"url-credentials", base("natsServerURL", "nats://u:p@nats:4222"), nil, []string{"natsServerURL: carries credentials"}},
		{"two-logins", base(), map[string]string{"token": "t", "nkeySeed": "SU"}, []string{"nkeySeed: token, nkeySeed are set"}},
		{"password-in-metadata", base("username", "u", "password", "p"), nil, []string{"password"}},
		{"account-with-client", base("account", "A"), nil, []string{"account applies to natsServerMonitoringEndpoint"}},
		{"tls-keys-without-tls", base(), map[string]string{"ca": "CA"}, []string{"ca is set but TLS is off"}},
		{"monitoring-credentials", monitoringBase("username", "u"), map[string]string{"password": "p"}, []string{"natsServerMonitoringEndpoint takes no credentials"}},
		{"monitoring-url", monitoringBase("natsServerMonitoringEndpoint", "http://nats:8222"), nil, []string{"is not host:port"}},
		{"monitoring-user-info", monitoringBase("natsServerMonitoringEndpoint", "u:hunter2@nats:8222"), nil, []string{`"...@nats:8222" is not host:port`, "no credentials"}},
		{"monitoring-tls-without-https", monitoringBase("tls", "enable"), nil, []string{"useHttps is false"}},
		{"account-and-id", monitoringBase("account", "A", "accountID", "ABC"), nil, []string{"account and accountID are both set"}},
		{"threshold", base("lagThreshold", "0"), nil, []string{"lagThreshold"}},
		{"typo", base("lagTreshold", "5"), nil, []string{`did you mean "lagThreshold"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got metadata
			err := scalers.Parse(tt.metadata, tt.auth, &got)
			if err == nil {
				t.Fatalf("Parse accepted %v", tt.metadata)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A dead-letter reader takes the connection keys and stream, and nothing about consumers or thresholds.
func TestParseDeadLetter(t *testing.T) {
	p := NewPool()
	defer p.Close()
	_, err := p.NewDeadLetter(scalers.Config{Metadata: base()})
	if err == nil || !strings.Contains(err.Error(), "consumer: not a key of a nats-jetstream dead-letter stream") {
		t.Errorf("error %v, want consumer refused as not a key of a dead-letter stream", err)
	}
	r, err := p.NewDeadLetter(scalers.Config{Metadata: map[string]string{"natsServerURL": "nats://127.0.0.1:1", "stream": "dlq"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != `stream "dlq"` {
		t.Errorf("Name() = %q", r.Name())
	}
}

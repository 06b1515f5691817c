package rabbitmq

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/scalers"
)

// md is the least a rabbitmq trigger needs, plus extra key/value pairs.
func md(host string, extra ...string) map[string]string {
	m := map[string]string{"host": host, "queueName": "orders"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func parse(t *testing.T, meta, auth map[string]string) (metadata, error) {
	t.Helper()
	var m metadata
	err := scalers.Parse(meta, auth, &m)
	return m, err
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		want     metadata
	}{
		{
			// KEDA's defaults: QueueLength 20; the protocol follows the host's scheme.
			name:     "defaults-amqp",
			metadata: md("amqp://rabbit:5672/"),
			want: metadata{
				Host: "amqp://rabbit:5672/", QueueName: "orders", Mode: "QueueLength", Value: 20, Protocol: "amqp",
				Operation: "sum", PageSize: 500, TLS: scalers.TLS{Mode: "disable"},
			},
		},
		{
			name:     "defaults-http",
			metadata: md("http://rabbit:15672/"),
			want: metadata{
				Host: "http://rabbit:15672/", QueueName: "orders", Mode: "QueueLength", Value: 20, Protocol: "http",
				Operation: "sum", PageSize: 500, TLS: scalers.TLS{Mode: "disable"},
			},
		},
		{
			name: "everything-http",
			metadata: map[string]string{
				"host": "https://rabbit/api-proxy/prod", "queueName": "^orders\\.", "mode": "MessageRate", "value": "12.5",
				"activationValue": "2", "protocol": "http", "vhostName": "other", "useRegex": "true", "operation": "max",
				"pageSize": "50", "timeout": "1500", "username": "ebb", "tls": "enable", "unsafeSsl": "true",
			},
			auth: map[string]string{"password": "s3cret", "ca": "CA", "cert": "CERT", "key": "KEY"},
			want: metadata{
				Host: "https://rabbit/api-proxy/prod", QueueName: "^orders\\.", Mode: "MessageRate", Value: 12.5,
				ActivationValue: 2, Protocol: "http", VhostName: "other", UseRegex: true, Operation: "max", PageSize: 50,
				Timeout: millis(1500 * time.Millisecond), Credentials: scalers.Credentials{Username: "ebb", Password: "s3cret"},
				TLS: scalers.TLS{Mode: "enable", CA: "CA", Cert: "CERT", Key: "KEY", UnsafeSSL: true},
			},
		},
		{
			name:     "exclude-unacknowledged",
			metadata: md("http://rabbit:15672/", "excludeUnacknowledged", "true", "mode", "QueueLength", "value", "3"),
			want: metadata{
				Host: "http://rabbit:15672/", QueueName: "orders", Mode: "QueueLength", Value: 3, Protocol: "http",
				ExcludeUnacknowledged: true, Operation: "sum", PageSize: 500, TLS: scalers.TLS{Mode: "disable"},
			},
		},
		{
			// KEDA's deprecated queueLength is mode QueueLength with that value.
			name:     "deprecated-queue-length",
			metadata: md("amqp://rabbit/", "queueLength", "7"),
			want: metadata{
				Host: "amqp://rabbit/", QueueName: "orders", Mode: "QueueLength", Value: 7, QueueLength: 7, Protocol: "amqp",
				Operation: "sum", PageSize: 500, TLS: scalers.TLS{Mode: "disable"},
			},
		},
		{
			// The host, credentials included, may come from the TriggerAuthentication.
			name:     "host-from-auth",
			metadata: map[string]string{"queueName": "orders", "timeout": "3s"},
			auth:     map[string]string{"host": "amqps://u:p@rabbit/"},
			want: metadata{
				Host: "amqps://u:p@rabbit/", QueueName: "orders", Mode: "QueueLength", Value: 20, Protocol: "amqp",
				Operation: "sum", PageSize: 500, TLS: scalers.TLS{Mode: "disable"}, Timeout: millis(3 * time.Second),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(t, tc.metadata, tc.auth)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want, cmp.AllowUnexported(metadata{})); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

// Bad values and contradictions are refused; each message names the keys at fault.
func TestParseMetadataErrors(t *testing.T) {
	amqpHost, httpHost := "amqp://rabbit/", "http://rabbit:15672/"
	tests := []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		// want are substrings of the error.
		want []string
	}{
		{name: "missing-host-and-queue", metadata: map[string]string{}, want: []string{"host: is required", "queueName: is required"}},
		{name: "bad-scheme", metadata: md("tcp://rabbit:5672"), want: []string{"host: scheme must be amqp, amqps, http or https"}},
		{name: "no-host-name", metadata: md("amqp:///vhost"), want: []string{"host: has no host name"}},
		{name: "password-in-metadata-host", metadata: md("amqp://guest:guest@rabbit/"), want: []string{"host: carries a password", "TriggerAuthentication"}},
		{name: "password-in-metadata", metadata: md(amqpHost, "username", "u", "password", "p"), want: []string{"password: is a secret"}},
		{name: "unknown-key", metadata: md(amqpHost, "queuName", "x"), want: []string{`queuName: unknown key (did you mean "queueName"?)`}},
		{name: "bad-mode", metadata: md(amqpHost, "mode", "DeliverGetRate", "value", "1"), want: []string{"mode: must be one of QueueLength, MessageRate"}},
		{name: "page-size-above-500", metadata: md(httpHost, "pageSize", "501"), want: []string{"pageSize: must be at most 500"}},
		{name: "page-size-zero", metadata: md(httpHost, "pageSize", "0"), want: []string{"pageSize: must be at least 1"}},
		{name: "bad-timeout", metadata: md(httpHost, "timeout", "soon"), want: []string{"timeout: must be a number of milliseconds or a duration"}},
		{name: "value-zero", metadata: md(httpHost, "mode", "QueueLength", "value", "0"), want: []string{"value: must be at least 0.001"}},
		{name: "mode-without-value", metadata: md(httpHost, "mode", "MessageRate"), want: []string{"mode is MessageRate but value is not set"}},
		{name: "value-without-mode", metadata: md(httpHost, "value", "5"), want: []string{"value is set but mode is not"}},
		{name: "queue-length-and-mode", metadata: md(httpHost, "queueLength", "5", "mode", "QueueLength", "value", "5"), want: []string{"queueLength", "mode and value, not both"}},
		{name: "protocol-against-scheme", metadata: md(amqpHost, "protocol", "http"), want: []string{"protocol is http but host's scheme is amqp"}},
		{name: "message-rate-over-amqp", metadata: md(amqpHost, "mode", "MessageRate", "value", "5"), want: []string{"mode MessageRate needs protocol http"}},
		{name: "regex-over-amqp", metadata: md(amqpHost, "useRegex", "true"), want: []string{"useRegex needs protocol http"}},
		{name: "exclude-unacked-over-amqp", metadata: md(amqpHost, "excludeUnacknowledged", "true"), want: []string{"excludeUnacknowledged needs protocol http"}},
		{name: "exclude-unacked-with-rate", metadata: md(httpHost, "excludeUnacknowledged", "true", "mode", "MessageRate", "value", "1"), want: []string{"excludeUnacknowledged applies to mode QueueLength, not MessageRate"}},
		{name: "operation-without-regex", metadata: md(httpHost, "operation", "avg"), want: []string{"operation avg needs useRegex: true"}},
		{name: "bad-regex", metadata: map[string]string{"host": httpHost, "queueName": "orders(", "useRegex": "true"}, want: []string{"queueName is not a regular expression"}},
		{name: "username-without-password", metadata: md(amqpHost, "username", "u"), want: []string{"username and password go together"}},
		{name: "tls-enable-without-tls-scheme", metadata: md(amqpHost, "tls", "enable"), want: []string{"tls is enable but host's scheme is amqp; use amqps://"}},
		{name: "unsafe-ssl-without-tls-scheme", metadata: md(httpHost, "unsafeSsl", "true"), want: []string{"unsafeSsl is set but host's scheme is http, without TLS; use https://"}},
		{name: "cert-without-key", metadata: md("amqps://rabbit/"), auth: map[string]string{"cert": "C"}, want: []string{"cert and key go together"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (NewPool()).New(scalers.Config{TriggerName: "q", Metadata: tc.metadata, Auth: tc.auth})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "guest:guest") {
				t.Errorf("error %q shows credentials", err)
			}
		})
	}
}

// The endpoint a trigger reads: KEDA's URL layout, with vhostName and username/password overriding it.
func TestEndpoint(t *testing.T) {
	tests := []struct {
		name string
		md   map[string]string
		auth map[string]string
		want endpoint
	}{
		{name: "amqp-root", md: md("amqp://rabbit/"), want: endpoint{protocol: "amqp", server: "amqp://rabbit:5672", vhost: "/", username: "guest", password: "guest"}},
		{name: "amqp-escaped-root", md: md("amqp://rabbit:5673/%2F"), want: endpoint{protocol: "amqp", server: "amqp://rabbit:5673", vhost: "/", username: "guest", password: "guest"}},
		{name: "amqp-vhost-and-credentials", auth: map[string]string{"host": "amqp://u:p@rabbit/shop%2Feu"}, md: map[string]string{"queueName": "q"},
			want: endpoint{protocol: "amqp", server: "amqp://rabbit:5672", vhost: "shop/eu", username: "u", password: "p"}},
		{name: "amqps-default-port", md: md("amqps://rabbit/v"), want: endpoint{protocol: "amqp", server: "amqps://rabbit:5671", tls: true, vhost: "v", username: "guest", password: "guest"}},
		{name: "http-root", md: md("http://rabbit:15672/"), want: endpoint{protocol: "http", server: "http://rabbit:15672", vhost: "/"}},
		{name: "http-no-slash", md: md("http://rabbit:15672"), want: endpoint{protocol: "http", server: "http://rabbit:15672", vhost: "/"}},
		{name: "http-prefix-and-vhost", md: md("http://rabbit/mgmt/shop"), want: endpoint{protocol: "http", server: "http://rabbit:80/mgmt", vhost: "shop"}},
		{name: "https-prefix-root-vhost", md: md("https://rabbit/mgmt/"), want: endpoint{protocol: "http", server: "https://rabbit:443/mgmt", tls: true, vhost: "/"}},
		{name: "vhost-name-and-credentials-override", md: md("http://rabbit:15672/shop", "vhostName", "other", "username", "ebb"),
			auth: map[string]string{"password": "pw"}, want: endpoint{protocol: "http", server: "http://rabbit:15672", vhost: "other", username: "ebb", password: "pw"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parse(t, tc.md, tc.auth)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.endpoint()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want, cmp.AllowUnexported(endpoint{})); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

// Triggers share an AMQP connection per server, credentials and vhost, and an HTTP client per management
// API and credentials (with one reader per vhost); closing the last trigger of one releases it. New does no
// I/O, so this needs no server.
func TestPoolSharing(t *testing.T) {
	p := NewPool()
	t.Cleanup(p.Close)
	open := map[string]scalers.Scaler{}
	steps := []struct {
		name  string
		host  string // in the TriggerAuthentication
		md    map[string]string
		close string
		// wantAMQP and wantHTTP count connections and HTTP clients; wantVhosts the vhost readers.
		wantAMQP, wantHTTP, wantVhosts int
	}{
		{name: "a1", host: "amqp://u:p@rabbit/", md: map[string]string{"queueName": "a"}, wantAMQP: 1},
		{name: "a2-other-queue", host: "amqp://u:p@rabbit:5672/%2F", md: map[string]string{"queueName": "b", "value": "3", "mode": "QueueLength"}, wantAMQP: 1},
		{name: "a3-other-vhost", host: "amqp://u:p@rabbit/shop", md: map[string]string{"queueName": "a"}, wantAMQP: 2},
		{name: "a4-other-password", host: "amqp://u:other@rabbit/", md: map[string]string{"queueName": "a"}, wantAMQP: 3},
		{name: "h1", host: "http://u:p@rabbit:15672/", md: map[string]string{"queueName": "a"}, wantAMQP: 3, wantHTTP: 1, wantVhosts: 1},
		{name: "h2-other-vhost", host: "http://u:p@rabbit:15672/shop", md: map[string]string{"queueName": "a"}, wantAMQP: 3, wantHTTP: 1, wantVhosts: 2},
		{name: "h3-regex", host: "http://u:p@rabbit:15672/", md: map[string]string{"queueName": ".*", "useRegex": "true"}, wantAMQP: 3, wantHTTP: 1, wantVhosts: 2},
		{name: "h4-other-user", host: "http://v:p@rabbit:15672/", md: map[string]string{"queueName": "a"}, wantAMQP: 3, wantHTTP: 2, wantVhosts: 3},
		{name: "close-a1", close: "a1", wantAMQP: 3, wantHTTP: 2, wantVhosts: 3},
		{name: "close-a2", close: "a2-other-queue", wantAMQP: 2, wantHTTP: 2, wantVhosts: 3},
		{name: "close-h2", close: "h2-other-vhost", wantAMQP: 2, wantHTTP: 2, wantVhosts: 2},
		{name: "close-h4", close: "h4-other-user", wantAMQP: 2, wantHTTP: 1, wantVhosts: 1},
		{name: "close-h1", close: "h1", wantAMQP: 2, wantHTTP: 1, wantVhosts: 1},
		{name: "close-h3", close: "h3-regex", wantAMQP: 2},
		{name: "close-a3", close: "a3-other-vhost", wantAMQP: 1},
		{name: "close-a4", close: "a4-other-password"},
	}
	for _, st := range steps {
		if st.close != "" {
			if err := open[st.close].(io.Closer).Close(); err != nil {
				t.Fatal(err)
			}
			delete(open, st.close)
		} else {
			s, err := p.New(scalers.Config{TriggerName: "t", Metadata: st.md, Auth: map[string]string{"host": st.host}})
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			open[st.name] = s
		}
		p.mu.Lock()
		gotAMQP, gotHTTP, gotVhosts := len(p.amqp), len(p.mgmt), 0
		for _, m := range p.mgmt {
			gotVhosts += len(m.vhosts)
		}
		p.mu.Unlock()
		if gotAMQP != st.wantAMQP || gotHTTP != st.wantHTTP || gotVhosts != st.wantVhosts {
			t.Errorf("after %s: %d AMQP servers, %d HTTP clients, %d vhost readers; want %d, %d, %d",
				st.name, gotAMQP, gotHTTP, gotVhosts, st.wantAMQP, st.wantHTTP, st.wantVhosts)
		}
	}
}

func TestParamsDescribeEveryKey(t *testing.T) {
	params, err := Params()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range params {
		names = append(names, p.Name)
	}
	want := []string{"host", "queueName", "mode", "value", "queueLength", "activationValue", "protocol", "vhostName", "useRegex",
		"excludeUnacknowledged", "operation", "pageSize", "timeout", "username", "password", "tls", "ca", "cert", "key", "unsafeSsl"}
	if diff := cmp.Diff(names, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

// The list's items decode whatever shape the columns filter leaves a details object in.
func TestDecodeQueueItem(t *testing.T) {
	var p listPage
	raw := `{"items":[{"name":"a","messages":3,"messages_details":[],"message_stats":{"publish_details":{"rate":2.5,"avg_rate":1.5}}},
		{"name":"b","arguments":{"x-dead-letter-exchange":"dlx"}}],"page":1,"page_count":1,"total_count":2}`
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	got := derive(p.Items)
	want := map[string]QueueStats{
		"a": {Messages: 3, PublishRate: 1.5, RawPublishRate: 2.5},
		"b": {DeadLetterExchange: "dlx", HasDeadLetterExchange: true},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

package kafka

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/scalers"
)

// base is the least a kafka trigger needs.
func base(extra ...string) map[string]string {
	md := map[string]string{"bootstrapServers": "127.0.0.1:1", "consumerGroup": "g"}
	for i := 0; i+1 < len(extra); i += 2 {
		md[extra[i]] = extra[i+1]
	}
	return md
}

// conn is a Connection, for comparing parsed metadata.
func conn(sasl string, cred scalers.Credentials, tls scalers.TLS, servers ...string) Connection {
	return Connection{BootstrapServers: servers, SASL: sasl, Credentials: cred, TLS: tls}
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		want     metadata
	}{
		{
			// KEDA's defaults.
			name:     "defaults",
			metadata: base(),
			want: metadata{
				Connection:    conn("none", scalers.Credentials{}, scalers.TLS{Mode: "disable"}, "127.0.0.1:1"),
				ConsumerGroup: "g", LagThreshold: 10, ActivationLagThreshold: 0, OffsetResetPolicy: "latest",
			},
		},
		{
			name: "everything",
			metadata: map[string]string{
				"bootstrapServers": "a:9092, b:9092", "consumerGroup": "orders", "topic": "orders",
				"partitionLimitation": "1,2,10-12", "lagThreshold": "2.5", "activationLagThreshold": "7",
				"offsetResetPolicy": "earliest", "excludePersistentLag": "true", "scaleToZeroOnInvalidOffset": "true",
				"ensureEvenDistributionOfPartitions": "true", "sasl": "scram_sha512", "username": "ebb", "tls": "enable",
				"unsafeSsl": "true",
			},
			auth: map[string]string{"password": "s3cret", "ca": "CA", "cert": "CERT", "key": "KEY"},
			want: metadata{
				Connection: conn("scram_sha512", scalers.Credentials{Username: "ebb", Password: "s3cret"},
					scalers.TLS{Mode: "enable", CA: "CA", Cert: "CERT", Key: "KEY", UnsafeSSL: true}, "a:9092", "b:9092"),
				ConsumerGroup: "orders", Topic: "orders",
				PartitionLimitation: partitionSet{1, 2, 10, 11, 12}, LagThreshold: 2.5, ActivationLagThreshold: 7,
				OffsetResetPolicy: "earliest", ExcludePersistentLag: true, ScaleToZeroOnInvalidOffset: true,
				EnsureEvenDistributionOfPartitions: true,
			},
		},
		{
			name:     "allow-idle-consumers",
			metadata: base("allowIdleConsumers", "true"),
			want: metadata{
				Connection:    conn("none", scalers.Credentials{}, scalers.TLS{Mode: "disable"}, "127.0.0.1:1"),
				ConsumerGroup: "g", LagThreshold: 10, OffsetResetPolicy: "latest", AllowIdleConsumers: true,
			},
		},
		{
			name:     "limit-to-partitions-with-lag",
			metadata: base("limitToPartitionsWithLag", "true"),
			want: metadata{
				Connection:    conn("none", scalers.Credentials{}, scalers.TLS{Mode: "disable"}, "127.0.0.1:1"),
				ConsumerGroup: "g", LagThreshold: 10, OffsetResetPolicy: "latest", LimitToPartitionsWithLag: true,
			},
		},
		{
			// The TriggerAuthentication may carry any parameter, and wins over metadata.
			name:     "auth-wins",
			metadata: base("sasl", "plaintext", "username", "from-metadata"),
			auth:     map[string]string{"username": "from-auth", "password": "p", "sasl": "scram_sha256"},
			want: metadata{
				Connection:    conn("scram_sha256", scalers.Credentials{Username: "from-auth", Password: "p"}, scalers.TLS{Mode: "disable"}, "127.0.0.1:1"),
				ConsumerGroup: "g", LagThreshold: 10, OffsetResetPolicy: "latest",
			},
		},
		{
			name:     "partition-limitation-unsorted-overlapping",
			metadata: base("topic", "t", "partitionLimitation", " 3, 1-2 ,3,2-4 "),
			want: metadata{
				Connection:    conn("none", scalers.Credentials{}, scalers.TLS{Mode: "disable"}, "127.0.0.1:1"),
				ConsumerGroup: "g", Topic: "t",
				PartitionLimitation: partitionSet{1, 2, 3, 4}, LagThreshold: 10, OffsetResetPolicy: "latest",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got metadata
			if err := scalers.Parse(tc.metadata, tc.auth, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("parsed metadata (-got +want):\n%s", diff)
			}
		})
	}
}

// The metric a trigger serves comes from lagThreshold and activationLagThreshold.
func TestMetrics(t *testing.T) {
	pool := NewPool()
	t.Cleanup(pool.Close)
	s, err := pool.New(scalers.Config{TriggerName: "lag", Metadata: base("topic", "t", "lagThreshold", "50", "activationLagThreshold", "5")})
	if err != nil {
		t.Fatal(err)
	}
	want := []scalers.MetricSpec{{Target: 50, Activation: 5}}
	if diff := cmp.Diff(s.Metrics(), want); diff != "" {
		t.Errorf("Metrics (-got +want):\n%s", diff)
	}
}

// Bad metadata is refused by the factory, before any client exists, with messages naming every key at fault.
func TestNewRejects(t *testing.T) {
	tests := []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		// wantKeys must all appear in the message, and so must wantWords.
		wantKeys  []string
		wantWords []string
	}{
		// Required keys.
		{name: "no-bootstrap-servers", metadata: map[string]string{"consumerGroup": "g"}, wantKeys: []string{"bootstrapServers"}, wantWords: []string{"required"}},
		{name: "no-consumer-group", metadata: map[string]string{"bootstrapServers": "a:9092"}, wantKeys: []string{"consumerGroup"}, wantWords: []string{"required"}},
		{name: "blank-consumer-group", metadata: base("consumerGroup", "  "), wantKeys: []string{"consumerGroup"}, wantWords: []string{"required"}},

		// Bad values.
		{name: "lag-threshold-zero", metadata: base("lagThreshold", "0"), wantKeys: []string{"lagThreshold"}, wantWords: []string{"at least 0.001"}},
		{name: "lag-threshold-word", metadata: base("lagThreshold", "ten"), wantKeys: []string{"lagThreshold"}, wantWords: []string{"number", `"ten"`}},
		{name: "activation-negative", metadata: base("activationLagThreshold", "-1"), wantKeys: []string{"activationLagThreshold"}, wantWords: []string{"at least 0"}},
		{name: "offset-reset-policy", metadata: base("offsetResetPolicy", "newest"), wantKeys: []string{"offsetResetPolicy"}, wantWords: []string{"latest, earliest", `"newest"`}},
		{name: "bool", metadata: base("allowIdleConsumers", "yes"), wantKeys: []string{"allowIdleConsumers"}, wantWords: []string{"true or false"}},
		{name: "sasl-mechanism", metadata: base("sasl", "gssapi"), wantKeys: []string{"sasl"}, wantWords: []string{"plaintext", "scram_sha256", "scram_sha512", `"gssapi"`}},
		{name: "tls-value", metadata: base("tls", "true"), wantKeys: []string{"tls"}, wantWords: []string{"enable, disable"}},
		{
			name:      "every-problem-at-once",
			metadata:  map[string]string{"lagThreshold": "0", "offsetResetPolicy": "newest", "lagTreshold": "5"},
			wantKeys:  []string{"bootstrapServers", "consumerGroup", "lagThreshold", "offsetResetPolicy", "lagTreshold"},
			wantWords: []string{"required", "at least 0.001", "latest, earliest", `did you mean "lagThreshold"`},
		},

		// partitionLimitation syntax.
		{name: "partition-range-backwards", metadata: base("topic", "t", "partitionLimitation", "12-10"), wantKeys: []string{"partitionLimitation"}, wantWords: []string{`"12-10"`, "lower to a higher"}},
		{name: "partition-range-open", metadata: base("topic", "t", "partitionLimitation", "1,3-"), wantKeys: []string{"partitionLimitation"}, wantWords: []string{`"3-"`}},
		{name: "partition-range-three-parts", metadata: base("topic", "t", "partitionLimitation", "1-2-3"), wantKeys: []string{"partitionLimitation"}, wantWords: []string{`"1-2-3"`}},
		{name: "partition-negative", metadata: base("topic", "t", "partitionLimitation", "-1"), wantKeys: []string{"partitionLimitation"}, wantWords: []string{`"-1"`, "partition number"}},
		{name: "partition-word", metadata: base("topic", "t", "partitionLimitation", "1,two"), wantKeys: []string{"partitionLimitation"}, wantWords: []string{`"two"`, "partition number"}},
		{name: "partition-range-huge", metadata: base("topic", "t", "partitionLimitation", "0-100000"), wantKeys: []string{"partitionLimitation"}, wantWords: []string{"larger than any topic"}},
		// bootstrapServers are host:port: a scheme or user info (a password in metadata, which would then be
		// in every connection error) is refused, and the message does not repeat what is before the @.
		{name: "bootstrap-user-info", metadata: base("bootstrapServers", "kafka-0:9092, u:hunter2-secret@kafka-1:9092"), wantKeys: []string{"bootstrapServers"}, wantWords: []string{"host:port", "...@kafka-1:9092"}},
		{name: "bootstrap-scheme", metadata: base("bootstrapServers", "sasl://kafka:9092"), wantKeys: []string{"bootstrapServers"}, wantWords: []string{"host:port", `"sasl://kafka:9092"`}},
		{name: "bootstrap-port-range", metadata: base("bootstrapServers", "[::1]:99999"), wantKeys: []string{"bootstrapServers"}, wantWords: []string{"host:port", `"[::1]:99999"`}},
		// Ranges that each pass but together list millions (a few bytes each would otherwise cost megabytes).
		{name: "partition-ranges-huge", metadata: base("topic", "t", "partitionLimitation", strings.Repeat("0-65536,", 30)), wantKeys: []string{"partitionLimitation"}, wantWords: []string{"more than", "partitions"}},

		// Contradictory combinations: the message names both keys.
		{name: "partition-limitation-without-topic", metadata: base("partitionLimitation", "1"), wantKeys: []string{"partitionLimitation", "topic"}},
		{name: "idle-and-limit", metadata: base("allowIdleConsumers", "true", "limitToPartitionsWithLag", "true"), wantKeys: []string{"allowIdleConsumers", "limitToPartitionsWithLag"}},
		{name: "even-and-idle", metadata: base("ensureEvenDistributionOfPartitions", "true", "allowIdleConsumers", "true"), wantKeys: []string{"ensureEvenDistributionOfPartitions", "allowIdleConsumers"}},
		{name: "even-and-limit", metadata: base("ensureEvenDistributionOfPartitions", "true", "limitToPartitionsWithLag", "true"), wantKeys: []string{"ensureEvenDistributionOfPartitions", "limitToPartitionsWithLag"}},
		{name: "sasl-without-username", metadata: base("sasl", "plaintext"), auth: map[string]string{"password": "p"}, wantKeys: []string{"sasl", "username"}},
		{name: "sasl-without-password", metadata: base("sasl", "scram_sha256", "username", "u"), wantKeys: []string{"sasl", "password", "TriggerAuthentication"}},
		{name: "username-without-sasl", metadata: base("username", "u"), wantKeys: []string{"username", "sasl"}, wantWords: []string{"username is set"}},
		{name: "password-without-sasl", metadata: base(), auth: map[string]string{"password": "p"}, wantKeys: []string{"password", "sasl"}, wantWords: []string{"password is set"}},
		{name: "cert-without-key", metadata: base("tls", "enable"), auth: map[string]string{"cert": "C"}, wantKeys: []string{"cert", "key"}},
		{name: "key-without-cert", metadata: base("tls", "enable"), auth: map[string]string{"key": "K"}, wantKeys: []string{"cert", "key"}},
		{name: "ca-without-tls", metadata: base(), auth: map[string]string{"ca": "CA"}, wantKeys: []string{"ca", "tls"}},
		{name: "unsafe-ssl-without-tls", metadata: base("unsafeSsl", "true"), wantKeys: []string{"unsafeSsl", "tls"}},
		{name: "client-cert-without-tls", metadata: base(), auth: map[string]string{"cert": "C", "key": "K"}, wantKeys: []string{"cert", "key", "tls"}},

		// Secrets come from a TriggerAuthentication only.
		{name: "password-in-metadata", metadata: base("sasl", "plaintext", "username", "u", "password", "p"), wantKeys: []string{"password"}, wantWords: []string{"secret", "TriggerAuthentication"}},
		{name: "ca-in-metadata", metadata: base("tls", "enable", "ca", "CA"), wantKeys: []string{"ca"}, wantWords: []string{"secret", "TriggerAuthentication"}},
		{name: "cert-in-metadata", metadata: base("tls", "enable", "cert", "C"), auth: map[string]string{"key": "K"}, wantKeys: []string{"cert"}, wantWords: []string{"secret", "TriggerAuthentication"}},
		{name: "key-in-metadata", metadata: base("tls", "enable", "key", "K"), auth: map[string]string{"cert": "C"}, wantKeys: []string{"key"}, wantWords: []string{"secret", "TriggerAuthentication"}},

		// Unknown keys.
		{name: "typo", metadata: base("lagTreshold", "5"), wantKeys: []string{"lagTreshold"}, wantWords: []string{"unknown key", `did you mean "lagThreshold"`}},
		{name: "wrong-case", metadata: base("consumergroup", "g2"), wantKeys: []string{"consumergroup"}, wantWords: []string{`did you mean "consumerGroup"`}},
		{name: "plural", metadata: base("topics", "a,b"), wantKeys: []string{"topics"}, wantWords: []string{`did you mean "topic"`}},
		{name: "keda-key-ebb-lacks", metadata: base("version", "2.8.0"), wantKeys: []string{"version"}, wantWords: []string{"unknown key; known keys:", "lagThreshold"}},
		{name: "unknown-auth-parameter", metadata: base("sasl", "plaintext", "username", "u"), auth: map[string]string{"password": "p", "passwrd": "p"}, wantKeys: []string{"passwrd"}, wantWords: []string{"TriggerAuthentication", `did you mean "password"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := NewPool()
			t.Cleanup(pool.Close)
			s, err := pool.New(scalers.Config{TriggerName: "lag", Metadata: tc.metadata, Auth: tc.auth})
			if err == nil {
				_ = s.(*Scaler).Close()
				t.Fatal("New accepted the trigger")
			}
			if n := pool.Clusters(); n != 0 {
				t.Errorf("a refused trigger left %d clients in the pool", n)
			}
			for _, w := range append(tc.wantKeys, tc.wantWords...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Secrets are not echoed in error messages.
func TestNewDoesNotEchoSecrets(t *testing.T) {
	pool := NewPool()
	t.Cleanup(pool.Close)
	_, err := pool.New(scalers.Config{TriggerName: "lag", Metadata: base("password", "hunter2-secret", "ca", "----BEGIN CA")})
	if err == nil {
		t.Fatal("New accepted a password in metadata")
	}
	for _, secret := range []string{"hunter2-secret", "BEGIN CA"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows the secret %q", err, secret)
		}
	}
}

// docs/scalers/kafka.md has a row for every parameter, with its default and, for a secret, says so.
func TestDocsListEveryParameter(t *testing.T) {
	doc, err := os.ReadFile("../../docs/scalers/kafka.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if name, rest, ok := strings.Cut(line, "` |"); ok && strings.HasPrefix(name, "| `") {
			rows[strings.TrimPrefix(name, "| `")] = rest
		}
	}
	params, err := scalers.Describe(metadata{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range params {
		row, ok := rows[p.Name]
		switch {
		case !ok:
			t.Errorf("docs/scalers/kafka.md has no row for %s", p.Name)
		case p.Default != "" && !strings.Contains(row, "`"+p.Default+"`"):
			t.Errorf("docs/scalers/kafka.md: %s: default %q not in %q", p.Name, p.Default, row)
		case p.Secret && !strings.Contains(row, "*Secret.*"):
			t.Errorf("docs/scalers/kafka.md: %s is a secret, and its row does not say so", p.Name)
		case !p.Optional && p.Default == "" && !p.Secret && !strings.Contains(row, "required"):
			t.Errorf("docs/scalers/kafka.md: %s is required, and its row does not say so", p.Name)
		}
		delete(rows, p.Name)
	}
	for name := range rows {
		if name != "Parameter" && !strings.HasPrefix(name, "Err") {
			t.Errorf("docs/scalers/kafka.md documents %s, which is no parameter", name)
		}
	}
}

package builtin_test

import (
	"errors"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/builtin"
)

// FuzzTriggerTypes builds triggers and dead-letter readers of every type of the table from fuzzed
// metadata and TriggerAuthentication parameters (key=value lines), as the controller does. Building one
// opens no connection (clients connect on the first sample), so this needs no broker. Whatever the input:
// no panic; the same answer twice; an error whose every problem names a key of the type or of the input,
// and never echoes a secret key's value; or a trigger whose metrics have a finite positive target and a
// finite non-negative activation.
func FuzzTriggerTypes(f *testing.F) {
	for _, s := range seeds {
		f.Add(s.typ, s.deadLetter, s.md, s.auth)
	}
	types := builtin.Types()
	deadLetters := map[string]bool{}
	for _, n := range builtin.Registry(builtin.Options{}).DeadLetterTypes() {
		deadLetters[n] = true
	}
	f.Fuzz(func(t *testing.T, typ uint8, deadLetter bool, md, auth string) {
		row := types[int(typ)%len(types)]
		params, err := row.Params()
		if err != nil {
			t.Fatal(err)
		}
		metadata, secrets := keyValues(md), keyValues(auth)
		if !deadLetters[row.Name] {
			deadLetter = false // cron: a trigger instead
		}
		build := func(md, auth map[string]string) (metrics []scalers.MetricSpec, err error) {
			tt := row.New(builtin.Options{})
			defer closeType(tt)
			cfg := scalers.Config{TriggerName: "t", Metadata: md, Auth: auth}
			if deadLetter {
				r, err := tt.(scalers.DeadLetterType).NewDeadLetter(cfg)
				if err != nil {
					return nil, err
				}
				defer closeIt(r)
				if r.Name() == "" {
					return nil, errors.New("a dead-letter reader without a name")
				}
				return []scalers.MetricSpec{{Target: 1}}, nil
			}
			s, err := tt.New(cfg)
			if err != nil {
				return nil, err
			}
			defer closeIt(s)
			return s.Metrics(), nil
		}
		metrics, err := build(metadata, secrets)
		_, err2 := build(metadata, secrets)
		if errText(err) != errText(err2) {
			t.Fatalf("%s: two builds of the same input disagree:\n%s\n%s", row.Name, errText(err), errText(err2))
		}
		if err != nil {
			checkProblems(t, row.Name, err, params, metadata, secrets)
			checkSecretsNotEchoed(t, row.Name, err, params, metadata, secrets, func(md, auth map[string]string) error {
				_, err := build(md, auth)
				return err
			})
			return
		}
		// A broker address in metadata carries no password: metadata is not secret.
		for _, k := range addressKeys {
			for item := range strings.SplitSeq(metadata[k], ",") {
				if pw := urlPassword(strings.TrimSpace(item)); pw != "" {
					t.Fatalf("%s: accepted %s %q, with a password in metadata", row.Name, k, metadata[k])
				}
			}
		}
		if !deadLetter && len(metrics) == 0 {
			t.Fatalf("%s: a trigger that serves no metric", row.Name)
		}
		for _, m := range metrics {
			if !(m.Target > 0) || math.IsInf(m.Target, 0) || !(m.Activation >= 0) || math.IsInf(m.Activation, 0) {
				t.Fatalf("%s: metric %q has target %v and activation %v; want a finite target above 0 and a finite activation of at least 0", row.Name, m.Name, m.Target, m.Activation)
			}
		}
	})
}

// seeds are a valid configuration of each type, and a few of its edges, for FuzzTriggerTypes. typ is the
// row of builtin.Types, modulo its length (0 cron, 1 kafka, 2 nats-jetstream, 3 rabbitmq).
var seeds = []struct {
	typ        uint8
	deadLetter bool
	md, auth   string
}{
	{0, false, "timezone=Europe/Berlin\nstart=0 9 * * 1-5\nend=0 17 * * 1-5\ndesiredReplicas=4", ""},
	{0, false, "timezone=UTC\nstart=*/5 * * * *\nend=0 0 29 2 *\ndesiredReplicas=1", ""},
	{0, false, "timezone=America/New_York\nstart=30 2 1,15 * MON\nend=0 18 * * *\ndesiredReplicas=2", ""},
	{1, false, "bootstrapServers=kafka:9092,kafka2:9092\nconsumerGroup=g\ntopic=orders\nlagThreshold=50\nactivationLagThreshold=1\npartitionLimitation=0,2-5\nsasl=scram_sha512\nusername=u", "password=hunter2hunter2"},
	{1, false, "bootstrapServers=kafka:9092\nconsumerGroup=g\ntls=enable", "ca=-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\ncert=c\nkey=k"},
	{1, true, "bootstrapServers=kafka:9092\ntopic=orders.dlq", ""},
	{2, false, "natsServerURL=nats://nats:4222\nstream=orders\nconsumer=workers\nlagThreshold=10", "username=u\npassword=pw-secret-1"},
	{2, false, "natsServerMonitoringEndpoint=nats:8222\nstream=orders\nconsumer=workers\naccount=$G\nuseHttps=true", ""},
	{2, true, "natsServerURL=tls://nats:4222\nstream=dlq", "nkeySeed=SUAPLACEHOLDERSEED"},
	{1, false, "bootstrapServers=u:p4ssw0rd@kafka:9092\nconsumerGroup=g", ""},
	{2, false, "natsServerMonitoringEndpoint=u:p4ssw0rd@nats:8222\nstream=orders\nconsumer=workers", ""},
	{3, false, "host=amqp://rabbitmq:5672/vhost\nqueueName=orders\nmode=QueueLength\nvalue=20", "username=guest\npassword=guest-secret"},
	{3, false, "host=http://rabbitmq:15672/prefix/%2F\nqueueName=^orders-.*$\nuseRegex=true\noperation=max\nmode=MessageRate\nvalue=2.5\ntimeout=5s\npageSize=100", ""},
	{3, false, "queueName=orders", "host=amqps://u:p4ssw0rd@rabbitmq:5671/%2f"},
	{3, true, "queueName=work.dlq", "host=https://u:p4ssw0rd@rabbitmq:15671/"},
}

// addressKeys are the keys that name brokers, which would carry a password as URL user info.
var addressKeys = []string{"bootstrapServers", "host", "natsServerURL", "natsServerMonitoringEndpoint"}

// urlPassword is the password in s read as a URL, or as one without its scheme ("u:p@host:port").
func urlPassword(s string) string {
	if !strings.Contains(s, "@") {
		return ""
	}
	for _, try := range []string{s, "x://" + s} {
		if u, err := url.Parse(try); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				return pw
			}
		}
	}
	return ""
}

// closeType closes a trigger type's clients, as the controller does at shutdown.
func closeType(tt scalers.TriggerType) {
	if c, ok := tt.(interface{ Close() }); ok {
		c.Close()
	}
}

func closeIt(v any) {
	if c, ok := v.(io.Closer); ok {
		_ = c.Close()
	}
}

// keyValues reads key=value lines; a later line wins over an earlier one with the same key.
func keyValues(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// leaves lists the errors err joins (itself when it joins none).
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// checkProblems checks that every problem of err says something and names a key: a *FieldError's key is
// one the type takes or the input set, and its text names it; any other problem names some such key.
func checkProblems(t *testing.T, typ string, err error, params []scalers.Param, metadata, auth map[string]string) {
	t.Helper()
	keys := []string{}
	for _, p := range params {
		keys = append(keys, p.Name)
	}
	for k := range metadata {
		keys = append(keys, k)
	}
	for k := range auth {
		keys = append(keys, k)
	}
	for _, e := range leaves(err) {
		var fe *scalers.FieldError
		if errors.As(e, &fe) {
			if !slices.Contains(keys, fe.Key) || strings.TrimSpace(fe.Msg) == "" || !strings.Contains(fe.Error(), fe.Key) {
				t.Fatalf("%s: problem %q does not say what is wrong with a key of the type or the input (key %q)", typ, fe.Error(), fe.Key)
			}
			continue
		}
		if !slices.ContainsFunc(keys, func(k string) bool { return k != "" && strings.Contains(e.Error(), k) }) {
			t.Fatalf("%s: problem %q (%T) names no key", typ, e, e)
		}
	}
}

// checkSecretsNotEchoed checks that err does not carry the value of a secret key, from metadata or auth.
// A value may be a word the message uses anyway, so the check compares with the error build gives when the
// value is replaced by another: the secret must not appear more often.
func checkSecretsNotEchoed(t *testing.T, typ string, err error, params []scalers.Param, metadata, auth map[string]string, build func(md, auth map[string]string) error) {
	t.Helper()
	const canary = "CANARY-VALUE"
	// A value of a few characters (nkeySeed "0") may be in the message by chance, as a position ("at
	// input byte 0") that differs for another value: the check takes values of minSecret characters and more.
	const minSecret = 4
	for _, p := range params {
		if !p.Secret {
			continue
		}
		for _, m := range []map[string]string{metadata, auth} {
			v, ok := m[p.Name]
			if !ok || len(strings.TrimSpace(v)) < minSecret || strings.Contains(canary, v) {
				continue
			}
			m[p.Name] = canary
			other := build(metadata, auth)
			m[p.Name] = v
			if strings.Count(errText(err), v) > strings.Count(errText(other), v) {
				t.Fatalf("%s: the error echoes the value of secret key %s %q:\n%s", typ, p.Name, v, err)
			}
		}
	}
	// A URL's password (rabbitmq's host may carry one, from a TriggerAuthentication) is a secret too.
	for _, m := range []map[string]string{metadata, auth} {
		for k, v := range m {
			u, perr := url.Parse(strings.TrimSpace(v))
			if perr != nil || u.User == nil {
				continue
			}
			pw, ok := u.User.Password()
			if !ok || len(strings.TrimSpace(pw)) < minSecret || strings.Contains(canary, pw) || strings.Count(v, pw) != 1 {
				continue
			}
			m[k] = strings.Replace(v, pw, canary, 1)
			other := build(metadata, auth)
			m[k] = v
			if strings.Count(errText(err), pw) > strings.Count(errText(other), pw) {
				t.Fatalf("%s: the error echoes the password in %s %q:\n%s", typ, k, v, err)
			}
		}
	}
}

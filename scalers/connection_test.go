package scalers_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/scalers"
)

// Conn embeds the shared TLS and Credentials structs, as a trigger type's metadata does.
type Conn struct {
	Server string `ebb:"server"`
	scalers.Credentials
	scalers.TLS
}

// queue embeds Conn without rules of its own: Conn's Validate is inherited, and its problems are reported
// once.
type queue struct {
	Conn
	Queue string `ebb:"queue"`
}

func (c *Conn) Validate() error {
	if set := c.TLS.Set(); !c.Enabled() && len(set) > 0 {
		return &scalers.FieldError{Key: "tls", Msg: scalers.KeysAre(set) + " set but tls is disable"}
	}
	return nil
}

// The keys of embedded structs are the struct's, in their place.
func TestEmbeddedKeys(t *testing.T) {
	want := []string{"server", "username", "password", "tls", "ca", "cert", "key", "unsafeSsl", "queue"}
	if diff := cmp.Diff(scalers.Keys(queue{}), want); diff != "" {
		t.Errorf("keys (-got +want):\n%s", diff)
	}
	var got queue
	if err := scalers.Parse(map[string]string{"server": "s", "queue": "q", "username": "u", "tls": "enable"},
		map[string]string{"password": "p", "ca": "CA"}, &got); err != nil {
		t.Fatal(err)
	}
	want2 := queue{Conn: Conn{Server: "s", Credentials: scalers.Credentials{Username: "u", Password: "p"}, TLS: scalers.TLS{Mode: "enable", CA: "CA"}}, Queue: "q"}
	if diff := cmp.Diff(got, want2, cmp.AllowUnexported(queue{})); diff != "" {
		t.Errorf("parsed (-got +want):\n%s", diff)
	}
}

// The rules of every embedded struct run, each problem a FieldError naming its key, each reported once.
func TestEmbeddedRules(t *testing.T) {
	tests := []struct {
		name string
		md   map[string]string
		auth map[string]string
		want []string
	}{
		{name: "username-alone", md: map[string]string{"username": "u"}, want: []string{"password: username and password go together"}},
		{name: "password-alone", auth: map[string]string{"password": "p"}, want: []string{"username: username and password go together"}},
		{name: "cert-alone", md: map[string]string{"tls": "enable"}, auth: map[string]string{"cert": "C"}, want: []string{"key: cert and key go together"}},
		{name: "every-rule-once", md: map[string]string{"username": "u", "unsafeSsl": "true"}, auth: map[string]string{"key": "K"},
			want: []string{"password: username and password go together", "cert: cert and key go together", "tls: key, unsafeSsl are set but tls is disable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"server": "s", "queue": "q"}
			for k, v := range tc.md {
				md[k] = v
			}
			var q queue
			err := scalers.Parse(md, tc.auth, &q)
			got := keysOf(err)
			if len(got) != len(tc.want) {
				t.Fatalf("errors %q, want %d: %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d is %q, want it to start %q", i, got[i], w)
				}
			}
		})
	}
}

// A message that starts with its key is shown as it is.
func TestFieldErrorSentence(t *testing.T) {
	for _, tc := range []struct {
		err  scalers.FieldError
		want string
	}{
		{scalers.FieldError{Key: "mode", Msg: "mode is MessageRate but value is not set"}, "mode is MessageRate but value is not set"},
		{scalers.FieldError{Key: "value", Msg: "mode is MessageRate but value is not set"}, "value: mode is MessageRate but value is not set"},
		{scalers.FieldError{Key: "mode", Msg: "must be one of a, b"}, "mode: must be one of a, b"},
		{scalers.FieldError{Key: "cert", Msg: "cert and key: no PEM data", KeyFirst: true}, "cert: cert and key: no PEM data"},
		{scalers.FieldError{Key: "mode", Msg: "modern"}, "mode: modern"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v: Error() = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// ParseAs reports a key outside the struct as not a key of that use, with the keys it takes.
func TestParseAs(t *testing.T) {
	type reader struct {
		Server string `ebb:"server"`
		scalers.Credentials
	}
	var got reader
	err := scalers.ParseAs("a test reader", map[string]string{"server": "s", "lagThreshold": "5"}, map[string]string{"tls": "enable"}, &got)
	want := []string{
		"lagThreshold: not a key of a test reader; it takes server, username, password",
		"tls: not a key of a test reader; it takes server, username, password",
	}
	if diff := cmp.Diff(keysOf(err), want); diff != "" {
		t.Errorf("errors (-got +want):\n%s", diff)
	}
}

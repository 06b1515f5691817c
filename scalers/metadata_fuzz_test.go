package scalers_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/scalers"
)

// fuzzed declares a key of every kind the parser knows: required, enum, bounded and unbounded numbers of
// each sort, a duration, a bool, lists, a TextUnmarshaler, and the shared Credentials and TLS with their
// secrets and rules.
type fuzzed struct {
	Name   string        `ebb:"name"`
	Mode   string        `ebb:"mode,default=a,enum=a|b|c"`
	Count  int32         `ebb:"count,optional,min=1,max=100"`
	Size   uint16        `ebb:"size,default=8"`
	Ratio  float64       `ebb:"ratio,default=0.5,min=0,max=1"`
	Target float64       `ebb:"target,default=10,min=0.001"`
	Wait   time.Duration `ebb:"wait,default=3s,min=1ms,max=1m"`
	On     bool          `ebb:"on,default=false"`
	Hosts  []string      `ebb:"hosts,optional"`
	Ports  []int         `ebb:"ports,optional"`
	Word   word          `ebb:"word,optional"`
	scalers.Credentials
	scalers.TLS
}

// word is a TextUnmarshaler that takes letters only.
type word string

func (w *word) UnmarshalText(b []byte) error {
	if i := strings.IndexFunc(string(b), func(r rune) bool { return !unicode.IsLetter(r) }); i >= 0 {
		return fmt.Errorf("must be letters only, got %q", b)
	}
	*w = word(b)
	return nil
}

// FuzzParse feeds the shared parser metadata and TriggerAuthentication parameters, each written as
// key=value lines. Whatever the input: it does not panic; it returns an error made of *FieldError values
// that each name their key, or a config within every declared rule; it gives the same answer twice (a
// message that changed from one poll to the next would rewrite status forever); and no error echoes the
// value of a secret key.
func FuzzParse(f *testing.F) {
	f.Add("name=orders\nmode=b\ncount=5\nratio=0.25\nwait=10s\nhosts=a:1, b:2\nports=1,2\nword=abc", "username=u\npassword=hunter22")
	f.Add("name=x\ntarget=NaN", "")
	f.Add("name=x\ntarget=+Inf\nratio=-0", "")
	f.Add("name=x\nratio=1e309\ncount=101\nsize=70000\nwait=1h", "")
	f.Add("Name=x\npassword=inMetadata!", "tls=enable\ncert=CERTDATA")
	f.Add("name= \nmode=d\nports=1,x\nword=a1", "ca=-----BEGIN CERTIFICATE-----\nunknown=v")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, md, auth string) {
		metadata, params := keyValues(md), keyValues(auth)
		var got fuzzed
		err := scalers.Parse(metadata, params, &got)
		var again fuzzed
		err2 := scalers.Parse(metadata, params, &again)
		if errText(err) != errText(err2) {
			t.Fatalf("two parses of the same input disagree:\n%s\n%s", errText(err), errText(err2))
		}
		if err != nil {
			checkFieldErrors(t, err, []string{"name", "mode", "count", "size", "ratio", "target", "wait", "on", "hosts", "ports", "word", "username", "password", "tls", "ca", "cert", "key", "unsafeSsl"}, metadata, params)
			checkSecretsNotEchoed(t, err, []string{"password", "ca", "cert", "key"}, metadata, params, func(md, auth map[string]string) error {
				return scalers.Parse(md, auth, &fuzzed{})
			})
			return
		}
		checkValid(t, got)
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("two parses of the same input disagree (-first +second):\n%s", diff)
		}
	})
}

// checkValid checks that a parsed config keeps every rule its tags and Validate declare.
func checkValid(t *testing.T, got fuzzed) {
	t.Helper()
	var bad []string
	if got.Name == "" || got.Name != strings.TrimSpace(got.Name) {
		bad = append(bad, fmt.Sprintf("name %q", got.Name))
	}
	if got.Mode != "a" && got.Mode != "b" && got.Mode != "c" {
		bad = append(bad, fmt.Sprintf("mode %q", got.Mode))
	}
	if got.Count != 0 && (got.Count < 1 || got.Count > 100) {
		bad = append(bad, fmt.Sprintf("count %d", got.Count))
	}
	if !(got.Ratio >= 0 && got.Ratio <= 1) {
		bad = append(bad, fmt.Sprintf("ratio %v", got.Ratio))
	}
	if !(got.Target >= 0.001) || math.IsInf(got.Target, 0) {
		bad = append(bad, fmt.Sprintf("target %v (a threshold must be a finite number)", got.Target))
	}
	if got.Wait < time.Millisecond || got.Wait > time.Minute {
		bad = append(bad, fmt.Sprintf("wait %v", got.Wait))
	}
	for _, h := range got.Hosts {
		if h == "" || h != strings.TrimSpace(h) {
			bad = append(bad, fmt.Sprintf("host %q", h))
		}
	}
	if (got.Username == "") != (got.Password == "") || (got.Cert == "") != (got.Key == "") {
		bad = append(bad, "credentials or cert and key set apart")
	}
	if got.TLS.Mode != "disable" && got.TLS.Mode != "enable" {
		bad = append(bad, fmt.Sprintf("tls %q", got.TLS.Mode))
	}
	if len(bad) > 0 {
		t.Fatalf("parsed without error, but %s", strings.Join(bad, "; "))
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

// checkFieldErrors checks that every problem in err is a *FieldError with a message, on a key that the
// struct declares or the input set, and that its text names the key.
func checkFieldErrors(t *testing.T, err error, declared []string, metadata, auth map[string]string) {
	t.Helper()
	for _, e := range leaves(err) {
		var fe *scalers.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("problem %q (%T) is not a *scalers.FieldError", e, e)
		}
		_, inMD := metadata[fe.Key]
		_, inAuth := auth[fe.Key]
		if !inMD && !inAuth && !contains(declared, fe.Key) {
			t.Fatalf("problem %q is on key %q, which is neither declared nor in the input", e, fe.Key)
		}
		if strings.TrimSpace(fe.Msg) == "" || !strings.Contains(fe.Error(), fe.Key) {
			t.Fatalf("problem %q does not say what is wrong with key %q", fe.Error(), fe.Key)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkSecretsNotEchoed checks that err does not carry the value of a secret key, from metadata or auth.
// A value may be a word the message uses anyway ("key", a key name), so the check compares with the
// error parse gives when the value is replaced by another: the secret must not appear more often.
func checkSecretsNotEchoed(t *testing.T, err error, secrets []string, metadata, auth map[string]string, parse func(md, auth map[string]string) error) {
	t.Helper()
	const canary = "CANARY-VALUE"
	// A value of a few characters (nkeySeed "0") may be in the message by chance, as a position ("at
	// input byte 0") that differs for another value: the check takes values of minSecret characters and more.
	const minSecret = 4
	for _, k := range secrets {
		for _, m := range []map[string]string{metadata, auth} {
			v, ok := m[k]
			if !ok || len(strings.TrimSpace(v)) < minSecret || strings.Contains(canary, v) {
				continue
			}
			m[k] = canary
			other := parse(metadata, auth)
			m[k] = v
			if strings.Count(errText(err), v) > strings.Count(errText(other), v) {
				t.Fatalf("the error echoes the value of secret key %s %q:\n%s", k, v, err)
			}
		}
	}
}

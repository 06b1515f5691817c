package scalers

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
)

// TLS holds the TLS keys every trigger type takes, with KEDA's names: embed it in a metadata struct. Its
// own rule is that cert and key go together; what tls: disable means next to the other keys (Kafka: refuse
// them; RabbitMQ: the host's scheme decides) is the trigger type's rule, helped by Set.
type TLS struct {
	// Mode is the tls key: enable or disable.
	Mode      string `ebb:"tls,default=disable,enum=enable|disable"`
	CA        string `ebb:"ca,optional,secret"`
	Cert      string `ebb:"cert,optional,secret"`
	Key       string `ebb:"key,optional,secret"`
	UnsafeSSL bool   `ebb:"unsafeSsl,default=false"`
}

// Enabled is whether tls is enable.
func (t *TLS) Enabled() bool { return t.Mode == "enable" }

// Validate checks that cert and key are set together.
func (t *TLS) Validate() error {
	switch {
	case t.Cert != "" && t.Key == "":
		return &FieldError{Key: "key", Msg: "cert and key go together: set both for TLS client authentication, or neither"}
	case t.Key != "" && t.Cert == "":
		return &FieldError{Key: "cert", Msg: "cert and key go together: set both for TLS client authentication, or neither"}
	}
	return nil
}

// Set lists the keys other than tls that are set, sorted: those that mean nothing without TLS.
func (t *TLS) Set() []string {
	return setKeys(map[string]bool{"ca": t.CA != "", "cert": t.Cert != "", "key": t.Key != "", "unsafeSsl": t.UnsafeSSL})
}

// Config is the client TLS configuration these keys give (see TLSConfig).
func (t *TLS) Config() (*tls.Config, error) {
	return TLSConfig(t.CA, t.Cert, t.Key, t.UnsafeSSL)
}

// Credentials holds a user name and password, with KEDA's names: embed it in a metadata struct. The
// password is a secret, from a TriggerAuthentication only. Its own rule is that both are set, or neither.
type Credentials struct {
	Username string `ebb:"username,optional"`
	Password string `ebb:"password,optional,secret"`
}

// Set lists the keys that are set, sorted.
func (c *Credentials) Set() []string {
	return setKeys(map[string]bool{"password": c.Password != "", "username": c.Username != ""})
}

// Validate checks that username and password are set together.
func (c *Credentials) Validate() error {
	switch {
	case c.Username != "" && c.Password == "":
		return &FieldError{Key: "password", Msg: "username and password go together: set both (password from a TriggerAuthentication), or neither"}
	case c.Password != "" && c.Username == "":
		return &FieldError{Key: "username", Msg: "username and password go together: set both (password from a TriggerAuthentication), or neither"}
	}
	return nil
}

// KeysAre writes keys, as a sentence's subject: "a is", "a, b are"; "" for none.
func KeysAre(keys []string) string {
	switch len(keys) {
	case 0:
		return ""
	case 1:
		return keys[0] + " is"
	}
	return strings.Join(keys, ", ") + " are"
}

func setKeys(set map[string]bool) []string {
	var keys []string
	for k, ok := range set {
		if ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// JoinFieldErrors joins problems as errors.Join does; it exists so a Validate can collect *FieldError
// values in a slice of that type.
func JoinFieldErrors(errs []*FieldError) error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

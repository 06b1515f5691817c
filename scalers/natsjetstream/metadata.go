package natsjetstream

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/ebbscale/ebb/scalers"
)

// Connection is how a trigger reaches its server: the keys a trigger and a dead-letter stream share, from
// metadata or (wins) the TriggerAuthentication. Exactly one of natsServerURL (ebb's way, the client
// protocol) and natsServerMonitoringEndpoint (KEDA's way, the HTTP monitoring endpoint) is set.
type Connection struct {
	// ServerURL lists nats:// or tls:// URLs of one server set (a cluster's servers, or one).
	ServerURL []string `ebb:"natsServerURL,optional"`
	// MonitoringEndpoints lists host:port monitoring endpoints: KEDA takes one; ebb takes one per server
	// of a cluster, and reads each consumer from its leader's.
	MonitoringEndpoints []string `ebb:"natsServerMonitoringEndpoint,optional"`
	UseHTTPS            bool     `ebb:"useHttps,default=false"`
	// Account (a name, KEDA's "$G" when none is configured) or AccountID (the account's public key)
	// selects the account of the monitoring endpoint's answer.
	Account   string `ebb:"account,optional"`
	AccountID string `ebb:"accountID,optional"`
	// Token, NKeySeed (an nkey user's seed, SU...) and Creds (the content of a .creds file: a user JWT and
	// its seed) are the client protocol's other ways to log in.
	Token    string `ebb:"token,optional,secret"`
	NKeySeed string `ebb:"nkeySeed,optional,secret"`
	Creds    string `ebb:"creds,optional,secret"`
	scalers.Credentials
	scalers.TLS
}

// monitoring says whether the connection reads monitoring endpoints rather than the client protocol.
func (c *Connection) monitoring() bool { return len(c.MonitoringEndpoints) > 0 }

// Validate checks which keys go with which way of reaching the server; each message names its keys.
func (c *Connection) Validate() error {
	var errs []*scalers.FieldError
	switch {
	case len(c.ServerURL) > 0 && c.monitoring():
		errs = append(errs, &scalers.FieldError{Key: "natsServerURL", Msg: "natsServerURL and natsServerMonitoringEndpoint are both set; set one: natsServerURL reads the client protocol, natsServerMonitoringEndpoint the HTTP monitoring endpoint"})
		return scalers.JoinFieldErrors(errs)
	case len(c.ServerURL) == 0 && !c.monitoring():
		return &scalers.FieldError{Key: "natsServerURL", Msg: "required: set natsServerURL (nats:// or tls:// URLs) or natsServerMonitoringEndpoint (host:port of the monitoring endpoint)"}
	}
	logins := c.logins()
	if len(logins) > 1 {
		errs = append(errs, &scalers.FieldError{Key: logins[1], Msg: fmt.Sprintf("%s are set; a connection logs in one way: username and password, token, nkeySeed or creds", strings.Join(logins, ", "))})
	}
	if c.monitoring() {
		for _, e := range c.MonitoringEndpoints {
			if strings.ContainsAny(e, "/@") {
				errs = append(errs, &scalers.FieldError{Key: "natsServerMonitoringEndpoint", Msg: fmt.Sprintf("%q is not host:port: the scheme comes from useHttps, the path is /jsz, and the endpoint takes no credentials", redact(e))})
			}
		}
		if len(logins) > 0 {
			errs = append(errs, &scalers.FieldError{Key: logins[0], Msg: fmt.Sprintf("%s set but natsServerMonitoringEndpoint takes no credentials (the monitoring endpoint has none); use natsServerURL to log in", scalers.KeysAre(logins))})
		}
		if c.Account != "" && c.AccountID != "" {
			errs = append(errs, &scalers.FieldError{Key: "accountID", Msg: "account and accountID are both set; set one: account names the account, accountID is its public key"})
		}
		if c.Enabled() && !c.UseHTTPS {
			errs = append(errs, &scalers.FieldError{Key: "tls", Msg: "tls is enable but useHttps is false; the monitoring endpoint's TLS is useHttps: true"})
		}
		if set := c.TLS.Set(); len(set) > 0 && !c.UseHTTPS {
			errs = append(errs, &scalers.FieldError{Key: set[0], Msg: scalers.KeysAre(set) + " set but useHttps is false; set useHttps: true"})
		}
		return scalers.JoinFieldErrors(errs)
	}
	for _, k := range []struct {
		key string
		set bool
	}{{"useHttps", c.UseHTTPS}, {"account", c.Account != ""}, {"accountID", c.AccountID != ""}} {
		if k.set {
			errs = append(errs, &scalers.FieldError{Key: k.key, Msg: k.key + " applies to natsServerMonitoringEndpoint; with natsServerURL the account is the one the credentials log in to"})
		}
	}
	anyTLS := c.Enabled()
	for _, raw := range c.ServerURL {
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Host == "":
			errs = append(errs, &scalers.FieldError{Key: "natsServerURL", Msg: fmt.Sprintf("%q is not a URL such as nats://nats:4222", redact(raw))})
			continue
		case u.Scheme != "nats" && u.Scheme != "tls":
			errs = append(errs, &scalers.FieldError{Key: "natsServerURL", Msg: fmt.Sprintf("scheme must be nats or tls, got %q", u.Scheme)})
		case u.User != nil:
			errs = append(errs, &scalers.FieldError{Key: "natsServerURL", Msg: "carries credentials; set username and password (or token) in a TriggerAuthentication instead"})
		}
		anyTLS = anyTLS || u.Scheme == "tls"
	}
	if set := c.TLS.Set(); len(set) > 0 && !anyTLS {
		errs = append(errs, &scalers.FieldError{Key: set[0], Msg: scalers.KeysAre(set) + " set but TLS is off; set tls: enable or use tls:// URLs"})
	}
	return scalers.JoinFieldErrors(errs)
}

// tlsOn says whether the connection uses TLS.
func (c *Connection) tlsOn() bool {
	if c.monitoring() {
		return c.UseHTTPS
	}
	if c.Enabled() {
		return true
	}
	for _, u := range c.ServerURL {
		if strings.HasPrefix(u, "tls://") {
			return true
		}
	}
	return false
}

// logins lists the ways of logging in that are set, in the order the messages name them.
func (c *Connection) logins() []string {
	var out []string
	if len(c.Credentials.Set()) > 0 {
		out = append(out, "username")
	}
	for _, k := range []struct {
		key, v string
	}{{"token", c.Token}, {"nkeySeed", c.NKeySeed}, {"creds", c.Creds}} {
		if k.v != "" {
			out = append(out, k.key)
		}
	}
	return out
}

// where names the server set or endpoints in messages (never with credentials).
func (c *Connection) where() string {
	if c.monitoring() {
		return "natsServerMonitoringEndpoint " + strings.Join(c.MonitoringEndpoints, ",")
	}
	return "natsServerURL " + strings.Join(c.ServerURL, ",")
}

// redact drops anything before an @ in a URL that did not parse, so a message never echoes a password.
func redact(raw string) string {
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		return "..." + raw[i:]
	}
	return raw
}

// metadata is a trigger's configuration, parsed by scalers.Parse. Names and defaults are KEDA's.
type metadata struct {
	Connection
	Stream                 string  `ebb:"stream"`
	Consumer               string  `ebb:"consumer"`
	LagThreshold           float64 `ebb:"lagThreshold,default=10,min=0.001"`
	ActivationLagThreshold float64 `ebb:"activationLagThreshold,default=0,min=0"`
}

// deadLetterMetadata is a dead-letter reader's configuration: the stream that captures failed messages
// (or max-delivery advisories) and how to reach its server.
type deadLetterMetadata struct {
	Connection
	Stream string `ebb:"stream"`
}

package rabbitmq

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/scalers"
)

// Modes and protocols, as metadata spells them.
const (
	modeQueueLength = "QueueLength"
	modeMessageRate = "MessageRate"

	protocolAuto = "auto"
	protocolAMQP = "amqp"
	protocolHTTP = "http"

	// defaultValue is KEDA's target when neither mode nor value is set.
	defaultValue = 20
)

// metadata is the trigger's configuration, parsed by scalers.Parse. Names follow KEDA's RabbitMQ scaler.
type metadata struct {
	// Host is the server: amqp(s)://[user[:password]@]host[:port][/vhost] or
	// http(s)://[user[:password]@]host[:port][/path]/[vhost]. From metadata (without a password) or the
	// TriggerAuthentication.
	Host      string `ebb:"host"`
	QueueName string `ebb:"queueName"`
	// Mode and Value are both unset (QueueLength, 20) or both set, as in KEDA.
	Mode  string  `ebb:"mode,optional,enum=QueueLength|MessageRate"`
	Value float64 `ebb:"value,optional,min=0.001"`
	// QueueLength is KEDA's deprecated spelling of mode QueueLength with this value.
	QueueLength           float64 `ebb:"queueLength,optional,min=0.001"`
	ActivationValue       float64 `ebb:"activationValue,default=0,min=0"`
	Protocol              string  `ebb:"protocol,default=auto,enum=auto|amqp|http"`
	VhostName             string  `ebb:"vhostName,optional"`
	UseRegex              bool    `ebb:"useRegex,default=false"`
	ExcludeUnacknowledged bool    `ebb:"excludeUnacknowledged,default=false"`
	Operation             string  `ebb:"operation,default=sum,enum=sum|avg|max"`
	PageSize              int     `ebb:"pageSize,default=500,min=1,max=500"`
	Timeout               millis  `ebb:"timeout,optional"`

	// Credentials and TLS: from metadata or (wins) the TriggerAuthentication.
	scalers.Credentials
	scalers.TLS
}

// deadLetterMetadata is a dead-letter reader's configuration: the queue and how to reach it, with the
// trigger's names and rules (a trigger's keys keep KEDA's order, so the two declare these fields apart).
type deadLetterMetadata struct {
	Host      string `ebb:"host"`
	QueueName string `ebb:"queueName"`
	VhostName string `ebb:"vhostName,optional"`
	Protocol  string `ebb:"protocol,default=auto,enum=auto|amqp|http"`
	Timeout   millis `ebb:"timeout,optional"`
	scalers.Credentials
	scalers.TLS
}

// Validate checks the host and what protocol and the TLS keys say about it, and settles protocol auto.
func (d *deadLetterMetadata) Validate() error {
	_, errs := checkHost(d.Host, &d.Protocol, &d.TLS)
	return scalers.JoinFieldErrors(errs)
}

// trigger is the trigger's view of a dead-letter reader's metadata (its queue, how to reach it, and the
// default page size).
func (d *deadLetterMetadata) trigger() metadata {
	return metadata{Host: d.Host, QueueName: d.QueueName, VhostName: d.VhostName, Protocol: d.Protocol, Timeout: d.Timeout,
		Credentials: d.Credentials, TLS: d.TLS, PageSize: maxPageSize}
}

// millis is a timeout: an integer is milliseconds (KEDA's form), anything else a Go duration ("5s").
type millis time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *millis) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return fmt.Errorf("must be above 0, got %q", s)
		}
		*m = millis(time.Duration(n) * time.Millisecond)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("must be a number of milliseconds or a duration such as 5s, above 0, got %q", s)
	}
	*m = millis(d)
	return nil
}

// endpoint is where a trigger reads, resolved from host, vhostName, username and password.
type endpoint struct {
	// protocol is amqp or http (never auto).
	protocol string
	// server is scheme://host:port, plus the management API's path prefix for http; no credentials.
	server string
	// tls is whether the scheme is amqps or https.
	tls                bool
	vhost              string
	username, password string
}

// hostURL parses host, reporting the problem without echoing credentials.
func hostURL(host string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(host))
	if err != nil {
		return nil, fmt.Errorf("is not a URL such as amqp://rabbitmq:5672/ or http://rabbitmq:15672/")
	}
	switch u.Scheme {
	case "amqp", "amqps", "http", "https":
	default:
		return nil, fmt.Errorf("scheme must be amqp, amqps, http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("has no host name: write it as %s://host:port/", u.Scheme)
	}
	return u, nil
}

// protocolOf is the protocol a host's scheme implies.
func protocolOf(u *url.URL) string {
	if u.Scheme == "amqp" || u.Scheme == "amqps" {
		return protocolAMQP
	}
	return protocolHTTP
}

// checkHost checks host, and what protocol (settling auto) and the TLS keys say about it; each problem
// names its keys. The URL is nil when host does not parse.
func checkHost(host string, protocol *string, t *scalers.TLS) (*url.URL, []*scalers.FieldError) {
	u, err := hostURL(host)
	if err != nil {
		return nil, []*scalers.FieldError{{Key: "host", Msg: err.Error()}}
	}
	var errs []*scalers.FieldError
	implied := protocolOf(u)
	switch {
	case *protocol == protocolAuto:
		*protocol = implied
	case *protocol != implied:
		errs = append(errs, &scalers.FieldError{Key: "protocol", Msg: fmt.Sprintf("protocol is %s but host's scheme is %s; use a %s URL, or protocol auto", *protocol, u.Scheme, *protocol)})
	}
	tlsScheme := u.Scheme == "amqps" || u.Scheme == "https"
	if t.Enabled() && !tlsScheme {
		errs = append(errs, &scalers.FieldError{Key: "tls", Msg: fmt.Sprintf("tls is enable but host's scheme is %s; use %ss://", u.Scheme, u.Scheme)})
	}
	if set := t.Set(); len(set) > 0 && !tlsScheme {
		errs = append(errs, &scalers.FieldError{Key: set[0], Msg: fmt.Sprintf("%s set but host's scheme is %s, without TLS; use %ss://", scalers.KeysAre(set), u.Scheme, u.Scheme)})
	}
	return u, errs
}

// Validate checks the rules that span the scaling keys and settles mode and value; each message names its
// keys, and checks the host (checkHost).
func (m *metadata) Validate() error {
	u, errs := checkHost(m.Host, &m.Protocol, &m.TLS)
	switch {
	case m.QueueLength != 0 && (m.Mode != "" || m.Value != 0):
		errs = append(errs, &scalers.FieldError{Key: "queueLength", Msg: "queueLength is KEDA's deprecated form of mode: QueueLength with value; set queueLength, or mode and value, not both"})
	case m.QueueLength != 0:
		m.Mode, m.Value = modeQueueLength, m.QueueLength
	case m.Mode == "" && m.Value == 0:
		m.Mode, m.Value = modeQueueLength, defaultValue
	case m.Mode == "":
		errs = append(errs, &scalers.FieldError{Key: "mode", Msg: "value is set but mode is not; set mode to QueueLength or MessageRate"})
	case m.Value == 0:
		errs = append(errs, &scalers.FieldError{Key: "value", Msg: fmt.Sprintf("mode is %s but value is not set; set value to the %s one replica should handle", m.Mode, map[string]string{modeQueueLength: "queue length", modeMessageRate: "publish rate (messages per second)"}[m.Mode])})
	}

	if u != nil && m.Protocol == protocolAMQP {
		if m.Mode == modeMessageRate {
			errs = append(errs, &scalers.FieldError{Key: "mode", Msg: "mode MessageRate needs protocol http: the publish rate comes from the management API, and host's scheme is " + u.Scheme})
		}
		if m.UseRegex {
			errs = append(errs, &scalers.FieldError{Key: "useRegex", Msg: "useRegex needs protocol http: only the management API lists queues, and host's scheme is " + u.Scheme})
		}
		if m.ExcludeUnacknowledged {
			errs = append(errs, &scalers.FieldError{Key: "excludeUnacknowledged", Msg: "excludeUnacknowledged needs protocol http: over AMQP the queue length is already ready messages only, and host's scheme is " + u.Scheme})
		}
	}
	if m.UseRegex {
		if _, err := regexp.Compile(m.QueueName); err != nil {
			errs = append(errs, &scalers.FieldError{Key: "queueName", Msg: fmt.Sprintf("queueName is not a regular expression, which useRegex: true needs: %v", err)})
		}
	} else if m.Operation != "sum" {
		errs = append(errs, &scalers.FieldError{Key: "operation", Msg: fmt.Sprintf("operation %s needs useRegex: true: without it queueName names one queue", m.Operation)})
	}
	if m.ExcludeUnacknowledged && m.Mode == modeMessageRate {
		errs = append(errs, &scalers.FieldError{Key: "excludeUnacknowledged", Msg: "excludeUnacknowledged applies to mode QueueLength, not MessageRate"})
	}
	return scalers.JoinFieldErrors(errs)
}

// endpoint resolves where the trigger reads. Call it only on metadata that passed Validate.
func (m *metadata) endpoint() (endpoint, error) {
	u, err := hostURL(m.Host)
	if err != nil {
		return endpoint{}, &scalers.FieldError{Key: "host", Msg: err.Error()}
	}
	e := endpoint{protocol: m.Protocol, tls: u.Scheme == "amqps" || u.Scheme == "https"}
	if m.Protocol == protocolAMQP {
		uri, err := amqp.ParseURI(u.String())
		if err != nil {
			return endpoint{}, &scalers.FieldError{Key: "host", Msg: "is not an AMQP URI: " + redactErr(err, u)}
		}
		e.server = fmt.Sprintf("%s://%s", uri.Scheme, hostPort(uri.Host, uri.Port))
		e.vhost, e.username, e.password = uri.Vhost, uri.Username, uri.Password
	} else {
		// KEDA's layout: the last path segment is the vhost, anything before it the management API's path
		// prefix (a proxy's); an empty segment is the default vhost "/".
		p := u.EscapedPath()
		prefix, last := "", p
		if i := strings.LastIndex(p, "/"); i >= 0 {
			prefix, last = p[:i], p[i+1:]
		}
		vhost, err := url.PathUnescape(last)
		if err != nil {
			return endpoint{}, &scalers.FieldError{Key: "host", Msg: fmt.Sprintf("vhost %q in the path is not URL-escaped correctly", last)}
		}
		if vhost == "" {
			vhost = "/"
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		e.server = fmt.Sprintf("%s://%s%s", u.Scheme, hostPort(u.Hostname(), mustAtoi(port)), prefix)
		e.vhost = vhost
		if u.User != nil {
			e.username = u.User.Username()
			e.password, _ = u.User.Password()
		}
	}
	if m.VhostName != "" {
		e.vhost = m.VhostName
	}
	if m.Username != "" {
		e.username, e.password = m.Username, m.Password
	}
	return e, nil
}

func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// redactErr is err's text with the URL's password (if any) masked.
func redactErr(err error, u *url.URL) string {
	msg := err.Error()
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// checkHostSource refuses a password inside a host given in metadata: secrets come from a
// TriggerAuthentication only. A host from the TriggerAuthentication may carry credentials.
func checkHostSource(md, auth map[string]string) error {
	if strings.TrimSpace(auth["host"]) != "" {
		return nil
	}
	u, err := url.Parse(strings.TrimSpace(md["host"]))
	if err != nil || u.User == nil {
		return nil
	}
	if _, ok := u.User.Password(); ok {
		return &scalers.FieldError{Key: "host", Msg: "carries a password, and metadata is not secret: set host in a TriggerAuthentication, or remove the credentials from it and set username and password there"}
	}
	return nil
}

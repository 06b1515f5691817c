package rabbitmq

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQ answers a refused login in one of two ways. A client that lists the capability
// authentication_failure_close in its connection.start-ok gets a connection.close (403 ACCESS_REFUSED) at
// once; any other client gets nothing, and the socket is closed after a delay (3 s). amqp091-go does not
// list the capability (it overwrites whatever capabilities the caller's properties hold), so a wrong
// password looked like a server that does not answer to every sample with a deadline under 3 s. The
// connection below adds the capability to the start-ok frame on its way out.

// authFailureCloseEntry is the field-table entry "authentication_failure_close": true, encoded.
var authFailureCloseEntry = []byte("\x1cauthentication_failure_close" + "t\x01")

// dialer returns the amqp.Config Dial function of a connection: TCP within timeout (a deadline covers the
// TLS and AMQP handshakes, as amqp.DefaultDial sets it), TLS when tc is not nil, and the start-ok rewrite.
// A server dialed through it must be given an amqp:// URL (see plainURL): TLS is done here, because
// amqp091-go would otherwise wrap the connection, and the rewrite must see the frames in the clear.
func dialer(timeout time.Duration, tc *tls.Config) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		conn, err := amqp.DefaultDial(timeout)(network, addr)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			tlsConn := tls.Client(conn, tc)
			if err := tlsConn.Handshake(); err != nil {
				_ = conn.Close()
				return nil, err
			}
			conn = tlsConn
		}
		return &failFastConn{Conn: conn}, nil
	}
}

// plainURL turns an amqps:// URL into the amqp:// URL of the same server and port, for dialer to do the
// TLS. Other URLs are returned as they are.
func plainURL(raw string) (string, error) {
	uri, err := amqp.ParseURI(raw)
	if err != nil {
		return "", err
	}
	if uri.Scheme != "amqps" {
		return raw, nil
	}
	uri.Scheme = "amqp"
	return uri.String(), nil
}

// failFastConn adds authentication_failure_close to the first method frame written, when it is the
// connection.start-ok it expects; everything else passes unchanged.
type failFastConn struct {
	net.Conn
	done atomic.Bool
}

func (c *failFastConn) Write(p []byte) (int, error) {
	if c.done.Load() || bytes.HasPrefix(p, []byte("AMQP")) {
		return c.Conn.Write(p)
	}
	c.done.Store(true)
	out, ok := withAuthFailureClose(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

const (
	frameMethod = 1
	frameEnd    = 0xCE
	// classConnection and methodStartOK identify connection.start-ok.
	classConnection = 10
	methodStartOK   = 11
)

// withAuthFailureClose returns p with authentication_failure_close added to the capabilities table of the
// client properties, when p begins with a whole connection.start-ok frame whose properties it can read; ok
// is false otherwise (p is then to be sent as it is). A table that already lists the capability is left
// alone.
func withAuthFailureClose(p []byte) (out []byte, ok bool) {
	const header = 7 // type, channel, size
	if len(p) < header+8+1 || p[0] != frameMethod || binary.BigEndian.Uint16(p[1:3]) != 0 {
		return nil, false
	}
	size := int(binary.BigEndian.Uint32(p[3:7]))
	if len(p) < header+size+1 || p[header+size] != frameEnd || size < 8 {
		return nil, false
	}
	payload := p[header : header+size]
	if binary.BigEndian.Uint16(payload[0:2]) != classConnection || binary.BigEndian.Uint16(payload[2:4]) != methodStartOK {
		return nil, false
	}
	propsLen := int(binary.BigEndian.Uint32(payload[4:8]))
	if 8+propsLen > len(payload) {
		return nil, false
	}
	capsAt, err := findTable(payload[8:8+propsLen], "capabilities")
	if err != nil {
		return nil, false
	}
	capsAt += 8 // offset in payload of the capabilities table's length
	capsLen := int(binary.BigEndian.Uint32(payload[capsAt : capsAt+4]))
	if bytes.Contains(payload[capsAt+4:capsAt+4+capsLen], authFailureCloseEntry[:len(authFailureCloseEntry)-2]) {
		return nil, false
	}
	n := len(authFailureCloseEntry)
	out = make([]byte, 0, len(p)+n)
	out = append(out, p[:header+capsAt+4]...)
	out = append(out, authFailureCloseEntry...)
	out = append(out, p[header+capsAt+4:]...)
	binary.BigEndian.PutUint32(out[3:7], uint32(size+n))
	binary.BigEndian.PutUint32(out[header+4:header+8], uint32(propsLen+n))
	binary.BigEndian.PutUint32(out[header+capsAt:header+capsAt+4], uint32(capsLen+n))
	return out, true
}

// findTable returns the offset, in table (a field table's entries), of the length of the nested table
// stored under key.
func findTable(table []byte, key string) (int, error) {
	for i := 0; i < len(table); {
		klen := int(table[i])
		if i+1+klen+1 > len(table) {
			return 0, fmt.Errorf("truncated key at %d", i)
		}
		k, typ := string(table[i+1:i+1+klen]), table[i+1+klen]
		v := i + 1 + klen + 1
		var vlen int
		switch typ {
		case 'S', 'F', 'A', 'x':
			if v+4 > len(table) {
				return 0, fmt.Errorf("truncated value of %q", k)
			}
			if k == key && typ == 'F' {
				if v+4+int(binary.BigEndian.Uint32(table[v:v+4])) > len(table) {
					return 0, fmt.Errorf("truncated table %q", k)
				}
				return v, nil
			}
			vlen = 4 + int(binary.BigEndian.Uint32(table[v:v+4]))
		case 't', 'b', 'B':
			vlen = 1
		case 's', 'u':
			vlen = 2
		case 'I', 'i', 'f':
			vlen = 4
		case 'D':
			vlen = 5
		case 'l', 'd', 'T':
			vlen = 8
		case 'V':
			vlen = 0
		default:
			return 0, fmt.Errorf("field %q of unknown type %q", k, typ)
		}
		i = v + vlen
	}
	return 0, fmt.Errorf("no table %q", key)
}

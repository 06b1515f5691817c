package rabbitmq

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// startOK builds a connection.start-ok frame whose client properties are props (encoded field-table
// entries), followed by trailing bytes.
func startOK(props []byte, trailing string) []byte {
	var payload []byte
	payload = binary.BigEndian.AppendUint16(payload, classConnection)
	payload = binary.BigEndian.AppendUint16(payload, methodStartOK)
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(props)))
	payload = append(payload, props...)
	payload = append(payload, "\x05PLAIN\x00\x00\x00\x0b\x00guest\x00pass\x05en_US"...)
	frame := []byte{frameMethod, 0, 0}
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	frame = append(frame, payload...)
	return append(append(frame, frameEnd), trailing...)
}

func entryS(key, val string) []byte {
	out := append([]byte{byte(len(key))}, key+"S"...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(val)))
	return append(out, val...)
}

func entryF(key string, entries ...[]byte) []byte {
	inner := bytes.Join(entries, nil)
	out := append([]byte{byte(len(key))}, key+"F"...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(inner)))
	return append(out, inner...)
}

func entryBool(key string) []byte { return append([]byte{byte(len(key))}, key+"t\x01"...) }

func TestWithAuthFailureClose(t *testing.T) {
	caps := func(extra ...[]byte) []byte {
		return entryF("capabilities", append([][]byte{entryBool("basic.nack"), entryBool("publisher_confirms")}, extra...)...)
	}
	props := func(c []byte) []byte {
		return bytes.Join([][]byte{entryS("product", "amqp091-go"), c, entryS("connection_name", "ebb")}, nil)
	}
	tests := []struct {
		name string
		in   []byte
		want []byte // nil: left alone
	}{
		{
			name: "start-ok",
			in:   startOK(props(caps()), "next"),
			want: startOK(props(entryF("capabilities", authFailureCloseEntry, entryBool("basic.nack"), entryBool("publisher_confirms"))), "next"),
		},
		{name: "already-listed", in: startOK(props(caps(authFailureCloseEntry)), "")},
		{name: "no-capabilities", in: startOK(entryS("product", "x"), "")},
		{name: "unknown-field-type", in: startOK(append([]byte("\x01kZ"), caps()...), "")},
		{name: "truncated", in: startOK(props(caps()), "")[:40]},
		{name: "protocol-header", in: []byte("AMQP\x00\x00\x09\x01")},
		{name: "other-method", in: append([]byte{frameMethod, 0, 0, 0, 0, 0, 4, 0, 10, 0, 31}, frameEnd)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := withAuthFailureClose(tc.in)
			if ok != (tc.want != nil) {
				t.Fatalf("rewritten: %v, want %v", ok, tc.want != nil)
			}
			if ok && !bytes.Equal(got, tc.want) {
				t.Errorf("frame\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

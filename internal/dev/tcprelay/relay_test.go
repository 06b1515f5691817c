package tcprelay_test

import (
	"bufio"
	"net"
	"testing"

	"github.com/ebbscale/ebb/internal/dev/tcprelay"
)

// An echo server behind the relay answers through it, and Close ends relayed connections.
func TestRelay(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = echo.Close() }()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte("echo " + line))
				_ = c.Close()
			}()
		}
	}()
	r, err := tcprelay.Start("127.0.0.1:0", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "echo hi\n" {
		t.Fatalf("through the relay: %q, %v; want %q", got, err, "echo hi\n")
	}
	held, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Error("a relayed connection is still open after Close")
	}
	if _, err := net.Dial("tcp", r.Addr()); err == nil {
		t.Error("the relay still accepts after Close")
	}
}

// Command consumer is ebb's example event consumer: it reads a Kafka topic (as a member of a consumer
// group) or a RabbitMQ queue at a set rate per replica, fails a set share of messages into a dead-letter
// topic or queue, and reports every message it processed to a results topic or queue, so that tests and the
// demo can count what was consumed. It is what the end-to-end tests and the demo run as pods; see README.md.
//
// It is example code: ebb's own packages never import it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if help := (*helpError)(nil); errors.As(err, &help) {
		fmt.Print(help.usage)
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

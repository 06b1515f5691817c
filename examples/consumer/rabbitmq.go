package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	amqp "github.com/rabbitmq/amqp091-go"
)

// runRabbitMQ consumes cfg.Queue with cfg.Prefetch messages unacknowledged at most. A message is acked
// once its result or dead letter is confirmed by the broker; a failed message with no --dead-letter queue
// is rejected without requeueing, so the queue's dead-letter exchange (if any) takes it. At the stop it
// cancels its consumer, finishes the message in hand and closes: the broker requeues what was delivered
// and not acked.
func runRabbitMQ(ctx context.Context, cfg config, p *processor, out io.Writer) error {
	conn, err := amqp.Dial(cfg.URL)
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	if err := ch.Qos(cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("rabbitmq: prefetch: %w", err)
	}
	pub, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	if err := pub.Confirm(false); err != nil {
		return fmt.Errorf("rabbitmq: publisher confirms: %w", err)
	}
	for _, q := range []string{cfg.Results, cfg.DeadLetter} {
		if q == "" {
			continue
		}
		if _, err := pub.QueueDeclare(q, true, false, false, false, nil); err != nil {
			return fmt.Errorf("rabbitmq: declaring queue %q: %w", q, err)
		}
	}
	const tag = "consumer"
	deliveries, err := ch.ConsumeWithContext(ctx, cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("rabbitmq: consuming %q: %w", cfg.Queue, err)
	}
	fmt.Fprintf(out, "consumer: rabbitmq queue %s, rate %v/s, fail ratio %v\n", cfg.Queue, cfg.Rate, cfg.FailRatio)

	finish := context.WithoutCancel(ctx)
	for {
		var d amqp.Delivery
		var ok bool
		select {
		case <-ctx.Done():
		case d, ok = <-deliveries:
			if !ok && ctx.Err() == nil {
				return errors.New("rabbitmq: the broker closed the consumer")
			}
		}
		if !ok || !p.pace(ctx) {
			break
		}
		if err := handleDelivery(finish, pub, cfg, p, d); err != nil {
			return err
		}
	}
	// Unacked deliveries go back to the queue when the channel closes. Deliveries are read until the
	// consumer is gone: amqp091-go passes the connection's frames to consumers in turn, so one nobody took
	// would hold back the cancel's answer and the channel's close.
	go func() {
		for range deliveries { //nolint:revive // drained; RabbitMQ requeues them when the channel closes
		}
	}()
	_ = ch.Cancel(tag, false)
	return nil
}

func handleDelivery(ctx context.Context, pub *amqp.Channel, cfg config, p *processor, d amqp.Delivery) error {
	key := rabbitKey(d)
	ctx, cancel := context.WithTimeout(ctx, finishTimeout)
	defer cancel()
	switch p.decide(key) {
	case processed:
		if cfg.Results != "" {
			if err := publish(ctx, pub, cfg.Results, amqp.Publishing{MessageId: key, Body: []byte(cfg.ID), DeliveryMode: amqp.Persistent}); err != nil {
				return err
			}
		}
	case failed:
		if cfg.DeadLetter == "" {
			if err := d.Reject(false); err != nil {
				return fmt.Errorf("rabbitmq: reject: %w", err)
			}
			return nil
		}
		if err := publish(ctx, pub, cfg.DeadLetter, amqp.Publishing{MessageId: key, Headers: d.Headers, ContentType: d.ContentType, Body: d.Body, DeliveryMode: amqp.Persistent}); err != nil {
			return err
		}
	case duplicate:
	}
	if err := d.Ack(false); err != nil {
		return fmt.Errorf("rabbitmq: ack: %w", err)
	}
	return nil
}

// publish publishes msg to queue through the default exchange and waits for the broker's confirm.
func publish(ctx context.Context, ch *amqp.Channel, queue string, msg amqp.Publishing) error {
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, msg)
	if err != nil {
		return fmt.Errorf("rabbitmq: publishing to %q: %w", queue, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: publishing to %q: %w", queue, err)
	}
	if !ok {
		return fmt.Errorf("rabbitmq: publishing to %q: nacked by the broker", queue)
	}
	return nil
}

// rabbitKey is a message's key: its message ID, else its body.
func rabbitKey(d amqp.Delivery) string {
	if d.MessageId != "" {
		return d.MessageId
	}
	return string(d.Body)
}

package builtin

import (
	"fmt"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/cron"
	"github.com/ebbscale/ebb/scalers/kafka"
	"github.com/ebbscale/ebb/scalers/natsjetstream"
	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// Type is one row of the table: a trigger type the ebb binary knows.
type Type struct {
	// Name is the type as a trigger's type field spells it.
	Name string
	// Doc says in a sentence what a trigger of this type reads, for the generated parameter docs.
	Doc string
	// Params describes the metadata keys its triggers take (scalers.Describe of its tagged struct).
	Params func() ([]scalers.Param, error)
	// New builds the type with broker clients of its own, configured by o.
	New func(o Options) scalers.TriggerType
}

// Options configure the trigger types a Registry builds. The zero value is what tests want.
type Options struct {
	// ObserveRequests, when not nil, gives the request observer of a trigger type's broker clients (such
	// as brokermetrics.Metrics.Observer, for ebb's broker request metrics). Default: requests are not
	// observed.
	ObserveRequests func(triggerType string) scalers.RequestObserver
}

// observer is o's request observer for triggerType, or nil.
func (o Options) observer(triggerType string) scalers.RequestObserver {
	if o.ObserveRequests == nil {
		return nil
	}
	return o.ObserveRequests(triggerType)
}

// Types is the table of trigger types, sorted by name. Adding a trigger type is adding its row.
func Types() []Type {
	return []Type{
		{
			Name:   cron.Type,
			Doc:    "A replica count held during time windows, from five-field cron schedules in an IANA time zone.",
			Params: cron.Params,
			New:    func(Options) scalers.TriggerType { return cron.NewType() },
		},
		{
			Name:   kafka.Type,
			Doc:    "The lag of a Kafka consumer group, on one topic or every topic it commits.",
			Params: kafka.Params,
			New: func(o Options) scalers.TriggerType {
				if obs := o.observer(kafka.Type); obs != nil {
					return kafka.NewPool(kafka.ObserveRequests(obs))
				}
				return kafka.NewPool()
			},
		},
		{
			Name:   natsjetstream.Type,
			Doc:    "The pending plus ack-pending messages of a NATS JetStream consumer, over the client protocol or the monitoring endpoint.",
			Params: natsjetstream.Params,
			New: func(o Options) scalers.TriggerType {
				return natsjetstream.NewPool(natsjetstream.ObserveRequests(o.observer(natsjetstream.Type)))
			},
		},
		{
			Name:   rabbitmq.Type,
			Doc:    "The length or publish rate of a RabbitMQ queue, or of the queues a regular expression matches.",
			Params: rabbitmq.Params,
			New: func(o Options) scalers.TriggerType {
				return rabbitmq.NewPool(rabbitmq.ObserveRequests(o.observer(rabbitmq.Type)))
			},
		},
	}
}

// Registry builds every trigger type of the table, each with broker clients of its own: each call has its
// own clients.
func Registry(o Options) scalers.Registry {
	r := scalers.Registry{}
	for _, t := range Types() {
		r[t.Name] = t.New(o)
	}
	return r
}

// Params describes the metadata keys of every trigger type of the table, by type, for the generated docs.
func Params() (map[string][]scalers.Param, error) {
	out := map[string][]scalers.Param{}
	for _, t := range Types() {
		p, err := t.Params()
		if err != nil {
			return nil, fmt.Errorf("trigger type %s: %w", t.Name, err)
		}
		out[t.Name] = p
	}
	return out, nil
}

package scalers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MetricSpec is one external metric a trigger serves, as the HPA will see it.
type MetricSpec struct {
	// Name tells apart the metrics of one trigger; leave it empty when the trigger serves one metric.
	// The controller names the external metric after the trigger (MetricName), so scalers never build
	// metric names themselves.
	Name string
	// Target is the HPA's AverageValue target: the backlog one replica should face.
	Target float64
	// Activation is the value above which the trigger is active (wakes the target from zero).
	Activation float64
}

// Sample is one reading of a trigger.
type Sample struct {
	// Values holds one value per MetricSpec, in the order Metrics returned them: what the HPA sees.
	Values []float64
	// ActivationValues, when not nil, holds the values compared with each MetricSpec's Activation (and
	// checked for remaining backlog before scaling to zero) instead of Values. A scaler sets it when the
	// HPA's value leaves something out that still counts as work, such as Kafka's excluded persistent lag.
	ActivationValues []float64
	// Progress, when not nil, says how the consumers are getting on, for the consumer-health guard.
	Progress *Progress
	// Message, when not empty, says for a person what the value means now, where a number alone does not
	// (a cron trigger: when its window next closes or opens). Status shows it (status.triggers[].message).
	Message string
}

// Progress is what one sample says of the consumers' progress. The consumer-health guard reads it: a
// group whose committed offsets stop moving while it has lag is stalled, one whose offsets go backwards is
// rewound, and the rate at which consumers finish messages is the denominator of the dead-letter ratio.
type Progress struct {
	// Offsets is true when the trigger tracks committed positions (Kafka): Advanced and Rewound are
	// meaningful, unless Baseline says this is the first sample, with nothing to compare it with.
	Offsets  bool
	Baseline bool
	// Advanced is how many messages the consumers committed since the previous sample: the sum of the
	// forward moves of the committed offsets. Committed messages include those the consumers dead-lettered.
	Advanced int64
	// Elapsed is the time between the readings Advanced compares.
	Elapsed time.Duration
	// Rewound names the partitions whose committed offset went backwards since the previous sample, and by
	// how much ("orders/3 by 120"); at most MaxRewound of them, RewoundPartitions counting them all.
	Rewound           []string
	RewoundPartitions int
	// ConsumeRate is the rate, per second, at which consumers acknowledged messages, when the broker
	// reports one (RabbitMQ's management API); HasConsumeRate says it did. Rejected (dead-lettered)
	// messages are not in it.
	ConsumeRate    float64
	HasConsumeRate bool
	// Words name what Advanced and Rewound follow, for the guard's messages; nil means a Kafka group's
	// committed offsets (CommittedOffsets). Read them with Terms.
	Words *ProgressWords
}

// ProgressWords name, for a person, what a trigger's Progress follows, so the consumer-health guard's
// messages speak of the trigger's own things (a Kafka group's committed offsets, a NATS JetStream
// consumer's ack floor) without the guard knowing trigger types. The stall message reads "the <Owner> has
// <Backlog> but its <Position> has (have, when Plural) not moved for N polls"; the rewind message "the
// <Owner>'s <Position> went backwards on N <Places> (...)", or without "on N <Places>" when Places is empty
// (one position per trigger).
type ProgressWords struct {
	Owner    string
	Backlog  string
	Position string
	Plural   bool
	Places   string
}

// CommittedOffsets are a Kafka group's words, the default of Progress.Words.
var CommittedOffsets = ProgressWords{Owner: "group", Backlog: "lag", Position: "committed offsets", Plural: true, Places: "partition(s)"}

// Terms returns p.Words, or CommittedOffsets when it is nil.
func (p *Progress) Terms() ProgressWords {
	if p.Words == nil {
		return CommittedOffsets
	}
	return *p.Words
}

// MaxRewound bounds Progress.Rewound, so a reset of a topic with thousands of partitions stays a short
// message.
const MaxRewound = 5

// MetricName is the external metric name of spec for the trigger named trigger: the trigger's name, then
// "." and spec.Name when the trigger serves more than one metric. Trigger names are DNS labels, so the dot
// cannot collide with another trigger's name.
func MetricName(trigger string, spec MetricSpec) string {
	if spec.Name == "" {
		return trigger
	}
	return trigger + "." + spec.Name
}

// Scaler is one trigger of one ScaledConsumer.
//
// The controller calls Sample from one goroutine per ScaledConsumer, at the ScaledConsumer's polling
// interval, aligned to wall-clock multiples of it, so triggers with the same interval sample together and
// a scaler can serve them all from one batched broker request. A Scaler that holds a shared resource
// (a client reference) also implements io.Closer; the controller closes it when the trigger goes away.
type Scaler interface {
	// Metrics says what the trigger serves. It is computed from the parsed metadata and does no I/O.
	Metrics() []MetricSpec
	// Sample reads the broker (through a client shared with every other trigger on the same cluster).
	// A trigger is active when any value is above its metric's Activation.
	Sample(ctx context.Context) (Sample, error)
}

// Config is what a Factory receives for one trigger.
type Config struct {
	// TriggerName is the trigger's name (unique within its ScaledConsumer).
	TriggerName string
	// Metadata is the trigger's metadata.
	Metadata map[string]string
	// Auth holds the parameters its TriggerAuthentication resolved, by parameter name.
	Auth map[string]string
	// PollingInterval is how often the trigger is sampled; a scaler sharing a broker client uses it to
	// decide how fresh a shared reading must be.
	PollingInterval time.Duration
	// Progress asks the trigger to report its consumers' progress (Sample.Progress) even where that costs
	// more: the consumer-health guard needs the consume rate.
	Progress bool
}

// TriggerType builds the Scaler of each trigger of one type, or explains why a trigger is invalid. A
// trigger type usually holds the broker clients its triggers share (kafka.Pool, rabbitmq.Pool). It may
// also implement DeadLetterType.
type TriggerType interface {
	New(Config) (Scaler, error)
}

// Factory is a TriggerType written as a function.
type Factory func(Config) (Scaler, error)

// New implements TriggerType.
func (f Factory) New(cfg Config) (Scaler, error) { return f(cfg) }

// Registry maps trigger types to their implementations. It is data: build it with a map literal (the
// ebb binary's is scalers/builtin's table), so the set of trigger types is visible in one place.
type Registry map[string]TriggerType

// ErrUnknownType is returned (wrapped) for a trigger type the registry does not know.
var ErrUnknownType = errors.New("unknown trigger type")

// Types lists the known trigger types, sorted.
func (r Registry) Types() []string {
	types := make([]string, 0, len(r))
	for t := range r {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// New builds the Scaler for a trigger of type triggerType. An unknown type is an error that lists the
// known ones; a factory's error is wrapped with the trigger's name and type.
func (r Registry) New(triggerType string, cfg Config) (Scaler, error) {
	t, ok := r[triggerType]
	if !ok {
		return nil, fmt.Errorf("trigger %q: %w %q; known types: %s", cfg.TriggerName, ErrUnknownType, triggerType, strings.Join(r.Types(), ", "))
	}
	s, err := t.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("trigger %q (%s): %w", cfg.TriggerName, triggerType, err)
	}
	return s, nil
}

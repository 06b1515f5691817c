package natsjetstream

import (
	"fmt"
	"time"

	"github.com/ebbscale/ebb/scalers"
)

// ackFloor are the guard's words for what progress follows.
var ackFloor = scalers.ProgressWords{Owner: "consumer", Backlog: "pending or unacknowledged messages", Position: "ack floor"}

// progress compares the consumer's ack floor in e, read at at, with the previous sample's (which it then
// replaces), for the consumer-health guard. The consumer sequence of the ack floor counts finished
// deliveries (a redelivery is a new delivery), so its advance is Advanced: a consumer with pending
// messages whose floor does not move is stalled, as a Kafka group whose commits do not move is. The
// stream sequence of the floor going backwards (a consumer reset or recreated to an earlier point) is a
// rewind. s.mu is held.
func (s *Scaler) progress(e entry, at time.Time) *scalers.Progress {
	p := &scalers.Progress{Offsets: true, Baseline: s.prevAt.IsZero(), Words: &ackFloor}
	if !p.Baseline {
		p.Elapsed = at.Sub(s.prevAt)
		switch {
		case e.floorStream < s.prev.floorStream:
			p.RewoundPartitions = 1
			p.Rewound = []string{fmt.Sprintf("%s/%s by %d", s.md.Stream, s.md.Consumer, s.prev.floorStream-e.floorStream)}
		case e.floorConsumer > s.prev.floorConsumer:
			p.Advanced = int64(e.floorConsumer - s.prev.floorConsumer)
		case e.floorConsumer < s.prev.floorConsumer:
			// The consumer was recreated with the same name: nothing to compare with.
			p.Baseline, p.Elapsed = true, 0
		}
	}
	s.prev, s.prevAt = e, at
	return p
}

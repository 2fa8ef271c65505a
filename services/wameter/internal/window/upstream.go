package window

import (
	"context"

	"github.com/wameter/wameter/pkg/stream"
)

// GroupUpstream is the Upstream of a window stage whose events topic is
// written by one consumer group (normalize) from the topics it reads.
type GroupUpstream struct {
	Progress *stream.Progress
	// Group is the consumer group that writes EventsTopic; it commits a
	// record only once its events are written.
	Group string
	// Topics are what Group reads: name → partition count.
	Topics      map[string]int
	EventsTopic string
}

// Mark returns the end offsets of Topics.
func (u *GroupUpstream) Mark(ctx context.Context) (UpstreamMark, error) {
	return u.Progress.EndOffsets(ctx, u.Topics)
}

// Pending returns the records before mark that Group has not committed
// yet, or else the events of partition p from offset next on. The group's
// lag is read first: the events of every record it committed are then in
// the events topic before its end offset is read.
func (u *GroupUpstream) Pending(ctx context.Context, mark UpstreamMark, p int, next int64) (int64, error) {
	lag, err := u.Progress.GroupLag(ctx, u.Group, mark)
	if err != nil || lag > 0 {
		return lag, err
	}
	end, err := u.Progress.EndOffset(ctx, u.EventsTopic, p)
	if err != nil {
		return 0, err
	}
	return max(0, end-next), nil
}

package stream

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"
)

// backoff is an exponential backoff with full jitter: the n-th wait is
// uniform in [min/2, min(max, min*2^n)], so that many producers retrying
// after a broker restart do not hit it in step.
type backoff struct {
	min, max time.Duration
	attempt  int
}

func (b *backoff) next() time.Duration {
	ceiling := b.min << min(b.attempt, 20)
	if ceiling > b.max || ceiling <= 0 {
		ceiling = b.max
	}
	b.attempt++
	floor := b.min / 2
	if ceiling <= floor {
		return ceiling
	}
	return floor + rand.N(ceiling-floor)
}

func (b *backoff) reset() { b.attempt = 0 }

// wait sleeps for the next backoff or until ctx ends; it reports whether the
// full wait elapsed.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retriable tells whether err may go away by retrying: Kafka errors that the
// protocol marks temporary (leader moved, broker not available, timeouts)
// and anything that is not a Kafka error (connection refused or reset,
// EOF, dial timeouts while a broker restarts). Protocol errors that are not
// temporary (authorization, invalid config, record too large) and a
// cancelled or expired context are final.
func retriable(err error) bool {
	if err == nil {
		return false
	}
	var slow requestTimeout
	if errors.As(err, &slow) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return false
	}
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		// kafka-go does not count BrokerNotAvailable as temporary, but a
		// broker that is restarting answers exactly that.
		return kerr.Temporary() || kerr == kafka.BrokerNotAvailable || kerr == kafka.ReplicaNotAvailable
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil && !retriable(e) {
				return false
			}
		}
		return true
	}
	return true
}

// requestTimeout is a request whose own deadline passed while its caller's
// context was still live: a slow or hung broker, retried like any network
// timeout (a bare context.DeadlineExceeded is final: the caller gave up).
type requestTimeout struct{ err error }

func (e requestTimeout) Error() string { return "request timed out: " + e.err.Error() }
func (e requestTimeout) Unwrap() error { return e.err }

// timedOut marks err as a requestTimeout when the request's deadline, not
// parent's, ended it.
func timedOut(parent context.Context, err error) error {
	if err != nil && parent.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return requestTimeout{err}
	}
	return err
}

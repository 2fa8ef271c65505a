// Package stage holds what the stateful pipeline stages (window, account)
// share: their dependencies and the table of partitions they own.
package stage

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/pricing"
	"github.com/wameter/wameter/pkg/stream"
)

// Deps is what a stage needs from its process. Every field is required.
type Deps struct {
	Kafka    stream.Config // to restore the changelog
	Catalog  *pricing.Catalog
	Accounts *accounts.Book
	Producer *stream.Producer // outputs, watermarks and checkpoints
	DLQ      *stream.DeadLetters
	Logger   *zap.Logger
	Registry prometheus.Registerer
}

// Check reports a missing dependency of the named stage.
func (d *Deps) Check(name string) error {
	if d.Catalog == nil || d.Accounts == nil || d.Producer == nil || d.DLQ == nil || d.Logger == nil || d.Registry == nil {
		return fmt.Errorf("%s: nil dependency", name)
	}
	return nil
}

// Parts maps the partitions a stage owns to their state. The consumer calls
// a partition's handler methods from one goroutine, but partitions run
// concurrently, so the table itself is locked. The zero value is ready.
type Parts[T any] struct {
	mu sync.Mutex
	m  map[int]T
}

// Get returns partition p's state (the zero T if p is not owned).
func (ps *Parts[T]) Get(p int) T {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.m[p]
}

// Put records partition p's state once it is assigned.
func (ps *Parts[T]) Put(p int, v T) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = make(map[int]T)
	}
	ps.m[p] = v
}

// Delete forgets partition p once it is revoked.
func (ps *Parts[T]) Delete(p int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.m, p)
}

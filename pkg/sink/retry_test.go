package sink

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy modes.
const (
	proxyForward = iota
	// proxyRefuse closes every connection at once: ClickHouse is down.
	proxyRefuse
	// proxyLoseAck relays everything the client sends, but once a
	// connection has sent more than loseAckAfter bytes (an INSERT's data),
	// drops what the server answers: the insert is stored, the client never
	// hears so.
	proxyLoseAck
)

const loseAckAfter = 16 << 10

// proxy is a TCP relay in front of the real test server that can play an
// outage between the Writer and ClickHouse.
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	mode   atomic.Int32
	// lostAcks counts connections whose answer was dropped.
	lostAcks atomic.Int32

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// set switches mode and drops the open connections, so that pooled ones
// meet the new mode too.
func (p *proxy) set(mode int32) {
	p.mode.Store(mode)
	p.closeAll()
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		mode := p.mode.Load()
		if mode == proxyRefuse {
			_ = client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.track(client, server)
		var sent atomic.Int64
		p.wg.Add(2)
		go func() { // client → server, counted
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := client.Read(buf)
				if n > 0 {
					sent.Add(int64(n))
					if _, werr := server.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			_ = server.Close()
		}()
		go func() { // server → client, maybe dropped
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			lost := false
			for {
				n, err := server.Read(buf)
				if n > 0 {
					if mode == proxyLoseAck && sent.Load() > loseAckAfter {
						if !lost {
							lost = true
							p.lostAcks.Add(1)
						}
					} else if _, werr := client.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
						p.t.Logf("proxy: %v", err)
					}
					break
				}
			}
			_ = client.Close()
		}()
	}
}

// A Flush while ClickHouse is unreachable keeps retrying, reports unhealthy,
// and stores the batch once when ClickHouse is back.
func TestFlushRetriesUntilClickHouseIsBack(t *testing.T) {
	e := newEnv(t)
	px := startProxy(t, e.addr)
	conn := openDB(t, px.addr(), e.db)
	w := newWriter(t, conn, fastRetry(Config{}))
	resume(t, w, 0)
	for i := range 300 {
		r := chargeRecord(t, i)
		add(t, w, &r, 0, int64(i))
	}

	px.set(proxyRefuse)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Flush(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	for counterValue(t, w.m.insertErrors) < 3 || w.Healthy() {
		if time.Now().After(deadline) {
			t.Fatalf("no retries seen: errors %v healthy %v", counterValue(t, w.m.insertErrors), w.Healthy())
		}
		select {
		case err := <-done:
			t.Fatalf("Flush returned while ClickHouse was down: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, ok := w.Committable(0); ok {
		t.Fatal("offset committable before the batch is stored")
	}

	px.set(proxyForward)
	if err := <-done; err != nil {
		t.Fatalf("Flush after ClickHouse came back: %v", err)
	}
	if !w.Healthy() {
		t.Fatal("unhealthy after a successful Flush")
	}
	if n := count(t, e.conn, "SELECT count() FROM charges"); n != 300 {
		t.Fatalf("%d rows stored, want 300", n)
	}
	if next, _ := w.Committable(0); next != 300 {
		t.Fatalf("Committable = %d, want 300", next)
	}
}

// A Flush whose ctx ends while ClickHouse is down returns the ctx error and
// keeps the rows; a later Flush stores them once.
func TestFlushGivesUpWithContextAndKeepsRows(t *testing.T) {
	e := newEnv(t)
	px := startProxy(t, e.addr)
	conn := openDB(t, px.addr(), e.db)
	w := newWriter(t, conn, fastRetry(Config{}))
	resume(t, w, 0)
	for i := range 50 {
		r := chargeRecord(t, i)
		add(t, w, &r, 0, int64(i))
	}
	px.set(proxyRefuse)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := w.Flush(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with ClickHouse down = %v, want deadline exceeded", err)
	}
	if w.Healthy() {
		t.Fatal("healthy after a failed Flush")
	}
	// More rows arrive meanwhile; the next Flush stores old and new in order.
	for i := 50; i < 80; i++ {
		r := chargeRecord(t, i)
		add(t, w, &r, 0, int64(i))
	}
	px.set(proxyForward)
	flush(t, w)
	if n := count(t, e.conn, "SELECT count() FROM charges"); n != 80 {
		t.Fatalf("%d rows stored, want 80", n)
	}
	if n := count(t, e.conn, "SELECT uniqExact(charge_id) FROM charges"); n != 80 {
		t.Fatalf("%d distinct ids, want 80", n)
	}
}

// The server stores an INSERT but the client never hears so (the
// connection drops after the commit): the retry must find the stored rows
// and not insert them again, or the rollups would count them twice.
func TestFlushRetryAfterLostAckDoesNotDuplicate(t *testing.T) {
	e := newEnv(t)
	px := startProxy(t, e.addr)
	conn := openDB(t, px.addr(), e.db)
	cfg := fastRetry(Config{InsertTimeout: 2 * time.Second})
	w := newWriter(t, conn, cfg)
	resume(t, w, 0, 1)
	const n = 3000 // well over loseAckAfter once encoded and compressed
	for i := range n {
		r := chargeRecord(t, i)
		add(t, w, &r, int32(i%2), int64(i/2))
	}

	px.set(proxyLoseAck)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Flush(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for px.lostAcks.Load() == 0 || counterValue(t, w.m.insertErrors) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no lost acknowledgement: lost %d, errors %v", px.lostAcks.Load(), counterValue(t, w.m.insertErrors))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The rows are in ClickHouse although the Writer saw a failure.
	if got := count(t, e.conn, "SELECT count() FROM charges"); got != n {
		t.Fatalf("after the lost ack, %d rows stored, want %d", got, n)
	}
	px.set(proxyForward)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := count(t, e.conn, "SELECT count() FROM charges"); got != n {
		t.Fatalf("%d rows stored after the retry, want %d", got, n)
	}
	if got := count(t, e.conn, "SELECT toUInt64(sum(units)) FROM spend_hourly"); got != n {
		t.Fatalf("rollup counts %d units, want %d", got, n)
	}
	if got := inserted(t, w, TableCharges); got != n {
		t.Fatalf("inserted metric %v, want %d", got, n)
	}
	if next, _ := w.Committable(1); next != n/2 {
		t.Fatalf("Committable(1) = %d, want %d", next, n/2)
	}
}

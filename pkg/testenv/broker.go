package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// brokerPkg is the broker's main package, relative to the module root.
const brokerPkg = "./services/broker"

// Broker returns the address of a broker process (services/broker, built
// once per test binary) started once per test binary on a free loopback port
// with a temp data dir. Topics are not auto-created: tests create theirs,
// as the pipeline does, and name them uniquely.
func Broker(t testing.TB) string {
	t.Helper()
	bin := BuildBinary(t, brokerPkg)
	addr, err := sharedBroker(bin)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return addr
}

var (
	sharedBrokerOnce sync.Once
	sharedBrokerAddr string
	sharedBrokerErr  error
)

func sharedBroker(bin string) (string, error) {
	sharedBrokerOnce.Do(func() {
		dir, err := sharedDir()
		if err != nil {
			sharedBrokerErr = err
			return
		}
		dir = filepath.Join(dir, "broker")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			sharedBrokerErr = fmt.Errorf("broker dir: %w", err)
			return
		}
		proc, addr, err := startBroker(bin, dir, "127.0.0.1:0", nil)
		if err != nil {
			sharedBrokerErr = err
			return
		}
		onTeardown(func() {
			if err := proc.Stop(30 * time.Second); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: stop broker: %v\n%s", err, proc.LogTail(8<<10))
			}
		})
		sharedBrokerAddr = addr
	})
	return sharedBrokerAddr, sharedBrokerErr
}

// BrokerProcess is a private broker for a test that kills or restarts it.
// Its methods are meant for the test's goroutine.
type BrokerProcess struct {
	// Addr is the broker's address; it stays the same across restarts.
	Addr string

	t         testing.TB
	bin       string
	dir       string // data dir, addr file and logs
	extraArgs []string

	mu    sync.Mutex
	proc  *Proc
	procs []*Proc // every incarnation, for the logs
}

// NewBroker starts a broker of the test's own on a free loopback port with a
// data dir under t.TempDir(). extraArgs go to the broker's command line (for
// example "-auto-create-topics", "-partitions=8"). It is stopped when the
// test ends, and its logs are printed if the test failed.
func NewBroker(t testing.TB, extraArgs ...string) *BrokerProcess {
	t.Helper()
	bin := BuildBinary(t, brokerPkg)
	b := &BrokerProcess{t: t, bin: bin, dir: t.TempDir(), extraArgs: extraArgs}
	proc, addr, err := startBroker(bin, b.dir, "127.0.0.1:0", extraArgs)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	b.Addr = addr
	b.proc = proc
	b.procs = append(b.procs, proc)
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if err := b.proc.Stop(30 * time.Second); err != nil {
			t.Errorf("testenv: stop broker: %v", err)
		}
		if t.Failed() {
			for i, p := range b.procs {
				t.Logf("testenv: broker %s, run %d, log %s:\n%s", b.Addr, i+1, p.LogPath(), p.LogTail(64<<10))
			}
		}
	})
	return b
}

// Proc returns the running incarnation's process.
func (b *BrokerProcess) Proc() *Proc {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.proc
}

// DataDir returns the broker's data directory.
func (b *BrokerProcess) DataDir() string { return filepath.Join(b.dir, "data") }

// Kill sends SIGKILL, as a crash would, and waits for the process to exit.
func (b *BrokerProcess) Kill() {
	if err := b.Proc().Kill(); err != nil {
		b.t.Errorf("testenv: kill broker %s: %v", b.Addr, err)
	}
}

// Stop sends SIGTERM and waits for a clean shutdown.
func (b *BrokerProcess) Stop() {
	if err := b.Proc().Stop(30 * time.Second); err != nil {
		b.t.Errorf("testenv: stop broker %s: %v", b.Addr, err)
	}
}

// Restart starts the broker again on the same address and data dir,
// stopping it cleanly first if it is still running, and waits until it
// serves.
func (b *BrokerProcess) Restart() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.proc.Exited():
	default:
		if err := b.proc.Stop(30 * time.Second); err != nil {
			b.t.Fatalf("testenv: stop broker %s before restart: %v", b.Addr, err)
		}
	}
	// The port was ours a moment ago; retry briefly in case the kernel has
	// not let go of it yet.
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		var proc *Proc
		proc, _, err = startBroker(b.bin, b.dir, b.Addr, b.extraArgs)
		if err == nil {
			b.proc = proc
			b.procs = append(b.procs, proc)
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("testenv: restart broker %s: %v", b.Addr, err)
}

// startBroker starts the broker with its data in dir/data and waits for the
// address file it writes once it accepts connections.
func startBroker(bin, dir, addr string, extraArgs []string) (*Proc, string, error) {
	addrFile := filepath.Join(dir, "addr")
	args := append([]string{
		"-addr", addr,
		"-addr-file", addrFile,
		"-data-dir", filepath.Join(dir, "data"),
		"-log-level", "info",
	}, extraArgs...)
	// The broker removes a stale address file itself, but only once it runs.
	if err := os.Remove(addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("broker addr file: %w", err)
	}
	proc, err := startProc("broker", bin, args, nil, dir)
	if err != nil {
		return nil, "", err
	}
	var bound string
	err = waitFor(proc, 30*time.Second, 10*time.Millisecond, func() (bool, error) {
		b, err := os.ReadFile(addrFile)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		bound = strings.TrimSpace(string(b))
		return bound != "", nil
	})
	if err != nil {
		_ = proc.Kill()
		return nil, "", fmt.Errorf("broker on %s: %w\n%s", addr, err, proc.LogTail(8<<10))
	}
	return proc, bound, nil
}

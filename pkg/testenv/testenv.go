// Package testenv starts the real servers that integration and end-to-end
// tests run against: a ClickHouse server and the Kafka-protocol broker of
// services/broker, each as its own process on loopback ports with a
// throw-away data directory. There are no mocks and nothing is skipped: a
// dependency that cannot be started fails the test with the reason.
//
// A test binary that uses this package must call Main from TestMain, which
// stops every process started here once the tests are done:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Shared servers (ClickHouse, Broker) start on first use and live as long as
// the test binary; tests isolate themselves with their own database
// (Database) and topic names. Tests that kill or restart a server take a
// private one (NewBroker).
//
// Every child process gets SIGKILL from the kernel when the test binary dies
// (Linux parent-death signal), so a test binary killed by -timeout leaves no
// servers behind.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// env is what Main tears down: the shared processes and temp directories.
var env struct {
	mu      sync.Mutex
	inMain  bool
	stops   []func() // in start order; run in reverse
	tempDir string   // shared by everything that outlives one test
}

// Main runs the tests and then stops every process this package started and
// removes their data directories. Use: func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	env.mu.Lock()
	env.inMain = true
	env.mu.Unlock()
	code := m.Run()
	teardown()
	os.Exit(code)
}

func teardown() {
	env.mu.Lock()
	stops := env.stops
	env.stops = nil
	dir := env.tempDir
	env.tempDir = ""
	env.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: remove %s: %v\n", dir, err)
		}
	}
}

// onTeardown registers fn to run after the tests, before the temp dir goes.
func onTeardown(fn func()) {
	env.mu.Lock()
	defer env.mu.Unlock()
	env.stops = append(env.stops, fn)
}

// requireMain fails t unless the binary runs under Main: without it, shared
// servers would outlive the test binary.
func requireMain(t testing.TB) {
	t.Helper()
	env.mu.Lock()
	inMain := env.inMain
	env.mu.Unlock()
	if !inMain {
		t.Fatal("testenv: add func TestMain(m *testing.M) { testenv.Main(m) } to this package's tests")
	}
}

// sharedDir returns a directory that lives until Main's teardown.
func sharedDir() (string, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.tempDir == "" {
		removeAbandonedDirs()
		dir, err := os.MkdirTemp("", tempDirPrefix)
		if err != nil {
			return "", fmt.Errorf("testenv temp dir: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return "", fmt.Errorf("testenv temp dir: %w", err)
		}
		env.tempDir = dir
	}
	return env.tempDir, nil
}

const tempDirPrefix = "wameter-testenv-"

// removeAbandonedDirs removes the temp dirs of test binaries that died
// without Main's teardown (a -timeout panic, a kill): their servers died with
// them, but their data stayed. A dir counts as abandoned only when the pid it
// records no longer runs.
func removeAbandonedDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			continue // not ours, or not yet written
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

// waitFor polls ready every interval until it returns true or an error, the
// process exits, or timeout passes.
func waitFor(p *Proc, timeout, interval time.Duration, ready func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := ready()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s", p.name, timeout)
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %w", p.name, p.exitErr())
		case <-time.After(interval):
		}
	}
}

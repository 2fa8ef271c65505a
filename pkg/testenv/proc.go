package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process whose stdout and stderr go to a log file.
// Its methods are safe for concurrent use.
type Proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	cmd     *exec.Cmd

	done chan struct{} // closed once the process has exited and err is set
	err  error
}

// StartProcess starts bin with args, and env added to this process's
// environment (later entries win). Its output goes to a log file under
// t.TempDir(), printed through t.Log if the test fails. When the test ends
// the process gets SIGTERM, and SIGKILL 10 s later.
func StartProcess(t testing.TB, bin string, args, env []string) *Proc {
	t.Helper()
	dir := t.TempDir()
	p, err := startProc(filepath.Base(bin), bin, args, env, dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		stopErr := p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("testenv: %s (exit: %v) log %s:\n%s", p.name, stopErr, p.logPath, p.LogTail(64<<10))
		}
	})
	return p
}

// startProc starts a process logging to a new file in logDir.
func startProc(name, bin string, args, env []string, logDir string) (*Proc, error) {
	logFile, err := os.CreateTemp(logDir, sanitizeFileName(name)+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("%s log file: %w", name, err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttrs()
	p := &Proc{
		name:    name,
		bin:     bin,
		args:    args,
		env:     env,
		logPath: logFile.Name(),
		cmd:     cmd,
		done:    make(chan struct{}),
	}
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath returns the file holding the process's stdout and stderr.
func (p *Proc) LogPath() string { return p.logPath }

// Log returns everything the process has written so far.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	return string(b)
}

// LogTail returns at most the last n bytes of the log.
func (p *Proc) LogTail(n int) string {
	log := p.Log()
	if len(log) > n {
		return "...\n" + log[len(log)-n:]
	}
	return log
}

// Exited returns a channel closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error (nil for
// status 0).
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

func (p *Proc) exitErr() error {
	select {
	case <-p.done:
		if p.err == nil {
			return errors.New("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

// Kill sends SIGKILL to the process (and anything it started) and waits for
// it to exit. It returns nil if the process died of that SIGKILL or had
// already exited with status 0.
func (p *Proc) Kill() error {
	p.signal(syscall.SIGKILL)
	<-p.done
	if isSignal(p.err, syscall.SIGKILL) {
		return nil
	}
	return p.err
}

// Stop sends SIGTERM and waits up to timeout for the process to exit, then
// kills it. It returns the exit error of a process that stopped by itself
// (nil for a clean exit) and an error naming the timeout if it had to be
// killed.
func (p *Proc) Stop(timeout time.Duration) error {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
	}
	p.signal(syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", p.name, timeout)
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) { p.signal(sig) }

func (p *Proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	// Children run in their own process group: signal the whole group so
	// nothing a server forked survives it.
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

func isSignal(err error, sig syscall.Signal) bool {
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return false
	}
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// spawner starts every child from one goroutine locked to its OS thread for
// the life of the binary: Linux delivers the parent-death signal when the
// thread that forked the child exits, and Go may end other threads at any
// time.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the binary
			for req := range spawner.reqs {
				req.errc <- req.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd: cmd, errc: errc}
	return <-errc
}

// builds caches BuildBinary per package path.
var builds struct {
	mu sync.Mutex
	m  map[string]func() (string, error)
}

// BuildBinary builds the main package pkg (a path relative to the module
// root, such as "./services/wameter") once per test binary and returns the
// executable's path. Concurrent callers share one build.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	requireMain(t)
	builds.mu.Lock()
	if builds.m == nil {
		builds.m = make(map[string]func() (string, error))
	}
	build, ok := builds.m[pkg]
	if !ok {
		build = sync.OnceValues(func() (string, error) { return buildBinary(pkg) })
		builds.m[pkg] = build
	}
	builds.mu.Unlock()
	bin, err := build()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return bin
}

func buildBinary(pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := sharedDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "bin", sanitizeFileName(strings.TrimPrefix(pkg, "./")))
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build %s: go toolchain not in PATH: %w", pkg, err)
	}
	started := time.Now()
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
	}
	if d := time.Since(started); d > 5*time.Second {
		fmt.Fprintf(os.Stderr, "testenv: built %s in %s\n", pkg, d.Round(100*time.Millisecond))
	}
	return out, nil
}

// moduleRoot finds the directory holding go.mod, walking up from the
// working directory (a test runs in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

func sanitizeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		default:
			return '_'
		}
	}, s)
}

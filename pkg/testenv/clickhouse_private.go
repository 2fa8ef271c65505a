package testenv

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ClickHouseProcess is a private ClickHouse server that a test can kill
// and restart on the same ports and data, to play an outage.
type ClickHouseProcess struct {
	// Addr is the native-protocol address; it survives restarts.
	Addr string

	t         testing.TB
	bin       string
	args      []string
	dir       string
	tcp, http int
	secure    *secureClickHouse

	mu   sync.Mutex
	proc *Proc
}

// NewClickHouse starts a private server (stopped when the test ends).
func NewClickHouse(t testing.TB) *ClickHouseProcess {
	t.Helper()
	return newClickHouse(t, nil)
}

// SecureClickHouse is a private server that also serves the native
// protocol over TLS on SecureAddr, with the certificate of certs, and knows
// User with Password (besides the password-less default user on Addr).
type SecureClickHouse struct {
	*ClickHouseProcess
	SecureAddr     string
	User, Password string
}

// NewSecureClickHouse starts a SecureClickHouse (stopped when the test ends).
func NewSecureClickHouse(t testing.TB, certs *Certs, user, password string) *SecureClickHouse {
	t.Helper()
	sec := &secureClickHouse{CertFile: certs.CertFile, KeyFile: certs.KeyFile, User: user, Password: password}
	for attempt := 1; ; attempt++ {
		port, _, err := freePortPair()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		sec.Port = port
		c := newClickHouse(t, sec)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if waitListening(addr, 10*time.Second) == nil {
			return &SecureClickHouse{ClickHouseProcess: c, SecureAddr: addr, User: user, Password: password}
		}
		if attempt == 3 {
			t.Fatalf("testenv: clickhouse: TLS port %s does not accept connections", addr)
		}
		c.Kill()
	}
}

// secureClickHouse is the TLS listener and password user of a server.
type secureClickHouse struct {
	Port              int
	CertFile, KeyFile string
	User, Password    string
}

func waitListening(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newClickHouse(t testing.TB, sec *secureClickHouse) *ClickHouseProcess {
	t.Helper()
	requireMain(t)
	bin, args, err := clickHouseCommand()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c := &ClickHouseProcess{t: t, bin: bin, args: args, dir: t.TempDir(), secure: sec}
	for attempt := 1; ; attempt++ {
		tcp, http, err := freePortPair()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		srv, err := startClickHouseOn(bin, args, c.dir, tcp, http, true, c.secure)
		if err == nil {
			c.Addr, c.tcp, c.http, c.proc = srv.addr, tcp, http, srv.proc
			break
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatalf("testenv: %v", err)
		}
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		_ = c.proc.Stop(30 * time.Second)
	})
	return c
}

// Kill sends SIGKILL, as a crash would, and waits for the exit.
func (c *ClickHouseProcess) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.proc.Kill(); err != nil {
		c.t.Errorf("testenv: kill clickhouse %s: %v", c.Addr, err)
	}
}

// Restart starts the server again on the same ports and data, stopping it
// first if it still runs, and waits until it answers.
func (c *ClickHouseProcess) Restart() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.proc.Exited():
	default:
		_ = c.proc.Stop(30 * time.Second)
	}
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		var srv *clickHouseServer
		srv, err = startClickHouseOn(c.bin, c.args, c.dir, c.tcp, c.http, false, c.secure)
		if err == nil {
			c.proc = srv.proc
			return
		}
		if !(errors.Is(err, errPortTaken) || strings.Contains(err.Error(), "in use")) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("testenv: restart clickhouse %s: %v", c.Addr, err)
}

package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouse returns the native-protocol address ("127.0.0.1:PORT") of a
// clickhouse-server started once per test binary on free loopback ports,
// with a temp data dir and a config generated here (UTC server time zone,
// user default without password from loopback only). Tests isolate
// themselves with Database. If no ClickHouse binary is installed the test
// fails telling to run `make deps`; `make test` runs it first.
//
// The server is Debian's 18.16 (it runs as root without complaint). With
// clickhouse-go v2 over the native protocol these work on it: Ping; DDL
// (databases, MergeTree family with PARTITION BY, materialized views, TO or
// with an inner engine, which store their tables fully qualified);
// PrepareBatch with named columns, a subset of them (the rest take their
// DEFAULT); LZ4 and ZSTD compression; String, UInt*/Int*, Float64,
// Decimal(18,6) to and from shopspring/decimal, DateTime and
// DateTime('UTC'), Date, Nullable, Array, FixedString, Enum8, UUID; sum() of
// a Decimal(18,6), which is Decimal(38,6); `?` arguments (bound client
// side); INSERT ... SELECT; OPTIMIZE ... FINAL; SELECT ... FINAL;
// ALTER ... DELETE.
//
// What does not work on 18.16:
//   - Exec of an INSERT carrying its data (VALUES, FORMAT ...): the server
//     waits for data blocks that never come, until ReadTimeout. Use
//     PrepareBatch.
//   - LowCardinality (experimental, off), DateTime64, Map, Bool (use
//     UInt8), IPv4, column CODECs, TTL, window functions (OVER).
//   - Opening a connection whose default database does not exist fails at
//     the handshake (code 81), as on current servers.
func ClickHouse(t testing.TB) string {
	t.Helper()
	requireMain(t)
	addr, err := sharedClickHouse()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return addr
}

var sharedClickHouse = sync.OnceValues(func() (string, error) {
	dir, err := sharedDir()
	if err != nil {
		return "", err
	}
	srv, err := startClickHouse(filepath.Join(dir, "clickhouse"))
	if err != nil {
		return "", err
	}
	onTeardown(func() {
		if err := srv.proc.Stop(30 * time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stop clickhouse: %v\n%s", err, srv.proc.LogTail(8<<10))
		}
	})
	return srv.addr, nil
})

// ClickHouseOptions returns client options for the server at addr with
// database as the connection's default database ("" for "default").
func ClickHouseOptions(addr, database string) *clickhouse.Options {
	return &clickhouse.Options{
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 5 * time.Second,
		// Bounded so that a statement the server never answers (an INSERT
		// with inline VALUES on 18.16, for one) fails the test instead of
		// hanging it for clickhouse-go's default 5 minutes.
		ReadTimeout: 60 * time.Second,
	}
}

// ClickHouseConn opens a connection to database on the server at addr and
// closes it when the test ends.
func ClickHouseConn(t testing.TB, addr, database string) clickhouse.Conn {
	t.Helper()
	conn, err := clickhouse.Open(ClickHouseOptions(addr, database))
	if err != nil {
		t.Fatalf("testenv: open clickhouse %s/%s: %v", addr, database, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Database creates a fresh, uniquely named database on the ClickHouse
// server at addr and returns its name. Nothing is dropped afterwards: the
// server's temp data dir goes away with the test binary, and a database left
// behind is what one inspects when a test fails.
func Database(t testing.TB, addr string) string {
	t.Helper()
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name := "t_" + identifier(t.Name(), 40) + "_" + hex.EncodeToString(suffix[:])
	conn, err := clickhouse.Open(ClickHouseOptions(addr, ""))
	if err != nil {
		t.Fatalf("testenv: open clickhouse %s: %v", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	return name
}

// identifier keeps letters, digits and underscores of s, at most max of them.
func identifier(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

type clickHouseServer struct {
	addr string
	proc *Proc
}

// startClickHouse starts a server with its config and data under dir and
// waits until it answers a native-protocol ping. Ports are picked free just
// before the start; another process can take one in between, so a start
// that fails with "Address already in use" is retried on new ports.
func startClickHouse(dir string) (*clickHouseServer, error) {
	bin, args, err := clickHouseCommand()
	if err != nil {
		return nil, err
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		tcpPort, httpPort, err := freePortPair()
		if err != nil {
			return nil, err
		}
		srv, err := startClickHouseOn(bin, args, dir, tcpPort, httpPort, true, nil)
		if err == nil {
			return srv, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == attempts {
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port taken")

// startClickHouseOn starts a server on the given ports with its files under
// dir; fresh empties dir first (a restart keeps it, and so the data).
func startClickHouseOn(bin string, baseArgs []string, dir string, tcpPort, httpPort int, fresh bool, sec *secureClickHouse) (*clickHouseServer, error) {
	if fresh {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("clickhouse dir: %w", err)
		}
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("clickhouse dir: %w", err)
		}
	}
	configPath, err := writeClickHouseConfig(dir, tcpPort, httpPort, sec)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	args := append(append([]string(nil), baseArgs...), "--config-file="+configPath)
	proc, err := startProc("clickhouse-server", bin, args, nil, dir)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort))
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		_ = proc.Kill()
		return nil, fmt.Errorf("clickhouse client: %w", err)
	}
	defer conn.Close()
	err = waitFor(proc, 60*time.Second, 50*time.Millisecond, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return conn.Ping(ctx) == nil, nil
	})
	if err != nil {
		_ = proc.Kill()
		errLog := readTail(filepath.Join(dir, "log", "server.err.log"), 8<<10)
		if strings.Contains(errLog, "Address already in use") || strings.Contains(errLog, "Net Exception: Address already in use") {
			return nil, fmt.Errorf("clickhouse on ports %d/%d: %w", tcpPort, httpPort, errPortTaken)
		}
		return nil, fmt.Errorf("clickhouse-server (%s): %w\nstdout/stderr:\n%s\nserver.err.log:\n%s",
			bin, err, proc.LogTail(4<<10), errLog)
	}
	if d := time.Since(started); d > 5*time.Second {
		fmt.Fprintf(os.Stderr, "testenv: clickhouse took %s to start\n", d.Round(100*time.Millisecond))
	}
	return &clickHouseServer{addr: addr, proc: proc}, nil
}

// clickHouseCommand finds the server binary: $WAMETER_CLICKHOUSE_BIN, else
// clickhouse-server (Debian's package puts it in /usr/sbin, which a non-root
// PATH may lack), else the single clickhouse binary of upstream packages,
// run as "clickhouse server".
func clickHouseCommand() (string, []string, error) {
	candidates := []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "clickhouse", "/usr/bin/clickhouse"}
	if bin := os.Getenv("WAMETER_CLICKHOUSE_BIN"); bin != "" {
		candidates = []string{bin}
	}
	for _, c := range candidates {
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		if filepath.Base(path) == "clickhouse" {
			return path, []string{"server"}, nil
		}
		return path, nil, nil
	}
	return "", nil, fmt.Errorf("no ClickHouse server binary (looked for %s): run `make deps` (make test installs it first)", strings.Join(candidates, ", "))
}

// clickHouseConfig is lean for a 2-core machine: small caches, one
// loopback listener, no interserver port, logs and data under one dir. It
// uses the <yandex> root, which both 18.16 and current releases read;
// settings 18.16 does not know are ignored by it.
var clickHouseConfig = template.Must(template.New("config").Funcs(template.FuncMap{"x": xmlEscape}).Parse(`<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{{x .Dir}}/log/server.log</log>
        <errorlog>{{x .Dir}}/log/server.err.log</errorlog>
        <size>50M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <path>{{x .Dir}}/data/</path>
    <tmp_path>{{x .Dir}}/tmp/</tmp_path>
    <user_files_path>{{x .Dir}}/user_files/</user_files_path>
    <format_schema_path>{{x .Dir}}/format_schemas/</format_schema_path>
    <users_config>{{x .Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_server_memory_usage>8589934592</max_server_memory_usage>
    <max_concurrent_queries>64</max_concurrent_queries>
    <mlock_executable>false</mlock_executable>
{{- with .Secure}}
    <tcp_port_secure>{{.Port}}</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>{{x .CertFile}}</certificateFile>
            <privateKeyFile>{{x .KeyFile}}</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
{{- end}}
</yandex>
`))

var clickHouseUsers = template.Must(template.New("users").Funcs(template.FuncMap{"x": xmlEscape}).Parse(`<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <log_queries>0</log_queries>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
{{- with .Secure}}
        <{{.User}}>
            <password>{{x .Password}}</password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </{{.User}}>
{{- end}}
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
`))

func writeClickHouseConfig(dir string, tcpPort, httpPort int, sec *secureClickHouse) (string, error) {
	data := struct {
		Dir               string
		TCPPort, HTTPPort int
		Secure            *secureClickHouse
	}{dir, tcpPort, httpPort, sec}
	var buf bytes.Buffer
	if err := clickHouseConfig.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("clickhouse config: %w", err)
	}
	configPath := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(configPath, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("clickhouse config: %w", err)
	}
	buf.Reset()
	if err := clickHouseUsers.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("clickhouse users: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), buf.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("clickhouse users: %w", err)
	}
	return configPath, nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func readTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", path, err)
	}
	if len(b) > n {
		return "...\n" + string(b[len(b)-n:])
	}
	return string(b)
}

package ops

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMuxReadiness(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "wameter_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	ready := false
	srv := httptest.NewServer(Mux(reg, func() bool { return ready }))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while not ready: %d, want 503", code)
	}
	ready = true
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready: %d, want 200", code)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "wameter_test_total 1") {
		t.Errorf("/metrics lacks the registry's counter:\n%s", body)
	}
}

func TestWritePidfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	remove, err := WritePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pidfile holds %q, %v", b, err)
	}
	remove()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("pidfile not removed")
	}
}

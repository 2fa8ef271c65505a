package pricing

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// mustDay parses a YYYY-MM-DD date or fails the test.
func mustDay(t testing.TB, s string) Day {
	t.Helper()
	d, err := ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// defaultCatalogT returns the embedded catalog or fails the test.
func defaultCatalogT(t testing.TB) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return c
}

// dataDir writes the embedded data files to a temporary directory, with the
// files named in override replaced by the given content, and returns it.
func dataDir(t testing.TB, override map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{MarketsFile, RatesFile, TiersFile} {
		data, ok := override[name]
		if !ok {
			b, err := embedded.ReadFile("data/" + name)
			if err != nil {
				t.Fatal(err)
			}
			data = string(b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

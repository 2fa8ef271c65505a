package migration_test

import (
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/migration"
	"github.com/wameter/wameter/schemas"
)

func TestRealSchemas(t *testing.T) {
	files, err := migration.Load(schemas.FS)
	if err != nil {
		t.Fatalf("load schemas: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("schemas.FS holds no schema file")
	}
	f := newFixture(t)
	applied, err := migration.Apply(t.Context(), f.opts, f.db, schemas.FS, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("apply schemas (applied %q): %v", applied, err)
	}
	if len(applied) != len(files) {
		t.Errorf("applied %d of %d files", len(applied), len(files))
	}
	again, err := migration.Apply(t.Context(), f.opts, f.db, schemas.FS, zaptest.NewLogger(t))
	if err != nil || len(again) != 0 {
		t.Errorf("second apply: applied %q, err %v; want nothing to do", again, err)
	}
}

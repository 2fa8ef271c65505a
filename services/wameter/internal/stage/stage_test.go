package stage

import (
	"strings"
	"testing"
)

func TestPartsAndDeps(t *testing.T) {
	var ps Parts[*int]
	one := 1
	if ps.Get(3) != nil {
		t.Error("an unowned partition has state")
	}
	ps.Put(3, &one)
	if ps.Get(3) != &one {
		t.Error("Put then Get lost the state")
	}
	ps.Delete(3)
	if ps.Get(3) != nil {
		t.Error("a revoked partition still has state")
	}
	var d Deps
	if err := d.Check("window"); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("Check of empty deps = %v, want an error naming the stage", err)
	}
}

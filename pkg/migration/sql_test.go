package migration

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	f := func(src string, want ...string) {
		t.Helper()
		got, err := splitStatements(src)
		if err != nil {
			t.Fatalf("splitStatements(%q): %v", src, err)
		}
		if len(want) == 0 {
			want = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("splitStatements(%q)\n got %q\nwant %q", src, got, want)
		}
	}
	f("")
	f("-- only a comment\n\n/* and another */\n;\n")
	f("CREATE TABLE t (a UInt8) ENGINE = Memory", "CREATE TABLE t (a UInt8) ENGINE = Memory")
	f("CREATE TABLE t (a UInt8) ENGINE = Memory;\n", "CREATE TABLE t (a UInt8) ENGINE = Memory")
	f("-- why\nCREATE TABLE t\n(\n    a UInt8, -- the a\n\n    b String   \n)\nENGINE = Memory -- trailing",
		"CREATE TABLE t\n(\n    a UInt8,\n    b String\n)\nENGINE = Memory")
	f("SELECT 1/*x*/+2", "SELECT 1 +2")
	f("SELECT 1; SELECT 2;", "SELECT 1", "SELECT 2")
	// Comment and statement markers inside strings and identifiers stay.
	f("SELECT '-- not; a comment', \"a;b\", `c--d`, '/* no */'", "SELECT '-- not; a comment', \"a;b\", `c--d`, '/* no */'")
	f(`SELECT 'it\'s; fine', 'it''s; too'`, `SELECT 'it\'s; fine', 'it''s; too'`)
	f("SELECT 2 - -1", "SELECT 2 - -1")
	f("SELECT 4/2", "SELECT 4/2")
}

func TestSplitStatementsErrors(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		_, err := splitStatements(src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("splitStatements(%q) error %v, want one containing %q", src, err, want)
		}
	}
	f("SELECT 'open", "unterminated ' quote")
	f("SELECT `open", "unterminated ` quote")
	f("SELECT 1 /* open", "unterminated /* comment")
}

func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"SELECT 1", "-- c\nSELECT 'a;b'; SELECT 2", "/* x */ SELECT `a`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		stmts, err := splitStatements(src)
		if err != nil {
			return
		}
		for _, s := range stmts {
			if s == "" || s != strings.TrimSpace(s) {
				t.Fatalf("statement %q is empty or untrimmed", s)
			}
			// Splitting a statement again is a no-op: it has no comments
			// and no top-level semicolons left.
			again, err := splitStatements(s)
			if err != nil || len(again) != 1 || again[0] != s {
				t.Fatalf("re-splitting %q gave %q, %v", s, again, err)
			}
		}
	})
}

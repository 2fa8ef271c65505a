package deploytest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// bundle is the deploy files under test, by slash path relative to the
// repository root. Tests mutate copies of it.
type bundle map[string][]byte

// bundleRoots are the files and folders loaded into a bundle.
var bundleRoots = []string{"deploy/k8s", "deploy/prometheus", "deploy/grafana", "docker-compose.yml", "README.md"}

func loadBundle(root string) (bundle, error) {
	b := bundle{}
	for _, r := range bundleRoots {
		err := filepath.WalkDir(filepath.Join(root, r), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			b[filepath.ToSlash(rel)] = data
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b bundle) clone() bundle {
	c := make(bundle, len(b))
	for k, v := range b {
		c[k] = v
	}
	return c
}

// under returns the paths in dir (recursively) with one of the extensions,
// sorted.
func (b bundle) under(dir string, exts ...string) []string {
	var out []string
	for p := range b {
		if !strings.HasPrefix(p, dir+"/") {
			continue
		}
		for _, e := range exts {
			if strings.HasSuffix(p, e) {
				out = append(out, p)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// hasPath reports whether p is a file of the bundle or a folder holding one.
func (b bundle) hasPath(p string) bool {
	p = strings.TrimSuffix(strings.TrimPrefix(p, "./"), "/")
	if _, ok := b[p]; ok {
		return true
	}
	for k := range b {
		if strings.HasPrefix(k, p+"/") {
			return true
		}
	}
	return false
}

// metricInfo is one metric family the Go source registers.
type metricInfo struct {
	kind   string // Counter, Gauge, Histogram, Summary
	labels map[string]bool
}

// facts are what the Go source and schemas define, shared by all tests.
type facts struct {
	metrics    map[string]*metricInfo // full names, without _bucket/_sum/_count
	wrapLabels map[string]bool        // labels added by prometheus.Labels{...} wrappers (role)
	envTags    map[string]bool        // env:"NAME" struct tags
	tables     map[string]bool        // CREATE TABLE / MATERIALIZED VIEW in schemas/*.sql
}

var (
	factsOnce sync.Once
	factsVal  *facts
	factsErr  error
	rootVal   string
)

// repoRoot is the folder holding go.mod above the test's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	if rootVal != "" {
		return rootVal
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rootVal = dir
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func loadFacts(t testing.TB) *facts {
	t.Helper()
	root := repoRoot(t)
	factsOnce.Do(func() { factsVal, factsErr = scanFacts(root) })
	if factsErr != nil {
		t.Fatal(factsErr)
	}
	return factsVal
}

var (
	reEnvTag       = regexp.MustCompile(`env:"([A-Z][A-Z0-9_]*)"`)
	reCreateObject = regexp.MustCompile(`(?i)CREATE\s+(?:TABLE|MATERIALIZED\s+VIEW|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-zA-Z_][a-zA-Z0-9_]*)`)
)

// scanFacts parses every non-test .go file of the repository for metric
// definitions (the Opts literals of the Prometheus client: Namespace,
// Subsystem, Name, and the label list passed beside them) and env struct
// tags, and the schemas for table names.
func scanFacts(root string) (*facts, error) {
	f := &facts{metrics: map[string]*metricInfo{}, wrapLabels: map[string]bool{}, envTags: map[string]bool{}, tables: map[string]bool{}}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "vendor", "node_modules", "bin", ".state":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				f.addMetric(n)
			case *ast.CompositeLit:
				if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Labels" {
					for _, e := range n.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok {
							if s, ok := stringLit(kv.Key); ok {
								f.wrapLabels[s] = true
							}
						}
					}
				}
			case *ast.Field:
				if n.Tag != nil {
					for _, m := range reEnvTag.FindAllStringSubmatch(n.Tag.Value, -1) {
						f.envTags[m[1]] = true
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sqls, err := filepath.Glob(filepath.Join(root, "schemas", "*.sql"))
	if err != nil {
		return nil, err
	}
	for _, p := range sqls {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for _, m := range reCreateObject.FindAllStringSubmatch(string(data), -1) {
			f.tables[m[1]] = true
		}
	}
	return f, nil
}

// addMetric records a call whose first argument is a prometheus XxxOpts
// literal (NewCounterVec(CounterOpts{...}, []string{...}) and friends).
func (f *facts) addMetric(call *ast.CallExpr) {
	if len(call.Args) == 0 {
		return
	}
	lit, ok := call.Args[0].(*ast.CompositeLit)
	if !ok {
		return
	}
	sel, ok := lit.Type.(*ast.SelectorExpr)
	if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
		return
	}
	kind := strings.TrimSuffix(sel.Sel.Name, "Opts")
	switch kind {
	case "Counter", "Gauge", "Histogram", "Summary":
	default:
		return
	}
	parts := map[string]string{}
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok {
			continue
		}
		if s, ok := stringLit(kv.Value); ok {
			parts[key.Name] = s
		}
	}
	if parts["Name"] == "" {
		return
	}
	var name []string
	for _, k := range []string{"Namespace", "Subsystem", "Name"} {
		if parts[k] != "" {
			name = append(name, parts[k])
		}
	}
	m := &metricInfo{kind: kind, labels: map[string]bool{}}
	if len(call.Args) > 1 {
		if labels, ok := call.Args[1].(*ast.CompositeLit); ok {
			for _, e := range labels.Elts {
				if s, ok := stringLit(e); ok {
					m.labels[s] = true
				}
			}
		}
	}
	full := strings.Join(name, "_")
	if old, ok := f.metrics[full]; ok {
		for l := range old.labels {
			m.labels[l] = true
		}
	}
	f.metrics[full] = m
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// lookupMetric resolves a series name to its family: histogram and summary
// series carry _bucket/_sum/_count suffixes.
func (f *facts) lookupMetric(series string) (*metricInfo, bool) {
	if m, ok := f.metrics[series]; ok {
		return m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(series, suffix)
		if !found {
			continue
		}
		if m, ok := f.metrics[base]; ok && (m.kind == "Histogram" || (m.kind == "Summary" && suffix != "_bucket")) {
			return m, true
		}
	}
	return nil, false
}

// envDoc is the set of environment variables the README's contract tables
// document (in backticks in a table row of the Contract section;
// `WAMETER_*_TOPIC` is a pattern).
type envDoc struct {
	names    map[string]bool
	patterns []*regexp.Regexp
}

func (d envDoc) documents(name string) bool {
	if d.names[name] {
		return true
	}
	for _, p := range d.patterns {
		if p.MatchString(name) {
			return true
		}
	}
	return false
}

// The Go runtime's variables have no underscore.
var reBacktickVar = regexp.MustCompile("`(GOMEMLIMIT|GOGC|[A-Z][A-Z0-9]*_[A-Z0-9_*]+)`")

func parseReadmeEnv(readme []byte) envDoc {
	d := envDoc{names: map[string]bool{}}
	text := string(readme)
	start := strings.Index(text, "\n## Contract")
	if start < 0 {
		return d
	}
	section := text[start+1:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(strings.TrimSpace(line), "|") || len(cells) < 3 {
			continue
		}
		for _, m := range reBacktickVar.FindAllStringSubmatch(line, -1) {
			name := m[1]
			if strings.Contains(name, "*") {
				d.patterns = append(d.patterns, regexp.MustCompile("^"+strings.ReplaceAll(regexp.QuoteMeta(name), `\*`, "[A-Z0-9_]+")+"$"))
				continue
			}
			d.names[name] = true
		}
	}
	return d
}

// knownExtras are variables the deploy files may set that the README's
// tables do not list; each is read by a Go struct tag (TestKnownExtrasAreRead).
var knownExtras = map[string]string{
	"WAMETER_PARTITIONS":               "README, Topics (prose)",
	"WAMETER_REPLICATION_FACTOR":       "README, Topics (prose)",
	"WAMETER_GROUP_PREFIX":             "README, Pipeline (prose)",
	"WAMETER_GATEWAY_ADDR":             "wameter gateway (internal/gateway/doc.go)",
	"WAMETER_GATEWAY_PATH":             "wameter gateway",
	"WAMETER_GATEWAY_MAX_BODY":         "wameter gateway",
	"WAMETER_GATEWAY_WRITE_TIMEOUT":    "wameter gateway",
	"WAMETER_GATEWAY_SHUTDOWN_TIMEOUT": "wameter gateway",
	"WHATSAPP_APP_SECRET":              "wameter gateway",
	"WHATSAPP_APP_SECRET_FILE":         "wameter gateway",
	"WHATSAPP_VERIFY_TOKEN":            "wameter gateway",
	"WHATSAPP_VERIFY_TOKEN_FILE":       "wameter gateway",
	"WAMETER_ALERT_RULES":              "wameter alert (internal/alert/service.go)",
	"WAMETER_ALERT_INTERVAL":           "wameter alert",
	"WAMETER_ALERT_OPS_ADDR":           "wameter alert",
}

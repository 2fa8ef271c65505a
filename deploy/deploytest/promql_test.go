package deploytest

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	rePromString    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	rePromMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	rePromMatcher   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	rePromGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)`)
	rePromRange     = regexp.MustCompile(`\[[^\]]*\]`)
	rePromIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	rePromLabelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// scrapeLabels are labels Prometheus or the scrape configuration adds to
// every series (deploy/prometheus/prometheus.yml, the Kubernetes relabeling).
var scrapeLabels = map[string]bool{"job": true, "instance": true, "component": true, "pod": true, "namespace": true}

// promRefs is a light reading of a PromQL expression, enough to validate it
// against the Go source: the metric names it selects (identifiers starting
// with wameter_, and up), and the label names in its matchers and in its
// by/without/on/ignoring clauses. It also rejects unbalanced brackets.
func promRefs(expr string) (metrics, labels []string, err error) {
	noStrings := rePromString.ReplaceAllString(expr, `""`)
	if err := balanced(noStrings); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	addLabel := func(l string) {
		l = strings.TrimSpace(l)
		if l != "" && !seen[l] {
			seen[l] = true
			labels = append(labels, l)
		}
	}
	for _, block := range rePromMatchers.FindAllString(noStrings, -1) {
		for _, m := range rePromMatcher.FindAllStringSubmatch(block, -1) {
			addLabel(m[1])
		}
	}
	rest := rePromMatchers.ReplaceAllString(noStrings, " ")
	for _, m := range rePromGrouping.FindAllStringSubmatch(rest, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !rePromLabelName.MatchString(l) {
				return nil, nil, fmt.Errorf("grouping label %q is not a label name", l)
			}
			addLabel(l)
		}
	}
	rest = rePromGrouping.ReplaceAllString(rest, " ")
	rest = rePromRange.ReplaceAllString(rest, " ")
	mseen := map[string]bool{}
	for _, id := range rePromIdent.FindAllString(rest, -1) {
		if (strings.HasPrefix(id, "wameter_") || id == "up") && !mseen[id] {
			mseen[id] = true
			metrics = append(metrics, id)
		}
	}
	if len(metrics) == 0 {
		return nil, nil, fmt.Errorf("selects no wameter metric (nor up)")
	}
	return metrics, labels, nil
}

func balanced(s string) error {
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var stack []rune
	for _, r := range s {
		switch r {
		case '(', '[', '{':
			stack = append(stack, r)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return fmt.Errorf("unbalanced %q", r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	return nil
}

// checkPromExpr validates expr against the Go source's metrics: every
// wameter_* name is registered somewhere, and every label it uses is a label
// of one of the metrics it selects (or a scrape label). It returns the
// metric families used.
func (f *facts) checkPromExpr(expr string) ([]string, []string) {
	metrics, labels, err := promRefs(expr)
	if err != nil {
		return nil, []string{fmt.Sprintf("expression %q: %v", oneLine(expr), err)}
	}
	var problems []string
	allowed := map[string]bool{}
	for l := range scrapeLabels {
		allowed[l] = true
	}
	for l := range f.wrapLabels {
		allowed[l] = true
	}
	var families []string
	for _, m := range metrics {
		if m == "up" {
			families = append(families, m)
			continue
		}
		info, ok := f.lookupMetric(m)
		if !ok {
			problems = append(problems, fmt.Sprintf("expression %q: unknown metric %s (not registered in any .go file)", oneLine(expr), m))
			continue
		}
		families = append(families, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count"))
		for l := range info.labels {
			allowed[l] = true
		}
		if strings.HasSuffix(m, "_bucket") {
			allowed["le"] = true
		}
	}
	for _, l := range labels {
		if !allowed[l] {
			keys := make([]string, 0, len(allowed))
			for k := range allowed {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			problems = append(problems, fmt.Sprintf("expression %q: label %q is on none of its metrics (labels: %s)", oneLine(expr), l, strings.Join(keys, ", ")))
		}
	}
	return families, problems
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

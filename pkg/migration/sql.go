package migration

import (
	"errors"
	"strings"
)

// splitStatements removes the comments of a ClickHouse SQL script and splits
// it at semicolons, both outside quoted strings and identifiers. Each
// statement comes back trimmed, with trailing blanks removed from its lines
// and blank lines dropped; empty statements are left out.
func splitStatements(src string) ([]string, error) {
	var (
		stmts []string
		cur   strings.Builder
	)
	flush := func() {
		if s := tidy(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			end, err := quotedEnd(src, i)
			if err != nil {
				return nil, err
			}
			cur.WriteString(src[i:end])
			i = end
		case c == '-' && strings.HasPrefix(src[i:], "--"):
			nl := strings.IndexByte(src[i:], '\n')
			if nl < 0 {
				i = len(src)
				continue
			}
			i += nl // keep the newline: it separates what the comment ended
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			cur.WriteByte(' ') // a/**/b is two tokens
			i += 2 + end + 2
		case c == ';':
			flush()
			i++
		default:
			cur.WriteByte(c)
			i++
		}
	}
	flush()
	return stmts, nil
}

// quotedEnd returns the index just past the quoted string or identifier
// starting at src[start]. A backslash escapes the next byte; a doubled
// quote is two adjacent quoted runs, which comes out the same.
func quotedEnd(src string, start int) (int, error) {
	quote := src[start]
	for i := start + 1; i < len(src); i++ {
		switch src[i] {
		case '\\':
			i++
		case quote:
			return i + 1, nil
		}
	}
	return 0, errors.New("unterminated " + string(quote) + " quote")
}

// tidy trims s, the trailing blanks of its lines, and its blank lines.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	kept := lines[:0]
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if strings.TrimSpace(l) != "" {
			kept = append(kept, l)
		}
	}
	return strings.TrimSpace(strings.Join(kept, "\n"))
}

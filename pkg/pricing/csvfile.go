package pricing

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// record is one data row of a CSV file, fields trimmed of surrounding space.
type record struct {
	line   int
	fields []string
}

// problems collects every problem found while loading, each prefixed with
// file:line, so that an operator fixes a broken file in one pass.
type problems struct {
	list []problem
}

type problem struct {
	file string
	line int // 0: the file as a whole
	err  error
}

func (p *problems) add(file string, line int, err error) {
	p.list = append(p.list, problem{file: file, line: line, err: fmt.Errorf("%s:%d: %w", file, line, err)})
}

// addFile records a problem with a whole file.
func (p *problems) addFile(file string, err error) {
	p.list = append(p.list, problem{file: file, err: fmt.Errorf("%s: %w", file, err)})
}

func (p *problems) addf(file string, line int, format string, args ...any) {
	p.add(file, line, fmt.Errorf(format, args...))
}

// err returns every problem, ordered by file and line, or nil.
func (p *problems) err() error {
	slices.SortStableFunc(p.list, func(a, b problem) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.line, b.line))
	})
	errs := make([]error, len(p.list))
	for i, pr := range p.list {
		errs[i] = pr.err
	}
	return errors.Join(errs...)
}

// joinInline joins errors that belong to one cell or row into one error,
// on one line.
func joinInline(errs []error) error {
	err := errs[0]
	for _, e := range errs[1:] {
		err = fmt.Errorf("%w; %w", err, e)
	}
	return err
}

// readCSV reads name from fsys, checks that its header is exactly header,
// and returns its data rows. Rows with the wrong number of fields are
// reported and dropped. label is how the file is named in messages.
func readCSV(fsys fs.FS, name, label string, header []string, p *problems) []record {
	f, err := fsys.Open(name)
	if err != nil {
		p.addFile(label, err)
		return nil
	}
	defer f.Close()

	r := csv.NewReader(f)
	r.FieldsPerRecord = -1 // checked below, so that every bad row is reported
	var rows []record
	first := true
	for {
		fields, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) {
			p.add(label, parseErr.Line, parseErr.Err)
			continue
		}
		if err != nil {
			p.addFile(label, err)
			break
		}
		line, _ := r.FieldPos(0)
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		if first {
			first = false
			fields[0] = strings.TrimPrefix(fields[0], "\ufeff")
			if !slices.Equal(fields, header) {
				p.addf(label, line, "header is %q, want %q", strings.Join(fields, ","), strings.Join(header, ","))
				return nil
			}
			continue
		}
		if len(fields) != len(header) {
			p.addf(label, line, "%d fields, want %d (%s)", len(fields), len(header), strings.Join(header, ","))
			continue
		}
		rows = append(rows, record{line: line, fields: fields})
	}
	if first {
		p.addf(label, 1, "empty file, want header %q", strings.Join(header, ","))
	}
	return rows
}

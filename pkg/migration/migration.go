// Package migration applies the numbered SQL files of schemas/ to a
// ClickHouse database: in version order, each once, recording what it
// applied in the database's schema_migrations table.
//
// Files are named NNNN_name.sql (NNNN a positive version, unique) and hold
// one statement: one object per file, because ClickHouse has no transactional
// DDL and a file is the unit that is either recorded or not. Comments are
// stripped and a trailing semicolon is optional.
//
// Statements use unqualified names and run on a connection whose default
// database is the target database (no {database} substitution). Materialized
// views store their source and target tables fully qualified at creation, on
// 18.16 as on current releases, so they keep pointing into that database.
//
// A file is identified by version, name and checksum. The checksum covers
// the statement with comments and blank lines removed, so rewording a
// comment of an applied file is fine while changing its SQL is refused:
// write a new file instead.
//
// Run Apply from one place at a time (the schema subcommand, or the
// single-process default at startup): two concurrent runs would both try to
// create the same objects and one fails with "already exists".
package migration

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.uber.org/zap"
)

// Table is the table, in the target database, that records applied files.
const Table = "schema_migrations"

// File is one schema file.
type File struct {
	Version   uint32
	Name      string // file name, e.g. "0002_charges.sql"
	Statement string // comments stripped
	Checksum  string // hex SHA-256 of Statement
}

var fileName = regexp.MustCompile(`^([0-9]{4,9})_([a-z0-9_]+)\.sql$`)

// Load reads the *.sql files at the root of fsys, sorted by version. Every
// .sql file must be named NNNN_name.sql with a unique positive version and
// hold exactly one statement; Load reports every file that does not.
func Load(fsys fs.FS) ([]File, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read schema dir: %w", err)
	}
	var (
		files []File
		errs  []error
		seen  = make(map[uint32]string)
	)
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		f, err := loadFile(fsys, e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, ok := seen[f.Version]; ok {
			errs = append(errs, fmt.Errorf("%s: version %d already used by %s", f.Name, f.Version, other))
			continue
		}
		seen[f.Version] = f.Name
		files = append(files, f)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b File) int { return cmp.Compare(a.Version, b.Version) })
	return files, nil
}

func loadFile(fsys fs.FS, name string) (File, error) {
	m := fileName.FindStringSubmatch(name)
	if m == nil {
		return File{}, fmt.Errorf("%s: name is not NNNN_name.sql (digits, then lower-case letters, digits and underscores)", name)
	}
	version, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil || version == 0 {
		return File{}, fmt.Errorf("%s: version must be a positive number", name)
	}
	src, err := fs.ReadFile(fsys, name)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", name, err)
	}
	stmts, err := splitStatements(string(src))
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(stmts) != 1 {
		return File{}, fmt.Errorf("%s: holds %d statements, want exactly one (one object per file)", name, len(stmts))
	}
	sum := sha256.Sum256([]byte(stmts[0]))
	return File{
		Version:   uint32(version),
		Name:      name,
		Statement: stmts[0],
		Checksum:  hex.EncodeToString(sum[:]),
	}, nil
}

// record is a row of the schema_migrations table.
type record struct {
	version   uint32
	name      string
	checksum  string
	appliedAt time.Time
}

// Plan returns the files of fsys not yet applied to database, in the order
// Apply would apply them, after the checks Apply makes: every recorded file
// is still in fsys under the same name and checksum. It creates nothing; a
// missing database or table means every file is pending.
func Plan(ctx context.Context, opts *clickhouse.Options, database string, fsys fs.FS) ([]File, error) {
	files, err := Load(fsys)
	if err != nil {
		return nil, err
	}
	if err := checkIdentifier(database); err != nil {
		return nil, err
	}
	conn, err := openConn(opts, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var exists uint64
	err = conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", database, Table).Scan(&exists)
	if err != nil {
		return nil, fmt.Errorf("look up %s.%s: %w", database, Table, err)
	}
	if exists == 0 {
		return files, nil
	}
	recs, err := readRecords(ctx, conn, "`"+database+"`.`"+Table+"`")
	if err != nil {
		return nil, err
	}
	return pending(files, recs)
}

// Apply creates database if missing, and in it the schema_migrations table
// (version UInt32, name String, checksum String, applied_at DateTime), then
// applies the files of fsys not yet recorded there, in version order,
// recording each right after it succeeds. It returns the names of the files
// it applied, also when it stops at an error.
//
// It refuses to apply anything when a recorded file is missing from fsys or
// its name or checksum changed. A file whose statement fails stays
// unrecorded; if it failed after creating its object (or the process died
// before recording it), the next run fails with "already exists" for it,
// and someone has to look.
//
// opts is copied, never modified; Apply opens its own connections (one on
// the user's default database to create database, one on database to run
// the statements) and closes them. logger must not be nil.
func Apply(ctx context.Context, opts *clickhouse.Options, database string, fsys fs.FS, logger *zap.Logger) ([]string, error) {
	if logger == nil {
		return nil, errors.New("migration: nil logger")
	}
	logger = logger.Named("migration").With(zap.String("database", database))
	files, err := Load(fsys)
	if err != nil {
		return nil, err
	}
	if err := checkIdentifier(database); err != nil {
		return nil, err
	}

	// The target connection cannot be opened before the database exists:
	// the server refuses the handshake.
	admin, err := openConn(opts, "")
	if err != nil {
		return nil, err
	}
	err = admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+database+"`")
	admin.Close()
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", database, err)
	}

	conn, err := openConn(opts, database)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+Table+` (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime DEFAULT now()
)
ENGINE = MergeTree()
ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("create %s.%s: %w", database, Table, err)
	}
	recs, err := readRecords(ctx, conn, Table)
	if err != nil {
		return nil, err
	}
	todo, err := pending(files, recs)
	if err != nil {
		return nil, err
	}
	var highest uint32
	for _, r := range recs {
		highest = max(highest, r.version)
	}

	var applied []string
	for _, f := range todo {
		if f.Version < highest {
			logger.Warn("applying a file numbered below one already applied",
				zap.String("file", f.Name), zap.Uint32("highest_applied", highest))
		}
		started := time.Now()
		if err := conn.Exec(ctx, f.Statement); err != nil {
			return applied, fmt.Errorf("apply %s: %w", f.Name, err)
		}
		// A batch, not INSERT ... VALUES: 18.16 never answers inline
		// VALUES sent by clickhouse-go over the native protocol.
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+Table+" (version, name, checksum)")
		if err == nil {
			err = batch.Append(f.Version, f.Name, f.Checksum)
			if err == nil {
				err = batch.Send()
			} else {
				_ = batch.Abort()
			}
		}
		if err != nil {
			return applied, fmt.Errorf("record %s (applied, NOT recorded: insert its row by hand or drop its object): %w", f.Name, err)
		}
		applied = append(applied, f.Name)
		logger.Info("applied", zap.String("file", f.Name), zap.Duration("took", time.Since(started)))
	}
	if len(applied) == 0 {
		logger.Info("schema up to date", zap.Int("files", len(files)))
	}
	return applied, nil
}

// pending checks recs against files and returns the files not recorded.
func pending(files []File, recs []record) ([]File, error) {
	byVersion := make(map[uint32]File, len(files))
	for _, f := range files {
		byVersion[f.Version] = f
	}
	var errs []error
	done := make(map[uint32]bool, len(recs))
	for _, r := range recs {
		f, ok := byVersion[r.version]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s (version %d) was applied %s but is not among the schema files: this build is older than the database", r.name, r.version, r.appliedAt.Format(time.RFC3339)))
		case f.Name != r.name:
			errs = append(errs, fmt.Errorf("version %d was applied as %s but the file is now %s: renumber the new file instead", r.version, r.name, f.Name))
		case f.Checksum != r.checksum:
			errs = append(errs, fmt.Errorf("%s changed since it was applied %s (checksum %.12s, now %.12s): applied files are immutable, add a new file", f.Name, r.appliedAt.Format(time.RFC3339), r.checksum, f.Checksum))
		}
		done[r.version] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("schema files do not match %s: %w", Table, err)
	}
	var todo []File
	for _, f := range files {
		if !done[f.Version] {
			todo = append(todo, f)
		}
	}
	return todo, nil
}

func readRecords(ctx context.Context, conn clickhouse.Conn, table string) ([]record, error) {
	rows, err := conn.Query(ctx, "SELECT version, name, checksum, applied_at FROM "+table+" ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	var recs []record
	for rows.Next() {
		var r record
		if err := rows.Scan(&r.version, &r.name, &r.checksum, &r.appliedAt); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	return recs, nil
}

func openConn(opts *clickhouse.Options, database string) (clickhouse.Conn, error) {
	if opts == nil {
		return nil, errors.New("migration: nil clickhouse options")
	}
	o := *opts
	o.Auth.Database = database
	conn, err := clickhouse.Open(&o)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", strings.Join(opts.Addr, ","), err)
	}
	return conn, nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkIdentifier(database string) error {
	if !identifier.MatchString(database) {
		return fmt.Errorf("database name %q: want letters, digits and underscores, not starting with a digit", database)
	}
	return nil
}

// Package schemas holds the ClickHouse schema: one object per numbered
// NNNN_name.sql file, applied in order by pkg/migration.
package schemas

import "embed"

// FS holds the *.sql files of this folder.
//
//go:embed *.sql
var FS embed.FS

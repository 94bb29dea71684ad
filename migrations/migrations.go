// Package migrations embeds the SQL migrations, applied by golang-migrate.
// Files are numbered 000001_name.up.sql with a matching .down.sql.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS

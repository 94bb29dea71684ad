// Package web holds Ordertune's browser UI: one HTML shell, a style sheet and
// plain JavaScript modules, embedded in the binary so that serving it needs no
// files on disk and no build step. The HTTP layer (internal/httpapi) serves
// it; every page talks to the server only through the JSON API.
package web

import (
	"embed"
	"io/fs"
)

// files is read-only: embed.FS cannot be changed after compilation.
//
//go:embed index.html assets
var files embed.FS

// FS returns the UI's files: index.html at the root and everything it loads
// under assets/.
func FS() fs.FS { return files }

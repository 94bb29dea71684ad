package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/web"
)

// contentSecurityPolicy allows only the UI's own files: no inline script or
// style, no eval, no other origin. Images may be data: URIs because the TOTP
// enrolment QR code arrives as one. Trusted Types turn any accidental
// innerHTML-style sink into an error instead of a script injection.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; " +
	"base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

// WebPagePaths returns the client-side routes of the UI (web/assets/js/main.js),
// each answered with index.html so that a reload or a bookmark of any page works.
func WebPagePaths() []string {
	return []string{
		"/",
		"/signin",
		"/signup",
		"/signin/2fa",
		"/enroll",
		"/confirmations",
		"/confirmations/:id",
		"/settings/broker",
		"/settings/position-size",
		"/settings/risk",
		"/settings/password",
		"/settings/notifications",
		"/settings/webhooks",
		"/notifications",
		"/portfolio",
		"/admin/confirmations",
		"/admin/confirmations/:id",
		"/admin/users",
		"/admin/sessions",
		"/admin/signals",
		"/admin/audit",
		"/admin/tokens",
		"/admin/risk",
		"/forgot-password",
		"/reset-password",
	}
}

// WebAssetsPath is the route of the UI's static files.
const WebAssetsPath = "/assets/*"

// webFile is one prepared file of the UI, with its gzip encoding when that
// is worth sending.
type webFile struct {
	body        []byte
	etag        string
	contentType string
	gz          []byte // nil when compression would not pay
}

// newWebFile prepares b for serving as name.
func newWebFile(name string, b []byte) webFile {
	f := webFile{body: b, etag: etagOf(b), contentType: contentType(name)}
	if strings.HasPrefix(f.contentType, "text/") || f.contentType == "image/svg+xml" || f.contentType == "application/json" {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		if buf.Len() < len(b)*9/10 {
			f.gz = buf.Bytes()
		}
	}
	return f
}

// webUI is the embedded UI prepared once at start-up. Assets are addressed
// as /assets/<version>/<path>, where version hashes every asset: a new build
// gets new URLs, so those responses can be cached for a year, while
// index.html is revalidated on every load by its ETag.
type webUI struct {
	version string
	index   webFile
	assets  map[string]webFile // by path below assets/
}

// contentType names a file's media type from a fixed table rather than the
// system's MIME tables, which differ between machines (and give .js as
// text/plain on some).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".json":
		return "application/json"
	case ".webmanifest":
		return "application/manifest+json"
	case ".woff2":
		return "font/woff2"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// newWebUI reads every file of fsys: index.html and assets/**.
func newWebUI(fsys fs.FS) (*webUI, error) {
	ui := &webUI{assets: make(map[string]webFile)}
	var names []string
	err := fs.WalkDir(fsys, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "assets/")
		ui.assets[rel] = newWebFile(p, b)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read web assets: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s %s\n", n, ui.assets[n].etag)
	}
	ui.version = hex.EncodeToString(h.Sum(nil))[:16]

	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		return nil, fmt.Errorf("read web index: %w", err)
	}
	// Point the shell at this build's URLs; modules import each other by
	// relative paths, so they all stay under the same version.
	index = bytes.ReplaceAll(index, []byte(`"/assets/`), []byte(`"/assets/`+ui.version+`/`))
	ui.index = newWebFile("index.html", index)
	return ui, nil
}

// webRoutes registers the UI: index.html at every client-side route, and the
// assets.
func (s *Server) webRoutes() {
	ui, err := newWebUI(web.FS())
	if err != nil {
		// The files are compiled in; failing to read them is a build defect.
		panic(err)
	}
	s.ui = ui
	for _, p := range WebPagePaths() {
		s.e.GET(p, ui.serveIndex)
	}
	s.e.GET(WebAssetsPath, ui.serveAsset)
}

// wantsPage reports whether a request that found nothing is a browser
// navigating to a page (GET or HEAD for HTML outside /api/ and /assets/),
// which gets the UI's own "Page not found" rather than problem+json.
func wantsPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/assets/") {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// serveNotFound answers with index.html and status 404: the UI's router
// finds no page for the path and says so in words.
func (ui *webUI) serveNotFound(c echo.Context) {
	h := c.Response().Header()
	securityHeaders(h)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", ui.index.contentType)
	c.Response().WriteHeader(http.StatusNotFound)
	if c.Request().Method != http.MethodHead {
		_, _ = c.Response().Write(ui.index.body)
	}
}

func securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

func (ui *webUI) serveIndex(c echo.Context) error {
	h := c.Response().Header()
	securityHeaders(h)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Cache-Control", "no-cache")
	serveFile(c, "index.html", ui.index)
	return nil
}

// serveAsset answers /assets/<version>/<path> with a year of caching, and
// /assets/<path> (or another build's version) revalidated by ETag: after a
// deploy, a page still open may ask for an old URL and should get the file.
func (ui *webUI) serveAsset(c echo.Context) error {
	rest := c.Param("*")
	cache := "no-cache"
	if v, p, ok := strings.Cut(rest, "/"); ok && v == ui.version {
		rest, cache = p, "public, max-age=31536000, immutable"
	} else if ok && isVersion(v) {
		rest = p
	}
	f, found := ui.assets[rest]
	if !found {
		return errs.E(errs.NotFound, "no such file")
	}
	h := c.Response().Header()
	securityHeaders(h)
	h.Set("Cache-Control", cache)
	serveFile(c, rest, f)
	return nil
}

// isVersion reports whether s looks like an asset version (16 hex digits).
func isVersion(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// serveFile writes f, gzipped when the client accepts it, answering
// If-None-Match with 304 and HEAD without a body.
func serveFile(c echo.Context, name string, f webFile) {
	h := c.Response().Header()
	h.Set("Content-Type", f.contentType)
	body, etag := f.body, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
			// Each encoding is its own representation, with its own ETag.
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(c.Response(), c.Request(), name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip
// (present and not refused with q=0).
func acceptsGzip(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

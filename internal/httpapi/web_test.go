package httpapi

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/web"
)

func get(t *testing.T, h http.Handler, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func testUI(t *testing.T) *webUI {
	t.Helper()
	ui, err := newWebUI(web.FS())
	if err != nil {
		t.Fatal(err)
	}
	return ui
}

func TestWebIndexAtEveryPage(t *testing.T) {
	s, _ := newTestServer(t)
	ui := testUI(t)
	for _, p := range append(WebPagePaths(), "/confirmations/0b0e2a4c-8a0c-4d3e-9a57-3f1f4f0c9f11") {
		if strings.Contains(p, ":") {
			continue
		}
		rec := get(t, s.Handler(), p, nil)
		got := map[string]string{
			"status":        http.StatusText(rec.Code),
			"Content-Type":  rec.Header().Get("Content-Type"),
			"Cache-Control": rec.Header().Get("Cache-Control"),
			"CSP":           rec.Header().Get("Content-Security-Policy"),
			"nosniff":       rec.Header().Get("X-Content-Type-Options"),
			"ETag":          rec.Header().Get("ETag"),
		}
		want := map[string]string{
			"status":        "OK",
			"Content-Type":  "text/html; charset=utf-8",
			"Cache-Control": "no-cache",
			"CSP":           contentSecurityPolicy,
			"nosniff":       "nosniff",
			"ETag":          ui.index.etag,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", p, diff)
		}
		if !strings.Contains(rec.Body.String(), `src="/assets/`+ui.version+`/js/main.js"`) {
			t.Errorf("GET %s: index does not load the versioned main.js:\n%s", p, rec.Body)
		}
	}
}

func TestWebAssetCaching(t *testing.T) {
	s, _ := newTestServer(t)
	ui := testUI(t)
	main := ui.assets["js/main.js"]
	tests := []struct {
		name, target, inm string
		wantStatus        int
		wantCache, wantCT string
	}{
		{"versioned", "/assets/" + ui.version + "/js/main.js", "", 200, "public, max-age=31536000, immutable", "text/javascript; charset=utf-8"},
		{"unversioned", "/assets/js/main.js", "", 200, "no-cache", "text/javascript; charset=utf-8"},
		{"old version", "/assets/0123456789abcdef/app.css", "", 200, "no-cache", "text/css; charset=utf-8"},
		{"svg", "/assets/" + ui.version + "/icon.svg", "", 200, "public, max-age=31536000, immutable", "image/svg+xml"},
		{"revalidated", "/assets/js/main.js", main.etag, 304, "no-cache", ""},
		{"missing", "/assets/" + ui.version + "/js/nope.js", "", 404, "no-store", "application/problem+json"},
		{"escape", "/assets/../web.go", "", 404, "no-store", "application/problem+json"},
		{"directory", "/assets/" + ui.version + "/js", "", 404, "no-store", "application/problem+json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.inm != "" {
				hdr["If-None-Match"] = tt.inm
			}
			rec := get(t, s.Handler(), tt.target, hdr)
			got := []any{rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Get("Content-Type")}
			want := []any{tt.wantStatus, tt.wantCache, tt.wantCT}
			if tt.wantStatus == 304 {
				got[2] = ""
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", tt.target, diff)
			}
			if tt.wantStatus == 200 && rec.Header().Get("ETag") == "" {
				t.Errorf("GET %s: no ETag", tt.target)
			}
		})
	}
}

func TestWebVersionChangesWithContent(t *testing.T) {
	a := fstest.MapFS{
		"index.html":        {Data: []byte(`<script type="module" src="/assets/js/main.js"></script>`)},
		"assets/js/main.js": {Data: []byte("1")},
	}
	b := fstest.MapFS{
		"index.html":        a["index.html"],
		"assets/js/main.js": {Data: []byte("2")},
	}
	ua, err := newWebUI(a)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := newWebUI(b)
	if err != nil {
		t.Fatal(err)
	}
	if ua.version == ub.version || ua.index.etag == ub.index.etag {
		t.Fatalf("versions %s and %s (index ETags %s, %s): want different builds to get different URLs", ua.version, ub.version, ua.index.etag, ub.index.etag)
	}
}

// TestWebNoInlineScript keeps index.html compatible with the CSP: every
// script is a file, and no element carries an inline handler or style.
func TestWebNoInlineScript(t *testing.T) {
	b, err := fs.ReadFile(web.FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(m, ` src="`) {
			t.Errorf("inline script %s", m)
		}
	}
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`<style`)} {
		if loc := bad.FindStringIndex(html); loc != nil {
			t.Errorf("index.html has %q, which the CSP blocks", html[loc[0]:loc[1]])
		}
	}
}

// TestWebRoutesMatchClient checks that the server answers index.html for
// exactly the client router's routes.
func TestWebRoutesMatchClient(t *testing.T) {
	b, err := fs.ReadFile(web.FS(), "assets/js/main.js")
	if err != nil {
		t.Fatal(err)
	}
	var client []string
	for _, m := range regexp.MustCompile(`\{ path: '([^']+)'`).FindAllStringSubmatch(string(b), -1) {
		client = append(client, m[1])
	}
	server := WebPagePaths()
	sort.Strings(client)
	sort.Strings(server)
	if diff := cmp.Diff(server, client); diff != "" {
		t.Errorf("client routes vs WebPagePaths (-server +client):\n%s", diff)
	}
}

// TestWebImportsResolve follows every static import of every module, so a
// typo in a module path fails here rather than as a blank page.
func TestWebImportsResolve(t *testing.T) {
	ui := testUI(t)
	imp := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'`)
	for name, f := range ui.assets {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range imp.FindAllStringSubmatch(string(f.body), -1) {
			spec := m[1] + m[2]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative imports stay under the asset version", name, spec)
				continue
			}
			target := path.Join(path.Dir(name), spec)
			if _, ok := ui.assets[target]; !ok {
				t.Errorf("%s imports %q: no such asset %s", name, spec, target)
			}
		}
	}
}

func FuzzWebAssetPath(f *testing.F) {
	ui, err := newWebUI(web.FS())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"js/main.js", ui.version + "/app.css", "../index.html", "%2e%2e/x", "/", "", "0123456789abcdef/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		e := echo.New()
		c := e.NewContext(req, rec)
		c.SetParamNames("*")
		c.SetParamValues(p)
		err := ui.serveAsset(c)
		if err == nil && rec.Code == http.StatusOK {
			// Whatever was served must be one of the embedded assets.
			found := false
			for _, a := range ui.assets {
				if a.etag == rec.Header().Get("ETag") {
					found = true
				}
			}
			if !found {
				t.Fatalf("path %q served something that is not an asset", p)
			}
		}
	})
}

func TestWebGzip(t *testing.T) {
	s, _ := newTestServer(t)
	ui := testUI(t)
	main := ui.assets["js/main.js"]
	if main.gz == nil {
		t.Fatal("main.js is not prepared gzipped")
	}
	tests := []struct {
		accept       string
		wantEncoding string
	}{
		{"", ""},
		{"gzip", "gzip"},
		{"br, gzip, deflate", "gzip"},
		{"gzip;q=0", ""},
		{"GZIP; q=0.5", "gzip"},
		{"identity", ""},
	}
	for _, tt := range tests {
		rec := get(t, s.Handler(), "/assets/"+ui.version+"/js/main.js", map[string]string{"Accept-Encoding": tt.accept})
		if got := rec.Header().Get("Content-Encoding"); got != tt.wantEncoding {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", tt.accept, got, tt.wantEncoding)
			continue
		}
		if rec.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary = %q", tt.accept, rec.Header().Get("Vary"))
		}
		body := rec.Body.Bytes()
		if tt.wantEncoding == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(rec.Header().Get("ETag"), `-gz"`) {
				t.Errorf("gzipped ETag %q shares the plain one's", rec.Header().Get("ETag"))
			}
		}
		if !bytes.Equal(body, main.body) {
			t.Errorf("Accept-Encoding %q: body differs from the asset", tt.accept)
		}
	}
	// The gzipped representation revalidates by its own ETag.
	rec := get(t, s.Handler(), "/assets/js/main.js", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": strings.TrimSuffix(main.etag, `"`) + `-gz"`})
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidating the gzipped file: %d, want 304", rec.Code)
	}
}

func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "gzip;q=0", "br;q=1, gzip;q=0.5", ";;,", "gzip;q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := acceptsGzip(s)
		if got && !strings.Contains(strings.ToLower(s), "gzip") {
			t.Fatalf("acceptsGzip(%q) = true without gzip in it", s)
		}
	})
}

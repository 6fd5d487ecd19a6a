package web

import (
	"embed"
	"net/http"
	"strings"
)

// staticFiles are the browser scripts, served under /static/. They are
// separate files, never inline, so pages can keep a strict
// Content-Security-Policy (script-src 'self').
//
//go:embed static
var staticFiles embed.FS

// StaticHandler serves the embedded files at /static/<name> (mount it on
// "GET /static/"). Directory listings are not served.
func StaticHandler() http.Handler {
	files := http.FileServerFS(staticFiles)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/static/") || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

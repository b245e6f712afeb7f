package localapi

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// uiPrefix is where the web UI is served. Its pages read the API of the
// agent that serves them, same-origin, as any other client does.
const uiPrefix = "/ui/"

// uiAssets are the UI's files: plain HTML, CSS and JavaScript, so the page
// needs no build step and no network beyond the agent.
//
//go:embed ui
var uiAssets embed.FS

// uiFiles serves uiAssets below uiPrefix.
var uiFiles = func() http.Handler {
	sub, err := fs.Sub(uiAssets, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	return http.StripPrefix(uiPrefix, http.FileServerFS(sub))
}()

// uiSecurity is the policy every UI response carries: the page loads
// nothing but its own files and talks to nothing but its agent, and no
// other site may frame it (its buttons change the agent).
const uiSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveUI serves the web UI for GET and HEAD requests of /, /ui and
// /ui/…, and reports whether the path was one of those. It runs after the
// Host and browser-origin checks, as every route does.
func serveUI(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if p != "/" && p != "/ui" && !strings.HasPrefix(p, uiPrefix) {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" not allowed on "+p+"; use GET", http.StatusMethodNotAllowed)
		return true
	}
	if p == "/" || p == "/ui" {
		http.Redirect(w, r, uiPrefix, http.StatusFound)
		return true
	}
	h := w.Header()
	h.Set("Content-Security-Policy", uiSecurity)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// The files change only with the binary; revalidate so that an
	// upgraded agent serves its own UI, never a cached older one.
	h.Set("Cache-Control", "no-cache")
	uiFiles.ServeHTTP(w, r)
	return true
}

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

// isUIPath reports whether a path is the UI's: /, /ui or /ui/….
//
// The UI's files are the same for everyone and change nothing, so they
// are served after the Host check (a DNS-rebinding page gets nothing) but
// not the cross-origin one: a link from another site (a dashboard, a
// wiki) opens the UI. The requests the page then makes are same-origin,
// and the API checks them as any other.
func isUIPath(p string) bool {
	return p == "/" || p == "/ui" || strings.HasPrefix(p, uiPrefix)
}

// serveUI serves the web UI for GET and HEAD requests of its paths, and
// reports whether the path was one of those.
func serveUI(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if !isUIPath(p) {
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

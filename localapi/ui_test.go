package localapi

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestUIServed(t *testing.T) {
	_, h := newTestServer(t)
	for _, tc := range []struct {
		method, path string
		code         int
		contentType  string // prefix
	}{
		{"GET", "/ui/", 200, "text/html"},
		{"HEAD", "/ui/", 200, "text/html"},
		{"GET", "/ui/index.html", 301, ""}, // FileServer's canonical /ui/
		{"GET", "/ui/app.js", 200, "text/javascript"},
		{"GET", "/ui/app.css", 200, "text/css"},
		{"GET", "/ui/nope.js", 404, ""},
		{"POST", "/ui/", 405, ""},
		{"PUT", "/ui/app.js", 405, ""},
	} {
		r := do(t, h, tc.method, tc.path, "")
		if r.code != tc.code {
			t.Errorf("%s %s: status %d, want %d: %s", tc.method, tc.path, r.code, tc.code, r.body)
			continue
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("%s %s: Content-Type %q, want %s…", tc.method, tc.path, ct, tc.contentType)
		}
		if tc.code == 200 {
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s: Content-Security-Policy %q", tc.path, csp)
			}
			if r.header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s: may be framed by another site", tc.path)
			}
		}
	}
	for _, p := range []string{"/", "/ui"} {
		r := do(t, h, "GET", p, "")
		if r.code != 302 || r.header.Get("Location") != "/ui/" {
			t.Errorf("GET %s: status %d to %q, want a redirect to /ui/", p, r.code, r.header.Get("Location"))
		}
	}
	// Other paths are still the API's 404, not the UI's.
	for _, p := range []string{"/uix", "/v1/ui/", "/favicon.ico"} {
		if r := do(t, h, "GET", p, ""); r.code != 404 || !strings.HasPrefix(r.body, "no such endpoint") {
			t.Errorf("GET %s: status %d %q, want the API's 404", p, r.code, r.body)
		}
	}
}

// The page is refused to a Host that does not name the agent, but may be
// opened from another site (it is framed by none: see TestUIServed); the
// API still refuses other sites; and the page's own same-origin requests,
// as Chromium sends them, pass the browser checks.
func TestUISameOrigin(t *testing.T) {
	_, h := newTestServer(t)
	for _, tc := range []struct {
		name, method, path string
		headers            []string
		code               int
	}{
		{"the page, DNS rebinding", "GET", "/ui/", []string{"Host: evil.example:8500", "Sec-Fetch-Site: none"}, 403},
		{"the page, by a link on another site", "GET", "/ui/", []string{"Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: navigate"}, 200},
		{"the page, by a link, DNS rebinding", "GET", "/ui/", []string{"Host: evil.example", "Sec-Fetch-Site: cross-site"}, 403},
		{"the page, typed in", "GET", "/ui/", []string{"Sec-Fetch-Site: none", "Sec-Fetch-Mode: navigate"}, 200},
		{"its script", "GET", "/ui/app.js", []string{"Sec-Fetch-Site: same-origin", "Sec-Fetch-Mode: no-cors"}, 200},
		{"its reads", "GET", "/v1/catalog/services?index=0&wait=30s", []string{"Sec-Fetch-Site: same-origin", "Sec-Fetch-Mode: cors"}, 200},
		{"its writes", "PUT", "/v1/agent/maintenance?enable=true&reason=ui", []string{"Origin: http://127.0.0.1:8500", "Sec-Fetch-Site: same-origin"}, 200},
		{"another site's write", "PUT", "/v1/agent/maintenance?enable=true", []string{"Origin: http://evil.example", "Sec-Fetch-Site: cross-site"}, 403},
		{"another site's read", "GET", "/v1/catalog/services", []string{"Origin: http://evil.example", "Sec-Fetch-Site: cross-site"}, 403},
		{"another site's write to the UI's path", "POST", "/ui/", []string{"Origin: http://evil.example", "Sec-Fetch-Site: cross-site"}, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, h, tc.method, tc.path, "", tc.headers...)
			if r.code != tc.code {
				t.Errorf("status %d, want %d: %s", r.code, tc.code, r.body)
			}
		})
	}
}

// The policy allows no inline script, style or handler; the page must
// not need one, and every file it names must be there.
func TestUIAssetsFitThePolicy(t *testing.T) {
	inline := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|style="|\son[a-z]+=|javascript:`)
	err := fs.WalkDir(uiAssets, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(uiAssets, p)
		if err != nil {
			return err
		}
		if m := inline.Find(b); m != nil {
			t.Errorf("%s: %q would be refused by the page's Content-Security-Policy", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	index, _ := fs.ReadFile(uiAssets, "ui/index.html")
	for _, m := range regexp.MustCompile(`(?:src|href)="([a-z.]+)"`).FindAllSubmatch(index, -1) {
		if _, err := fs.Stat(uiAssets, "ui/"+string(m[1])); err != nil {
			t.Errorf("index.html names %s: %v", m[1], err)
		}
	}
}

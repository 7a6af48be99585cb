package demo_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/web/demo"
)

var cfg = demo.Config{
	Issuer: "http://127.0.0.1:9000", API: "http://127.0.0.1:9101", APIPollSeconds: 5, ActivitySeconds: 60,
	SessionEvents: true, RenewAt: 0.75, DefaultStrategy: "refresh",
	Strategies: []demo.Strategy{{ID: "refresh", Kind: demo.KindToken, ClientID: "demo-refresh", Method: demo.MethodRefresh, ResponseType: "code"}},
}

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestHandler(t *testing.T) {
	h := demo.Handler(cfg)
	for _, tc := range []struct {
		path, contentType string
	}{
		{"/", "text/html"},
		{"/callback.html", "text/html"},
		{"/silent.html", "text/html"},
		{"/renewal.js", "text/javascript"},
		{"/app.js", "text/javascript"},
		{"/bff.js", "text/javascript"},
		{"/style.css", "text/css"},
		{"/config.json", "application/json"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.contentType)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{
				"script-src 'self'",
				"connect-src 'self' http://127.0.0.1:9000 http://127.0.0.1:9101",
				"frame-src 'self' http://127.0.0.1:9000",
				"frame-ancestors 'self'",
			} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy %q, want no-referrer", got)
			}
		})
	}

	resp := get(t, h, http.MethodGet, "/config.json")
	var got demo.Config
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Issuer != cfg.Issuer || len(got.Strategies) != 1 || got.Strategies[0].ClientID != "demo-refresh" {
		t.Errorf("config.json: got %+v, want %+v", got, cfg)
	}
	if resp := get(t, h, http.MethodPost, "/"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: got %d, want 405", resp.StatusCode)
	}
	if resp := get(t, h, http.MethodGet, "/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js: got %d, want 404", resp.StatusCode)
	}
}

// Every module a page or module loads is one of the embedded files: there is
// no build step to catch a typo.
func TestModuleGraph(t *testing.T) {
	ref := regexp.MustCompile(`(?:from\s+|import\s+|src=)"(\.?/?[\w.-]+\.(?:js|css))"|href="([\w.-]+\.css)"`)
	err := fs.WalkDir(demo.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, _ := demo.Files.Open(path)
		b, _ := io.ReadAll(f)
		f.Close()
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			name := strings.TrimPrefix(strings.TrimPrefix(m[1]+m[2], "./"), "/")
			if _, err := fs.Stat(demo.Files, name); err != nil {
				t.Errorf("%s refers to %s, which is not embedded", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The modules parse (with Node, when it is installed): there is no build step
// to catch a syntax error before a browser does.
func TestSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: JavaScript syntax not checked")
	}
	dir := t.TempDir()
	names, _ := fs.Glob(demo.Files, "*.js")
	for _, name := range names {
		b, _ := fs.ReadFile(demo.Files, name)
		path := filepath.Join(dir, strings.TrimSuffix(name, ".js")+".mjs")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(node, "--check", path).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}

package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestStaticNoDirectoryListing: /static/ serves its files and nothing else;
// a directory is 404, never a listing of what is there.
func TestStaticNoDirectoryListing(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	client := env.Browser()
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"ok/stylesheet", "/static/castellan.css", http.StatusOK},
		{"fail/root-directory", "/static/", http.StatusNotFound},
		{"fail/root-directory-encoded-dot", "/static/%2e/", http.StatusNotFound},
		{"fail/no-such-file", "/static/missing.css", http.StatusNotFound},
		{"fail/index-html-redirect", "/static/index.html", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Get(env.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("GET %s: got %d, want %d", tc.path, resp.StatusCode, tc.status)
			}
			if strings.Contains(string(body), "castellan.css</a>") || strings.Contains(string(body), "<pre>") {
				t.Errorf("GET %s: got a directory listing %q", tc.path, body)
			}
		})
	}
}

package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

func TestHealthz(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	resp, err := http.Get(env.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: got %d, want 200", resp.StatusCode)
	}
	env.Store.Close()
	resp, err = http.Get(env.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz with storage closed: got %d, want 503", resp.StatusCode)
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	http.Get(env.URL + "/login")
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `castellan_http_requests_total{method="GET",route="GET /login",status="200"} 1`
	if !strings.Contains(string(body), want) {
		t.Errorf("metrics do not contain %q", want)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	var md map[string]any
	getJSON(t, env.URL+"/.well-known/openid-configuration", &md)
	if md["issuer"] != env.URL {
		t.Errorf("issuer: got %v, want %v", md["issuer"], env.URL)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, md["jwks_uri"].(string), &set)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS keys: got %d, want 2 (ES256 and RS256)", len(set.Keys))
	}
	for _, k := range set.Keys {
		if _, private := k["d"]; private {
			t.Fatal("JWKS publishes a private key")
		}
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestLayers keeps the dependency direction of the architecture: the protocol
// vocabulary and storage are leaves, and nothing but the command and test
// helpers import the server.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/castellan-auth/castellan/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/castellan-auth/castellan/"
	leaves := map[string]bool{mod + "internal/oauth": true, mod + "internal/storage": true, mod + "internal/clock": true, mod + "internal/opaque": true}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			if leaves[pkg] {
				t.Errorf("%s is a leaf but imports %s", pkg, imp)
			}
			if imp == mod+"internal/server" && !strings.HasPrefix(pkg, mod+"cmd/") && pkg != mod+"internal/server/servertest" {
				t.Errorf("%s imports the server", pkg)
			}
			if strings.HasPrefix(pkg, mod+"resource") && strings.HasPrefix(imp, mod+"internal/") {
				// resource is the public package resource servers import: it
				// must stand alone, so its API never leaks internal types.
				t.Errorf("%s (public) imports %s", pkg, imp)
			}
			if strings.HasPrefix(imp, mod+"cmd/") {
				t.Errorf("%s imports a command", pkg)
			}
			if strings.HasSuffix(pkg, "/storage/sqlstore") == false && strings.HasPrefix(imp, mod+"internal/storage/sqlstore") &&
				!strings.HasPrefix(pkg, mod+"cmd/") && !strings.HasSuffix(pkg, "servertest") && !strings.HasSuffix(pkg, "storagetest") {
				t.Errorf("%s names a concrete backend; only cmd/ may", pkg)
			}
		}
		for _, bad := range []string{"/util", "/common", "/helpers"} {
			if strings.HasSuffix(pkg, bad) {
				t.Errorf("package %s: no util/common/helpers", pkg)
			}
		}
	}
}

// Every client that may use the legacy implicit grant is named in a warning
// at start; the others are not.
func TestImplicitClientsWarnedAtStart(t *testing.T) {
	var logs bytes.Buffer
	cfg := servertest.WithClients(servertest.Config())
	cfg.Clients = append(cfg.Clients, config.Client{
		ClientID: "legacy", TokenEndpointAuthMethod: "none", RedirectURIs: []string{"https://legacy.example/cb"},
		GrantTypes: []string{"implicit"}, ResponseTypes: []string{"id_token token"}, Scope: "openid",
	})
	servertest.New(t, servertest.Options{Config: cfg, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	var warned []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "implicit grant") {
			_, id, _ := strings.Cut(line, "client_id=")
			id, _, _ = strings.Cut(id, " ")
			warned = append(warned, id)
		}
	}
	if len(warned) != 1 || warned[0] != "legacy" {
		t.Errorf("implicit-grant warnings named %v, want [legacy]\n%s", warned, logs.String())
	}
}

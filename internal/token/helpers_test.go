package token_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage"
)

// SpecialSecret needs form-encoding inside a Basic header (RFC 6749 §2.3.1):
// it holds a space, '+', ':', '%', '&', '=', '/', '?' and a non-ASCII letter.
const SpecialSecret = "p@ss w:rd+/?%&=é-0123456789abcdefghijkl"

// special authenticates with SpecialSecret.
var special = servertest.ClientAuth{ID: "special:client", Secret: SpecialSecret, Method: "client_secret_basic"}

// rotating is a confidential client whose refresh tokens rotate.
var rotating = servertest.ClientAuth{ID: "rotating", Secret: "rotating-secret-0123456789abcdef0123", Method: "client_secret_basic"}

// fixture is a running provider with the test clients and alice's browser,
// signed in after the first authorization request.
type fixture struct {
	env   *servertest.Env
	alice *servertest.Agent
}

// newFixture starts a provider with servertest's clients plus "special:client"
// (client credentials, a secret full of special characters) and "rotating"
// (confidential, first-party, rotating refresh tokens, servertest.WebRedirect).
// adjust may change the configuration first.
func newFixture(t testing.TB, adjust ...func(*config.Config)) *fixture {
	t.Helper()
	cfg := servertest.WithClients(servertest.Config())
	// ES256 only: an RSA key costs most of a provider's start-up under the
	// race detector. Tests about RS256 add it back (withRS256).
	cfg.Signing.Algorithms = []string{"ES256"}
	cfg.Clients = append(cfg.Clients, config.Client{
		ClientID: special.ID, ClientSecret: SpecialSecret, TokenEndpointAuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, Scope: "api:read",
	}, config.Client{
		ClientID: rotating.ID, ClientSecret: rotating.Secret, TokenEndpointAuthMethod: "client_secret_basic",
		RedirectURIs: []string{servertest.WebRedirect}, GrantTypes: []string{"authorization_code", "refresh_token"},
		Scope: "openid profile email offline_access", SkipConsent: true, RotateRefreshTokens: true,
	})
	for _, f := range adjust {
		f(cfg)
	}
	env := servertest.New(t, servertest.Options{Config: cfg})
	return &fixture{env: env, alice: env.Agent("alice")}
}

// withRS256 configures RS256 keys too (the OIDC default ID-token algorithm).
func withRS256(cfg *config.Config) { cfg.Signing.Algorithms = []string{"ES256", "RS256"} }

func (f *fixture) code(t testing.TB, a servertest.Authz) (string, servertest.Authz) {
	t.Helper()
	return f.env.Code(t, f.alice, a)
}

func (f *fixture) tokens(t testing.TB, a servertest.Authz) servertest.Tokens {
	t.Helper()
	return f.env.CodeFlow(t, f.alice, a)
}

func (f *fixture) token(t testing.TB, form url.Values, c servertest.ClientAuth) servertest.Reply {
	t.Helper()
	return f.env.Post(t, "/token", form, c)
}

// raw posts body to path as it is, with the given Content-Type and
// Authorization header.
func (f *fixture) raw(t testing.TB, path, contentType, body, authorization string) servertest.Reply {
	t.Helper()
	r, err := f.env.Request(http.MethodPost, path, contentType, body, authorization)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) userID(t testing.TB, username string) string {
	t.Helper()
	u, err := f.env.Store.GetUserByUsername(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// web is an authorization request of the confidential web client.
func web(scope string) servertest.Authz {
	return servertest.Authz{Client: servertest.WebClient, Scope: scope}
}

// checkReply checks status, error code and, for every answer of the token,
// revocation and introspection endpoints, Cache-Control: no-store (RFC 6749
// §5.1, §5.2; ADVERSARIAL 41) and a WWW-Authenticate challenge on 401
// (RFC 6749 §5.2).
func checkReply(t testing.TB, r servertest.Reply, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code() != code {
		t.Fatalf("got %d %q, want %d %q\n%s", r.Status, r.Code(), status, code, r.Body)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("401 with WWW-Authenticate %q, want a Basic challenge", r.Header.Get("WWW-Authenticate"))
	}
	if status >= 400 && r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
}

// mustToken checks a successful token response and returns its tokens.
func mustToken(t testing.TB, r servertest.Reply) servertest.Tokens {
	t.Helper()
	checkReply(t, r, http.StatusOK, "")
	tk := r.Tokens()
	if tk.AccessToken == "" || tk.TokenType != "Bearer" || tk.ExpiresIn <= 0 {
		t.Fatalf("token response: %s", r.Body)
	}
	return tk
}

// inactive checks that introspection answers exactly {"active":false}
// (RFC 7662 §2.2; ADVERSARIAL 53).
func inactive(t testing.TB, env *servertest.Env, c servertest.ClientAuth, token string) {
	t.Helper()
	r := env.Introspect(t, c, token)
	if strings.TrimSpace(r.Body) != `{"active":false}` {
		t.Fatalf("introspection: got %s, want exactly {\"active\":false}", r.Body)
	}
}

// grantOf is the grant an access token names.
func grantOf(t testing.TB, accessToken string) string {
	t.Helper()
	g, _ := servertest.Claims(accessToken)["grant"].(string)
	if g == "" {
		t.Fatalf("access token names no grant: %v", servertest.Claims(accessToken))
	}
	return g
}

// refreshActive asks the grant domain (not HTTP) whether a refresh token can
// still be used.
func refreshActive(t testing.TB, env *servertest.Env, token string) bool {
	t.Helper()
	rec, err := env.Server.Grants.LookupRefresh(context.Background(), token)
	if err == storage.ErrNotFound {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec.Active
}

// mutations are the ways ADVERSARIAL 40 damages an opaque value: none of
// them may ever match the original.
func mutations(v string) map[string]string {
	return map[string]string{
		"truncated":      v[:len(v)-1],
		"half":           v[:len(v)/2],
		"padded":         v + "A",
		"padded-equals":  v + "=",
		"space-appended": v + " ",
		"case-flipped":   flipCase(v),
		"prefix-only":    v[:8],
	}
}

func flipCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 32
			return string(b)
		case c >= 'A' && c <= 'Z':
			b[i] = c + 32
			return string(b)
		}
	}
	return s
}

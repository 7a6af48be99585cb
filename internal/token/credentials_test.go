package token_test

import (
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// machine is a client_credentials client registered with user scopes beside
// its API ones; userOnly has user scopes alone.
var (
	machine  = servertest.ClientAuth{ID: "machine", Secret: "machine-secret-0123456789abcdef0123456", Method: "client_secret_basic"}
	userOnly = servertest.ClientAuth{ID: "user-only", Secret: "user-only-secret-0123456789abcdef01234", Method: "client_secret_basic"}
)

func withMachineClients(cfg *config.Config) {
	cfg.Clients = append(cfg.Clients, config.Client{
		ClientID: machine.ID, ClientSecret: machine.Secret, TokenEndpointAuthMethod: machine.Method,
		GrantTypes: []string{"client_credentials", "authorization_code"}, RedirectURIs: []string{"https://machine.example/cb"},
		Scope: "openid profile email address phone offline_access api:read api:write",
	}, config.Client{
		ClientID: userOnly.ID, ClientSecret: userOnly.Secret, TokenEndpointAuthMethod: userOnly.Method,
		GrantTypes: []string{"client_credentials", "authorization_code"}, RedirectURIs: []string{"https://user-only.example/cb"},
		Scope: "openid profile email",
	})
}

// TestClientCredentialsDefaultScopeNeedsNoUser: a machine token asked for
// without scope gets the client's scopes that need no person, never openid,
// profile, email, address, phone or offline_access (it once got "profile
// email api"); a client with none of those gets a token with no scope; and
// asking for a user scope outright is invalid_scope.
func TestClientCredentialsDefaultScopeNeedsNoUser(t *testing.T) {
	f := newFixture(t, withMachineClients)
	cases := []struct {
		name   string
		client servertest.ClientAuth
		scope  string // "" sends none
		status int
		err    string
		want   string // the scope of the response and of the token
	}{
		{name: "default/api-scopes-only", client: machine, status: 200, want: "api:read api:write"},
		{name: "default/no-scope-left", client: userOnly, status: 200, want: ""},
		{name: "asked/api-scope", client: machine, scope: "api:write", status: 200, want: "api:write"},
		{name: "fail/asked-profile", client: machine, scope: "profile", status: 400, err: "invalid_scope"},
		{name: "fail/asked-email", client: userOnly, scope: "email", status: 400, err: "invalid_scope"},
		{name: "fail/asked-address", client: machine, scope: "api:read address", status: 400, err: "invalid_scope"},
		{name: "fail/asked-phone", client: machine, scope: "phone", status: 400, err: "invalid_scope"},
		{name: "fail/asked-openid", client: machine, scope: "openid", status: 400, err: "invalid_scope"},
		{name: "fail/asked-offline-access", client: machine, scope: "offline_access", status: 400, err: "invalid_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fm := form("grant_type", "client_credentials")
			if c.scope != "" {
				fm.Set("scope", c.scope)
			}
			r := f.token(t, fm, c.client)
			checkReply(t, r, c.status, c.err)
			if c.status != 200 {
				return
			}
			_, hasScope := r.JSON["scope"]
			if got := r.Str("scope"); got != c.want || c.want == "" && hasScope {
				t.Errorf("response scope %q (present %v), want %q", got, hasScope, c.want)
			}
			claims := servertest.Claims(r.Str("access_token"))
			if got, _ := claims["scope"].(string); got != c.want {
				t.Errorf("token scope %q, want %q", got, c.want)
			}
		})
	}
}

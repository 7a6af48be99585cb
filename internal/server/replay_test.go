package server_test

import (
	"net/http"
	"testing"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestTokenReplayAfterLogout: once the person signs out, the tokens of a
// session-bound grant (a public client's) are dead everywhere a thief could
// replay them — userinfo, introspection, the refresh grant — and a silent
// request gets login_required (RFC 9700 §4.14 refresh token protection;
// ADVERSARIAL 39, 48, 53, 61).
func TestTokenReplayAfterLogout(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	alice := env.Agent("alice")
	tk := env.CodeFlow(t, alice, servertest.Authz{})
	if r := env.Userinfo(t, http.MethodGet, tk.AccessToken); r.Status != 200 {
		t.Fatalf("before sign-out: userinfo %d", r.Status)
	}
	env.SignOut(t, alice)

	cases := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"adv48/userinfo-access-token-401", func(t *testing.T) {
			if r := env.Userinfo(t, http.MethodGet, tk.AccessToken); r.Status != 401 {
				t.Fatalf("userinfo: %d, want 401", r.Status)
			}
		}},
		{"adv53/introspect-access-token-inactive", func(t *testing.T) {
			if env.Active(t, tk.AccessToken) {
				t.Fatal("access token still active")
			}
		}},
		{"adv53/introspect-refresh-token-inactive", func(t *testing.T) {
			if env.Active(t, tk.RefreshToken) {
				t.Fatal("refresh token still active")
			}
		}},
		{"adv39/refresh-invalid_grant", func(t *testing.T) {
			r := env.Refresh(t, servertest.SPAClient, tk.RefreshToken, "")
			if r.Status != 400 || r.Code() != "invalid_grant" {
				t.Fatalf("refresh: %d %q, want 400 invalid_grant", r.Status, r.Code())
			}
		}},
		{"adv61/prompt-none-login_required", func(t *testing.T) {
			s, err := alice.Get(env.AuthorizeURL(servertest.Authz{Extra: map[string][]string{"prompt": {"none"}}}))
			if err != nil {
				t.Fatal(err)
			}
			if p := servertest.Params(s.Location); p.Get("error") != "login_required" || p.Get("code") != "" {
				t.Fatalf("prompt=none after sign-out: %d %q", s.Status, s.Location)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, c.check)
	}
}

package token_test

import (
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestAccessTokenAudienceFromClient: every access token the token endpoint
// issues names the client's registered audience, through refreshes too, and
// introspection reports it; a client without one gets tokens.audience, and
// without that the issuer (RFC 9068 §3). Every token used to name the issuer.
func TestAccessTokenAudienceFromClient(t *testing.T) {
	const orders = "https://orders.example/"
	f := newFixture(t, func(cfg *config.Config) {
		for i := range cfg.Clients {
			if cfg.Clients[i].ClientID == "web" {
				cfg.Clients[i].Audience = []string{orders, "reports"}
			}
		}
		cfg.Tokens.Audience = []string{"https://default-api.example"}
	})
	aud := func(token string) any { return servertest.Claims(token)["aud"] }

	tk := f.tokens(t, web("openid offline_access"))
	want := []any{orders, "reports"}
	if got, ok := aud(tk.AccessToken).([]any); !ok || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("code flow aud %v, want %v", aud(tk.AccessToken), want)
	}
	refreshed := mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""))
	if got, ok := aud(refreshed.AccessToken).([]any); !ok || len(got) != 2 || got[0] != orders {
		t.Errorf("refreshed aud %v, want %v", aud(refreshed.AccessToken), want)
	}
	in := f.env.Introspect(t, servertest.SvcClient, refreshed.AccessToken)
	if got, ok := in.JSON["aud"].([]any); !ok || len(got) != 2 || got[1] != "reports" {
		t.Errorf("introspection aud %v, want %v", in.JSON["aud"], want)
	}
	svc := mustToken(t, f.token(t, form("grant_type", "client_credentials"), servertest.SvcClient))
	if got := aud(svc.AccessToken); got != "https://default-api.example" {
		t.Errorf("svc (no audience of its own) aud %v, want tokens.audience", got)
	}

	plain := newFixture(t)
	if got := aud(mustToken(t, plain.token(t, form("grant_type", "client_credentials"), servertest.SvcClient)).AccessToken); got != plain.env.URL {
		t.Errorf("without any audience configured: aud %v, want the issuer %s", got, plain.env.URL)
	}
}

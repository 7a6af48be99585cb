package server_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWarnsRotationWithoutGrace: with tokens.refresh_token_grace 0 the
// provider warns at start, naming the clients whose refresh tokens rotate
// (public ones, and confidential ones with rotate_refresh_tokens such as a
// gateway on several nodes); with the default grace it does not.
func TestWarnsRotationWithoutGrace(t *testing.T) {
	for _, tt := range []struct {
		name  string
		grace time.Duration
		want  string // the client_ids warned about ("" for no warning)
	}{
		{"no-grace", 0, "client_ids=\"[gateway spa]\""},
		{"default-grace", config.DefaultRefreshTokenGrace, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			cfg := servertest.WithClients(servertest.Config())
			cfg.Tokens.RefreshTokenGrace = config.Duration(tt.grace)
			cfg.Clients = append(cfg.Clients, config.Client{
				ClientID: "gateway", ClientSecret: servertest.WebSecret, TokenEndpointAuthMethod: "client_secret_basic",
				RedirectURIs: []string{"https://app.example/bff/callback"}, GrantTypes: []string{"authorization_code", "refresh_token"},
				Scope: "openid", RotateRefreshTokens: true,
			})
			servertest.New(t, servertest.Options{Config: cfg, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			var warned []string
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "level=WARN") && strings.Contains(line, "refresh_token_grace") {
					_, ids, _ := strings.Cut(line, "client_ids=")
					warned = append(warned, "client_ids="+ids)
				}
			}
			switch {
			case tt.want == "" && len(warned) != 0:
				t.Errorf("warned %v, want no warning", warned)
			case tt.want != "" && (len(warned) != 1 || warned[0] != tt.want):
				t.Errorf("warned %v, want one warning with %s\n%s", warned, tt.want, logs.String())
			}
		})
	}
}

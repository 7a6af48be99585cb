// Package demo wires the demo of `castellan dev`: the demo single-page app
// (web/demo) on an origin of its own, the demo API (internal/demoapi) on
// another, and the OAuth clients the app uses at the provider, one per renewal
// strategy, so that each strategy's trade-off shows in a real browser. The
// provider itself is started by the caller (cmd/castellan, or servertest in
// tests); this package only needs its issuer.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demoapi"
	webdemo "github.com/castellan-auth/castellan/web/demo"
)

// Client ids the demo registers at the provider.
const (
	ClientImplicit = "demo-implicit" // legacy implicit grant, silent iframe renewal
	ClientIframe   = "demo-iframe"   // code + PKCE, silent iframe renewal
	ClientRefresh  = "demo-refresh"  // code + PKCE, rotating refresh tokens
	ClientAPI      = "demo-api"      // the demo API's own credentials (introspection)
)

// Strategy ids (the app's picker, and its /config.json).
const (
	StrategyImplicit = "implicit"
	StrategyIframe   = "iframe"
	StrategyRefresh  = "refresh"
)

// Setup is one demo installation: where the app and the API run and which
// provider they use. The zero values of the tuning fields are the defaults.
type Setup struct {
	// Issuer is the provider's issuer.
	Issuer string
	// SPA and API are the origins (scheme://host:port) of the app and the API.
	SPA string
	API string
	// APISecret is the demo API's client secret (at least 32 characters).
	APISecret string
	// Audience is the demo API's identifier: the "aud" it requires and the
	// audience of the app's clients (default: the API's origin; see
	// APIAudience).
	Audience string

	// APIPoll is how often the app calls the API (default 5s).
	APIPoll time.Duration
	// Activity is the least time between two activity signals (default 1m).
	Activity time.Duration
	// RenewAt is the share of a token's lifetime after which the app renews
	// it (default 0.75).
	RenewAt float64
	// NoSessionEvents turns off the app's session-ended stream, so that only
	// a failed renewal tells it the session ended.
	NoSessionEvents bool
	// SilentCallbackPage makes silent iframe renewals come back through the
	// app's callback page even where the provider offers web_message.
	SilentCallbackPage bool
	// BFF is the origin of the demo's Backend-for-Frontend, "" for none: the
	// app's fourth strategy, served by the BFF on that origin and calling the
	// API through it (see bff.go).
	BFF string
	// BFFSecret is the BFF's client secret at the provider (at least 32
	// characters).
	BFFSecret string
	// Extra strategies to offer, such as a Backend-for-Frontend on its own
	// origin (webdemo.KindBFF with a URL).
	Extra []webdemo.Strategy
}

const (
	iframeScope  = "openid profile email " + demoapi.OrdersScope
	refreshScope = "openid profile email offline_access " + demoapi.OrdersScope
	// bffScope has no offline_access: the gateway's refresh token is bound
	// to the SSO session, so signing out at Castellan ends its renewals.
	bffScope = "openid profile email " + demoapi.OrdersScope
)

// Clients returns the provider clients of the demo: one public client per
// token strategy, all first-party (no consent page), and the API's
// confidential client.
func (s Setup) Clients() []config.Client {
	spa := strings.TrimSuffix(s.SPA, "/")
	public := func(id, name string) config.Client {
		return config.Client{
			ClientID:                id,
			ClientName:              name,
			TokenEndpointAuthMethod: "none",
			RedirectURIs:            []string{spa + "/callback.html", spa + "/silent.html"},
			PostLogoutRedirectURIs:  []string{spa + "/"},
			AllowedOrigins:          []string{spa},
			GrantTypes:              []string{"authorization_code"},
			ResponseTypes:           []string{"code"},
			Scope:                   iframeScope,
			SkipConsent:             true,
			RequirePKCE:             true,
			// The app's tokens are for the demo API (and, being OpenID
			// Connect ones, for Castellan's userinfo and session endpoints).
			Audience: []string{s.APIAudience()},
		}
	}
	implicit := public(ClientImplicit, "Demo SPA (legacy implicit)")
	implicit.GrantTypes = []string{"implicit"}
	implicit.ResponseTypes = []string{"id_token token"}
	implicit.RequirePKCE = false
	iframe := public(ClientIframe, "Demo SPA (code + PKCE, silent iframe)")
	refresh := public(ClientRefresh, "Demo SPA (code + PKCE, refresh token)")
	refresh.GrantTypes = []string{"authorization_code", "refresh_token"}
	refresh.Scope = refreshScope
	api := config.Client{
		ClientID:                ClientAPI,
		ClientName:              "Demo API",
		ClientSecret:            s.APISecret,
		TokenEndpointAuthMethod: "client_secret_basic",
		GrantTypes:              []string{"client_credentials"},
	}
	clients := []config.Client{implicit, iframe, refresh, api}
	if s.BFF != "" {
		clients = append(clients, s.bffClient())
	}
	return clients
}

// Strategies are the renewal strategies the app offers.
func (s Setup) Strategies() []webdemo.Strategy {
	list := []webdemo.Strategy{
		{
			ID: StrategyImplicit, Kind: webdemo.KindToken, ClientID: ClientImplicit,
			Method: webdemo.MethodIframe, ResponseType: "id_token token", Scope: iframeScope,
			Title: "Legacy implicit + silent iframe",
			Summary: "The token comes back in the URL fragment; renewal asks again with prompt=none in a hidden iframe. " +
				"Needs Castellan's session cookie inside an iframe. Kept only so that old apps can migrate.",
		},
		{
			ID: StrategyIframe, Kind: webdemo.KindToken, ClientID: ClientIframe,
			Method: webdemo.MethodIframe, ResponseType: "code", Scope: iframeScope,
			Title: "Code + PKCE + silent iframe",
			Summary: "Authorization code with PKCE; renewal runs it again with prompt=none in a hidden iframe. " +
				"No refresh token, but it breaks cross-site where third-party cookies are blocked.",
		},
		{
			ID: StrategyRefresh, Kind: webdemo.KindToken, ClientID: ClientRefresh,
			Method: webdemo.MethodRefresh, ResponseType: "code", Scope: refreshScope,
			Title: "Code + PKCE + refresh token",
			Summary: "Recommended. Renewal redeems a rotating refresh token with fetch: no cookie, so it works cross-site. " +
				"Refresh tokens die with the Castellan session.",
		},
	}
	if s.BFF != "" {
		list = append(list, s.bffStrategy())
	}
	return append(list, s.Extra...)
}

// SPAConfig is the app's /config.json.
func (s Setup) SPAConfig() webdemo.Config {
	renewAt := s.RenewAt
	if renewAt <= 0 || renewAt >= 1 {
		renewAt = 0.75
	}
	return webdemo.Config{
		Issuer:             s.Issuer,
		API:                strings.TrimSuffix(s.API, "/"),
		APIPollSeconds:     seconds(s.APIPoll, 5*time.Second),
		ActivitySeconds:    seconds(s.Activity, time.Minute),
		SessionEvents:      !s.NoSessionEvents,
		SilentCallbackPage: s.SilentCallbackPage,
		RenewAt:            renewAt,
		DefaultStrategy:    StrategyRefresh,
		Strategies:         s.Strategies(),
	}
}

func seconds(d, def time.Duration) int {
	if d <= 0 {
		d = def
	}
	return max(1, int(d/time.Second))
}

// SPAHandler serves the app.
func (s Setup) SPAHandler() http.Handler { return webdemo.Handler(s.SPAConfig()) }

// Serve runs the app on spa and the API on api until ctx ends, then shuts
// both down.
func (s Setup) Serve(ctx context.Context, spa, api net.Listener, log *slog.Logger) error {
	apiHandler, err := s.APIHandler(nil)
	if err != nil {
		return fmt.Errorf("demo api: %w", err)
	}
	servers := []*http.Server{
		{Handler: s.SPAHandler(), ReadHeaderTimeout: 10 * time.Second},
		{Handler: apiHandler, ReadHeaderTimeout: 10 * time.Second},
	}
	errc := make(chan error, 2)
	for i, ln := range []net.Listener{spa, api} {
		servers[i].ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
		go func() { errc <- servers[i].Serve(ln) }()
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		srv.Shutdown(shutdown)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

package demo

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	webdemo "github.com/castellan-auth/castellan/web/demo"
)

// The demo's Backend-for-Frontend: a confidential client of the provider that
// keeps every token on its server and serves the app on its own origin.
const (
	ClientBFF   = "demo-bff"
	StrategyBFF = "bff"
)

// bffClient is the BFF's registration at the provider: the code flow with a
// client secret, refresh tokens bound to the SSO session so it renews without
// the browser while the person is signed in, its callback, its start page after RP-initiated logout, and its
// back-channel logout endpoint so that sign-out at Castellan ends its
// sessions too.
func (s Setup) bffClient() config.Client {
	bff := strings.TrimSuffix(s.BFF, "/")
	return config.Client{
		ClientID:                ClientBFF,
		ClientName:              "Demo SPA (Backend-for-Frontend)",
		ClientSecret:            s.BFFSecret,
		TokenEndpointAuthMethod: "client_secret_basic",
		RedirectURIs:            []string{bff + "/bff/callback"},
		PostLogoutRedirectURIs:  []string{bff + "/"},
		BackchannelLogoutURI:    bff + "/bff/backchannel-logout",
		GrantTypes:              []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken},
		ResponseTypes:           []string{"code"},
		Scope:                   bffScope,
		SkipConsent:             true,
		// The BFF sends PKCE S256 too, as OAuth 2.1 asks of every client.
		RequirePKCE: true,
		// It calls the demo API with the person's token.
		Audience: []string{s.APIAudience()},
	}
}

func (s Setup) bffStrategy() webdemo.Strategy {
	return webdemo.Strategy{
		ID: StrategyBFF, Kind: webdemo.KindBFF, ClientID: ClientBFF, Scope: bffScope,
		Title: "Backend-for-Frontend",
		Summary: "A small server on the app's own origin runs the code flow as a confidential client and keeps every token; " +
			"the page gets only an HttpOnly cookie and calls the API through it. No token ever reaches JavaScript.",
		URL: strings.TrimSuffix(s.BFF, "/") + "/",
	}
}

// BFFSPAConfig is the app's /config.json on the BFF's origin: the API is
// the BFF itself (its /api/ route), and the token strategies link back to
// the app's own origin.
func (s Setup) BFFSPAConfig() webdemo.Config {
	c := s.SPAConfig()
	c.API = strings.TrimSuffix(s.BFF, "/")
	c.Home = strings.TrimSuffix(s.SPA, "/")
	c.DefaultStrategy = StrategyBFF
	return c
}

// BFFSPAHandler serves the app on the BFF's origin.
func (s Setup) BFFSPAHandler() http.Handler { return webdemo.Handler(s.BFFSPAConfig()) }

// BFFRoutes are the BFF's API routes: the demo API serves full /api/ paths,
// so /api/profile on the BFF goes to {API}/api/profile.
func (s Setup) BFFRoutes() []config.BFFRoute {
	return []config.BFFRoute{{Path: "/api/", Upstream: strings.TrimSuffix(s.API, "/") + "/api/"}}
}

// BFFConfig is the gateway's configuration for the demo: on the BFF origin,
// as the demo's confidential client, with storage and keyFile for its
// sessions and master key. The app itself is served by BFFHandler, not by
// static_dir.
func (s Setup) BFFConfig(storage, keyFile string) config.BFF {
	c := config.DefaultBFF()
	public := strings.TrimSuffix(s.BFF, "/")
	if u, err := url.Parse(public); err == nil {
		c.Listen = u.Host
	}
	c.PublicURL = public
	c.Issuer = s.Issuer
	c.ClientID = ClientBFF
	c.ClientSecret = s.BFFSecret
	c.Scope = bffScope
	c.Storage = storage
	c.KeyFile = keyFile
	c.Routes = s.BFFRoutes()
	return c
}

// BFFHandler serves the BFF's origin: the gateway's own paths (/bff/,
// /healthz) and its API routes go to gateway, everything else is the app
// with its /config.json.
func (s Setup) BFFHandler(gateway http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/bff/", gateway)
	mux.Handle("/healthz", gateway)
	for _, r := range s.BFFRoutes() {
		mux.Handle(r.Path, gateway)
	}
	mux.Handle("/", s.BFFSPAHandler())
	return mux
}

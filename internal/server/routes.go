package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/castellan-auth/castellan/internal/authorize"
	"github.com/castellan-auth/castellan/internal/login"
	"github.com/castellan-auth/castellan/internal/logout"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/oidc"
	"github.com/castellan-auth/castellan/internal/par"
	"github.com/castellan-auth/castellan/internal/token"
	"github.com/castellan-auth/castellan/internal/userinfo"
	"github.com/castellan-auth/castellan/internal/web"
)

// Paths of the provider's endpoints, relative to the issuer.
const (
	pathDiscovery = "/.well-known/openid-configuration"
	// pathOAuthMetadata is RFC 8414 §3's well-known URI: OAuth-only clients
	// (and MCP clients) look there first.
	pathOAuthMetadata = "/.well-known/oauth-authorization-server"
	pathJWKS          = "/jwks"
	pathAuthorize     = "/authorize"
	pathToken         = "/token"
	pathUserinfo      = "/userinfo"
	pathRevoke        = "/revoke"
	pathIntrospect    = "/introspect"
	pathEndSession    = "/end_session"
	pathActivity      = "/session/activity"
	pathEvents        = "/session/events"
	pathPAR           = "/par"
)

// maxBody bounds every request body: no form or JSON we accept comes near it.
const maxBody = 64 << 10

func (s *Server) routes(lh *login.Handler, az *authorize.Handler, te *token.Endpoint, ui *userinfo.Endpoint, lo *logout.Handler, pe *par.Endpoint) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /readyz", web.NewReadiness(s.store, s.clock, s.log))
	if s.cfg.MetricsListen == "" {
		// Kept on the public listener when no listener of its own is set,
		// as before metrics_listen existed.
		mux.Handle("GET /metrics", s.MetricsHandler())
	}
	mux.HandleFunc("GET "+pathDiscovery, s.discovery)
	mux.HandleFunc("GET "+pathOAuthMetadata, s.discovery)
	mux.HandleFunc("GET "+pathJWKS, s.jwks)
	mux.Handle("GET /static/", http.StripPrefix("/static/", web.Static()))
	lh.Mount(mux)
	az.Mount(mux, pathAuthorize)
	te.Mount(mux, pathToken, pathRevoke, pathIntrospect)
	pe.Mount(mux, pathPAR)
	ui.Mount(mux, pathUserinfo)
	lo.Mount(mux, pathEndSession)
	s.Presence.Mount(mux, pathActivity, pathEvents)
	for _, p := range []string{pathDiscovery, pathOAuthMetadata, pathJWKS} {
		mux.HandleFunc("OPTIONS "+p, s.CORS.Preflight(http.MethodGet))
	}

	var h http.Handler = mux
	if s.base != "" {
		// RFC 8414 §3: for an issuer with a path, the well-known segment goes
		// between the host and that path; the path-appended form (as OpenID
		// Connect Discovery does it) is served above as well.
		top := http.NewServeMux()
		top.HandleFunc("GET "+pathOAuthMetadata+s.base, s.discovery)
		top.HandleFunc("OPTIONS "+pathOAuthMetadata+s.base, s.CORS.Preflight(http.MethodGet))
		top.Handle("/", http.StripPrefix(s.base, mux))
		h = top
	}
	h = web.LimitBody(h, maxBody)
	h = web.SecureHeaders(h, s.https)
	return web.Observe(h, s.log, s.Metrics)
}

// MetricsHandler serves the Prometheus metrics, for the listener of
// metrics_listen (or the public one when that is unset).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("health check: storage does not answer", "err", err)
		http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// metadata is the discovery document: exactly what is mounted. Every
// endpoint that lists private_key_jwt lists the algorithms its assertions
// may use (RFC 8414 §2 makes that REQUIRED).
func (s *Server) metadata() oidc.Metadata {
	secretMethods := []string{oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost, oauth.AuthPrivateKeyJWT}
	responseTypes := []string{oauth.ResponseCode}
	grantTypes := []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantClientCredentials}
	if s.implicitInUse() {
		responseTypes = append(responseTypes, oauth.ResponseIDTokenToken, oauth.ResponseIDToken, oauth.ResponseToken)
		grantTypes = append(grantTypes, oauth.GrantImplicit)
	}
	return oidc.Metadata{
		Issuer:                                             s.cfg.Issuer,
		AuthorizationEndpoint:                              s.URL(pathAuthorize),
		TokenEndpoint:                                      s.URL(pathToken),
		UserinfoEndpoint:                                   s.URL(pathUserinfo),
		JWKSURI:                                            s.URL(pathJWKS),
		RevocationEndpoint:                                 s.URL(pathRevoke),
		IntrospectionEndpoint:                              s.URL(pathIntrospect),
		EndSessionEndpoint:                                 s.URL(pathEndSession),
		PushedAuthorizationRequestEndpoint:                 s.URL(pathPAR),
		RequirePushedAuthorizationRequests:                 s.cfg.PAR.Required,
		ScopesSupported:                                    oidc.Scopes,
		ResponseTypesSupported:                             responseTypes,
		ResponseModesSupported:                             []string{authorize.ModeQuery, authorize.ModeFragment, authorize.ModeFormPost, authorize.ModeWebMessage},
		GrantTypesSupported:                                grantTypes,
		SubjectTypesSupported:                              []string{"public"},
		IDTokenSigningAlgValuesSupported:                   s.cfg.Signing.Algorithms,
		TokenEndpointAuthMethodsSupported:                  append([]string{oauth.AuthNone}, secretMethods...),
		TokenEndpointAuthSigningAlgValuesSupported:         oauth.ClientAssertionAlgorithms,
		RevocationEndpointAuthMethodsSupported:             append([]string{oauth.AuthNone}, secretMethods...),
		IntrospectionEndpointAuthMethodsSupported:          secretMethods,
		RevocationEndpointAuthSigningAlgValuesSupported:    oauth.ClientAssertionAlgorithms,
		IntrospectionEndpointAuthSigningAlgValuesSupported: oauth.ClientAssertionAlgorithms,
		ClaimsSupported:                                    oidc.Claims,
		ClaimsParameterSupported:                           false,
		RequestParameterSupported:                          false,
		RequestURIParameterSupported:                       false,
		CodeChallengeMethodsSupported:                      []string{oauth.PKCES256},
		DPoPSigningAlgValuesSupported:                      s.DPoP.Algorithms(),
		AuthorizationResponseIssParameterSupported:         true,
		PromptValuesSupported:                              []string{authorize.PromptNone, authorize.PromptLogin, authorize.PromptConsent, authorize.PromptSelectAccount},
		FrontchannelLogoutSupported:                        true,
		FrontchannelLogoutSessionSupported:                 true,
		BackchannelLogoutSupported:                         true,
		BackchannelLogoutSessionSupported:                  true,
		SessionEndedEndpoint:                               s.URL(pathEvents),
		ActivityEndpoint:                                   s.URL(pathActivity),
	}
}

// implicitInUse reports whether any declared client uses the implicit grant;
// discovery advertises it only then.
func (s *Server) implicitInUse() bool {
	for _, c := range s.cfg.Clients {
		if oauth.Contains(c.GrantTypes, oauth.GrantImplicit) {
			return true
		}
	}
	return false
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	s.CORS.Public(w, r)
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.metadata())
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.CORS.Public(w, r)
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short: keys rotate, and clients re-fetch on an unknown kid anyway.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(s.Keys.JWKS())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

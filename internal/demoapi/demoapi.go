// Package demoapi is the demo API that `castellan dev` serves next to the demo
// SPA. It exists to show an API using the resource package: the SPA calls it
// cross-origin with its access token (and, later, through the BFF), and shows
// what it answers while tokens are renewed and after sign-out.
//
// It serves, as JSON:
//
//   - GET /api/profile: who called (sub, client_id, scopes), the server's
//     time and the seconds left on the token. Any valid access token.
//   - GET /api/orders: made-up orders of the caller. Needs the scope
//     OrdersScope ("api:read"): an API permission, not an OpenID Connect one
//     ("openid" says the client wants an ID token, not access to this API),
//     so the client must be allowed it and ask for it.
//
// With IntrospectionClientID set, every request also asks the provider whether
// the token is still active (resource.RevocationCheck, no cache), so the demo
// shows sign-out at the API at once instead of when the token expires.
//
// Both bearer and DPoP-bound access tokens are accepted (resource.DPoP):
// a DPoP-bound token needs "Authorization: DPoP" and a proof of its key, so
// a stolen one is refused here, sent as a bearer token or with another key.
//
// Browsers may call it from the configured origins only (CORS, as the Fetch
// standard defines it): the Authorization header is allowed, credentials
// (cookies) are not, and WWW-Authenticate is exposed so that the SPA can read
// why a call was refused.
package demoapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/resource"
)

// OrdersScope is the scope GET /api/orders requires.
const OrdersScope = "api:read"

// Config configures the demo API.
type Config struct {
	// Issuer is the provider's issuer URL. Required.
	Issuer string
	// Audience is the "aud" access tokens must name: the demo API's
	// identifier, which the clients that call it are registered with
	// (demo.Setup does both). Empty: the issuer, so that the tokens of every
	// client without an audience of its own are accepted
	// (resource.Config.AllowIssuerAudience), which only tests that use the
	// provider's default tokens want.
	Audience string
	// AllowedOrigins are the browser origins (e.g. "http://127.0.0.1:9100")
	// that may call the API.
	AllowedOrigins []string
	// IntrospectionClientID and IntrospectionSecret are a confidential client
	// of the provider, used to check at its introspection endpoint that a
	// token was not revoked. Empty: tokens are checked locally only.
	IntrospectionClientID string
	IntrospectionSecret   string
	// IntrospectionAuthMethod is how that client authenticates:
	// "client_secret_basic" (default) or "client_secret_post".
	IntrospectionAuthMethod string
	// BaseURL is the API's external URL, which DPoP proofs name in htu
	// (default: taken from each request's Host, over http unless TLS).
	BaseURL string
	// HTTPClient talks to the provider (default: 10 s timeout).
	HTTPClient *http.Client
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// New returns the demo API's handler.
func New(cfg Config) (http.Handler, error) {
	anyClient := cfg.Audience == ""
	if anyClient {
		cfg.Audience = cfg.Issuer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var problems []string
	for _, o := range cfg.AllowedOrigins {
		if !isOrigin(o) {
			problems = append(problems, fmt.Sprintf("allowed origin %q: want scheme://host[:port]", o))
		}
	}
	rcfg := resource.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, AllowIssuerAudience: anyClient, HTTPClient: cfg.HTTPClient, Now: cfg.Now,
		// One process: the in-memory replay cache of the resource package will do.
		DPoP: &resource.DPoP{BaseURL: cfg.BaseURL}}
	if cfg.IntrospectionClientID != "" || cfg.IntrospectionSecret != "" {
		rcfg.RevocationCheck = &resource.RevocationCheck{
			ClientID: cfg.IntrospectionClientID, ClientSecret: cfg.IntrospectionSecret,
			AuthMethod: cfg.IntrospectionAuthMethod,
			// Ask every time: the demo is about seeing sign-out at once.
			CacheTTL: -1,
		}
	}
	v, err := resource.New(rcfg)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, errors.New("demoapi: " + strings.Join(problems, "; "))
	}

	a := &api{now: cfg.Now}
	mux := http.NewServeMux()
	mux.Handle("GET /api/profile", v.Require()(http.HandlerFunc(a.profile)))
	mux.Handle("GET /api/orders", v.Require(OrdersScope)(http.HandlerFunc(a.orders)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
	})
	return &cors{origins: slices.Clone(cfg.AllowedOrigins), next: mux}, nil
}

type api struct {
	now func() time.Time
}

// Profile is the answer of GET /api/profile.
type Profile struct {
	Subject  string   `json:"sub"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	// SID is the provider session the token belongs to ("" for client
	// credentials).
	SID string `json:"sid,omitempty"`
	// Time is the API's clock.
	Time time.Time `json:"time"`
	// ExpiresAt is the token's "exp"; ExpiresIn the whole seconds left.
	ExpiresAt time.Time `json:"expires_at"`
	ExpiresIn int64     `json:"expires_in"`
	// JKT is the thumbprint of the DPoP key the token is bound to ("" for a
	// bearer token).
	JKT string `json:"jkt,omitempty"`
}

func (a *api) profile(w http.ResponseWriter, r *http.Request) {
	c, _ := resource.ClaimsFrom(r.Context())
	now := a.now().UTC()
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	writeJSON(w, http.StatusOK, Profile{
		Subject: c.Subject, ClientID: c.ClientID, Scopes: scopes, SID: c.SID,
		Time: now, ExpiresAt: c.Expiry.UTC(), ExpiresIn: max(0, int64(c.Expiry.Sub(now)/time.Second)), JKT: c.JKT,
	})
}

// Order is one made-up order.
type Order struct {
	ID       string `json:"id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
	Status   string `json:"status"`
}

// Orders is the answer of GET /api/orders.
type Orders struct {
	Owner  string  `json:"owner"`
	Orders []Order `json:"orders"`
}

var demoOrders = []Order{
	{ID: "A-1001", Item: "Looking-glass", Quantity: 1, Status: "shipped"},
	{ID: "A-1002", Item: "Jam tarts", Quantity: 12, Status: "baking"},
	{ID: "A-1003", Item: "Pocket watch", Quantity: 1, Status: "late"},
}

func (a *api) orders(w http.ResponseWriter, r *http.Request) {
	c, _ := resource.ClaimsFrom(r.Context())
	writeJSON(w, http.StatusOK, Orders{Owner: c.Subject, Orders: demoOrders})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// Every answer depends on the caller's token.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// cors answers preflights and marks responses readable by the allowed
// origins. It never allows credentials: the API authenticates with the
// Authorization header, not cookies.
type cors struct {
	origins []string
	next    http.Handler
}

func (c *cors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	allowed := origin != "" && slices.Contains(c.origins, origin)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		w.Header().Add("Vary", "Access-Control-Request-Method")
		w.Header().Add("Vary", "Access-Control-Request-Headers")
		if !allowed || r.Header.Get("Access-Control-Request-Method") != http.MethodGet {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", "GET")
		h.Set("Access-Control-Allow-Headers", "Authorization, DPoP")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if allowed {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce")
	}
	c.next.ServeHTTP(w, r)
}

// isOrigin reports whether s is a serialized origin: scheme://host[:port].
func isOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && s == u.Scheme+"://"+u.Host
}

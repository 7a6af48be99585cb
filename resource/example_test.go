package resource_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/castellan-auth/castellan/resource"
)

// An API checks Castellan access tokens with Require: only requests with a
// valid token granted "orders:read" reach the handler, which finds the
// caller in the request context. Audience is this API's identifier, the one
// the provider's clients that call it are registered with
// ("audience: [https://api.example.com]"), so tokens meant for other APIs
// are refused.
func ExampleVerifier_Require() {
	v, err := resource.New(resource.Config{
		Issuer:   "https://login.example.com",
		Audience: "https://api.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /orders", v.Require("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resource.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "orders of %s, seen by client %s\n", claims.Subject, claims.ClientID)
	})))

	// A request without a token gets a challenge (RFC 6750 §3), without the
	// provider being asked anything.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/orders", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))

	// A token in the query string is refused (OAuth 2.1 forbids it).
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/orders?access_token=abc", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 401 Bearer realm="https://api.example.com"
	// 400 Bearer realm="https://api.example.com", error="invalid_request", error_description="access tokens are accepted in the Authorization header only"
}

// Verify checks a token obtained some other way than an HTTP request, and
// tells a bad token from a provider that cannot be reached.
func ExampleVerifier_Verify() {
	v, err := resource.New(resource.Config{
		Issuer:   "https://login.example.com",
		Audience: "https://api.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	var token string // e.g. from a WebSocket subprotocol message
	claims, err := v.Verify(context.Background(), token)
	var expired *resource.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		fmt.Println("expired at", expired.Expiry)
	case errors.Is(err, resource.ErrInvalidToken):
		fmt.Println("refused:", err)
	case errors.Is(err, resource.ErrUnavailable):
		fmt.Println("try again later:", err)
	case err == nil:
		fmt.Println("hello", claims.Subject, claims.HasScope("orders:read"))
	}
	// Output: refused: resource: invalid access token: is not a JWT
}

// With a RevocationCheck, a token is also checked at the provider's
// introspection endpoint, so that sign-out is seen at the API within CacheTTL
// instead of at the token's expiry. The API is a confidential client of the
// provider.
func ExampleRevocationCheck() {
	v, err := resource.New(resource.Config{
		Issuer:   "https://login.example.com",
		Audience: "https://api.example.com",
		RevocationCheck: &resource.RevocationCheck{
			ClientID:     "orders-api",
			ClientSecret: "secret from the environment, at least 32 characters",
			CacheTTL:     2 * time.Second,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = v.Require("orders:read")
	// Output:
}

// With DPoP, Require also takes DPoP-bound tokens ("Authorization: DPoP"
// and a proof of the token's key), and a request without a token is offered
// both schemes. BaseURL is how clients address this API: their proofs name
// it. Behind several instances, give DPoP.Replay a cache they share.
func ExampleDPoP() {
	v, err := resource.New(resource.Config{
		Issuer:   "https://login.example.com",
		Audience: "https://api.example.com",
		DPoP:     &resource.DPoP{BaseURL: "https://api.example.com", Algorithms: []string{"ES256", "EdDSA"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	h := v.Require("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resource.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "orders of %s, key %s\n", claims.Subject, claims.JKT)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/orders", nil))
	fmt.Println(rec.Code, rec.Header().Values("WWW-Authenticate"))
	// Output:
	// 401 [Bearer realm="https://api.example.com" DPoP realm="https://api.example.com", algs="ES256 EdDSA"]
}

// A verifier needs the API's own audience: none at all, or the issuer (which
// names the provider, and is the audience of every client registered without
// one), is refused.
func ExampleConfig_audience() {
	for _, aud := range []string{"", "https://login.example.com", "https://api.example.com"} {
		_, err := resource.New(resource.Config{Issuer: "https://login.example.com", Audience: aud})
		fmt.Printf("%q accepted: %v\n", aud, err == nil)
	}
	// Output:
	// "" accepted: false
	// "https://login.example.com" accepted: false
	// "https://api.example.com" accepted: true
}

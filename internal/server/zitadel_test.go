package server_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/client/rs"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// zitadel/oidc, a certified relying party beside go-oidc, against Castellan:
// its clients as they are registered, unmodified.
const (
	zitadelRedirect   = "https://zitadel-rp.example/callback"
	zitadelLoggedOut  = "https://zitadel-rp.example/"
	zitadelSecret     = "zitadel-rp-secret-0123456789abcdef0123"
	zitadelRSSecret   = "zitadel-rs-secret-0123456789abcdef0123"
	zitadelSecretRP   = "zitadel-rp"  // client_secret_basic
	zitadelKeyRP      = "zitadel-jwt" // private_key_jwt
	zitadelResourceRS = "zitadel-rs"  // client_secret_post, introspects with Basic
)

// zitadelRP is a zitadel relying party over env: discovery, PKCE with its
// cookie handler, the ID token algorithms from discovery.
type zitadelRP struct {
	env   *servertest.Env
	party rp.RelyingParty
}

func newZitadelRP(t *testing.T, env *servertest.Env, clientID, secret string, opts ...rp.Option) *zitadelRP {
	t.Helper()
	cookies := httphelper.NewCookieHandler([]byte("0123456789abcdef0123456789abcdef"), []byte("0123456789abcdef0123456789abcdef"), httphelper.WithUnsecure())
	opts = append([]rp.Option{rp.WithHTTPClient(env.HTTP.Client()), rp.WithPKCE(cookies), rp.WithSigningAlgsFromDiscovery()}, opts...)
	party, err := rp.NewRelyingPartyOIDC(context.Background(), env.URL, clientID, secret, zitadelRedirect,
		[]string{zoidc.ScopeOpenID, zoidc.ScopeProfile, zoidc.ScopeEmail, zoidc.ScopeOfflineAccess}, opts...)
	if err != nil {
		t.Fatalf("zitadel discovery: %v", err)
	}
	return &zitadelRP{env: env, party: party}
}

// signIn runs the relying party's own handlers: AuthURLHandler sends the
// browser (alice, through servertest's sign-in form) with state and a PKCE
// challenge, and CodeExchangeHandler takes the callback, checks state,
// redeems the code with the verifier (and, with a signer, a client
// assertion of zitadel's own shape) and verifies the ID token.
func (z *zitadelRP) signIn(t *testing.T) *zoidc.Tokens[*zoidc.IDTokenClaims] {
	t.Helper()
	start := httptest.NewRecorder()
	rp.AuthURLHandler(func() string { return "zitadel-state" }, z.party)(start, httptest.NewRequest(http.MethodGet, "https://zitadel-rp.example/login", nil))
	if start.Code != http.StatusFound {
		t.Fatalf("AuthURLHandler: %d %s", start.Code, start.Body)
	}
	last, err := z.env.Agent("alice").Follow(start.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(last.Location, zitadelRedirect+"?") {
		t.Fatalf("authorization ended at %d %q\n%s", last.Status, last.Location, last.Body)
	}
	callback := httptest.NewRequest(http.MethodGet, last.Location, nil)
	for _, c := range start.Result().Cookies() {
		callback.AddCookie(c)
	}
	var tokens *zoidc.Tokens[*zoidc.IDTokenClaims]
	done := httptest.NewRecorder()
	rp.CodeExchangeHandler(func(w http.ResponseWriter, r *http.Request, tk *zoidc.Tokens[*zoidc.IDTokenClaims], state string, _ rp.RelyingParty) {
		if state != "zitadel-state" {
			t.Errorf("state %q", state)
		}
		tokens = tk
	}, z.party)(done, callback)
	if tokens == nil {
		t.Fatalf("CodeExchangeHandler: %d %s", done.Code, done.Body)
	}
	return tokens
}

// introspect asks, as a zitadel resource server, whether token is active.
func introspectZitadel(t *testing.T, server rs.ResourceServer, token string) *zoidc.IntrospectionResponse {
	t.Helper()
	resp, err := rs.Introspect[*zoidc.IntrospectionResponse](context.Background(), server, token)
	if err != nil {
		t.Fatalf("zitadel introspection: %v", err)
	}
	return resp
}

// TestZitadelRelyingParty runs zitadel/oidc 3.52's rp and rs packages
// against Castellan: a confidential client with a secret (which zitadel
// sends with Basic for the code exchange, in the form for refresh and
// revocation), a private_key_jwt client (zitadel's assertions: aud
// ["<issuer>"], an hour long), and a resource server registered with
// client_secret_post that introspects with Basic, as zitadel always does.
func TestZitadelRelyingParty(t *testing.T) {
	key := servertest.NewClientKey(t, "zitadel-2026")
	der, err := x509.MarshalPKCS8PrivateKey(key.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	cfg := servertest.WithClients(servertest.Config())
	registration := func(id string) config.Client {
		return config.Client{ClientID: id, RedirectURIs: []string{zitadelRedirect}, PostLogoutRedirectURIs: []string{zitadelLoggedOut},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile email offline_access", SkipConsent: true}
	}
	secretRP := registration(zitadelSecretRP)
	secretRP.ClientSecret, secretRP.TokenEndpointAuthMethod = zitadelSecret, "client_secret_basic"
	keyRP := registration(zitadelKeyRP)
	keyRP.TokenEndpointAuthMethod, keyRP.JWKS, keyRP.TokenEndpointAuthSigningAlg = "private_key_jwt", key.JWKS(), "ES256"
	cfg.Clients = append(cfg.Clients, secretRP, keyRP, config.Client{
		ClientID: zitadelResourceRS, ClientSecret: zitadelRSSecret, TokenEndpointAuthMethod: "client_secret_post",
		GrantTypes: []string{"client_credentials"}, Scope: "api:read",
	})
	env := servertest.New(t, servertest.Options{Config: cfg})
	ctx := context.Background()
	resource, err := rs.NewResourceServerClientCredentials(ctx, env.URL, zitadelResourceRS, zitadelRSSecret, rs.WithClient(env.HTTP.Client()))
	if err != nil {
		t.Fatal(err)
	}

	z := newZitadelRP(t, env, zitadelSecretRP, zitadelSecret)
	var first *zoidc.Tokens[*zoidc.IDTokenClaims]
	t.Run("code-pkce", func(t *testing.T) {
		first = z.signIn(t)
		claims := first.IDTokenClaims
		if claims.Issuer != env.URL || claims.Email != "alice@example.com" || first.RefreshToken == "" {
			t.Fatalf("tokens: iss %q email %q refresh %t", claims.Issuer, claims.Email, first.RefreshToken != "")
		}
		info, err := rp.Userinfo[*zoidc.UserInfo](ctx, first.AccessToken, first.TokenType, claims.Subject, z.party)
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		if info.Email != "alice@example.com" || !bool(info.EmailVerified) {
			t.Errorf("userinfo: %+v", info)
		}
	})
	if first == nil {
		t.FailNow()
	}
	t.Run("introspect-basic", func(t *testing.T) {
		// zitadel-rs registered client_secret_post; rs sends Basic.
		resp := introspectZitadel(t, resource, first.AccessToken)
		if !resp.Active || resp.ClientID != zitadelSecretRP || resp.Subject != first.IDTokenClaims.Subject {
			t.Fatalf("introspection: %+v", resp)
		}
	})
	var refreshed *zoidc.Tokens[*zoidc.IDTokenClaims]
	t.Run("refresh-post-after-basic", func(t *testing.T) {
		// The code went with Basic; the refresh goes with the secret in the form.
		refreshed, err = rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, z.party, first.RefreshToken, "", "")
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if refreshed.AccessToken == "" || refreshed.IDTokenClaims == nil || refreshed.IDTokenClaims.Subject != first.IDTokenClaims.Subject {
			t.Fatalf("refreshed tokens: %+v", refreshed)
		}
	})
	t.Run("revoke-post", func(t *testing.T) {
		refreshToken := first.RefreshToken
		if refreshed != nil && refreshed.RefreshToken != "" {
			refreshToken = refreshed.RefreshToken
		}
		if err := rp.RevokeToken(ctx, z.party, refreshToken, "refresh_token"); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if resp := introspectZitadel(t, resource, refreshed.AccessToken); resp.Active {
			t.Fatalf("access token of a revoked refresh token still active: %+v", resp)
		}
	})

	t.Run("private-key-jwt", func(t *testing.T) {
		k := newZitadelRP(t, env, zitadelKeyRP, "", rp.WithJWTProfile(rp.SignerFromKeyAndKeyID(keyPEM, key.KID)))
		tokens := k.signIn(t) // the code exchange with zitadel's assertion
		if tokens.IDTokenClaims.Subject == "" || tokens.RefreshToken == "" {
			t.Fatalf("tokens: %+v", tokens)
		}
		again, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, k.party, tokens.RefreshToken, "", "")
		if err != nil {
			t.Fatalf("refresh with an assertion: %v", err)
		}
		jwtResource, err := rs.NewResourceServerJWTProfile(ctx, env.URL, zitadelKeyRP, key.KID, keyPEM, rs.WithClient(env.HTTP.Client()))
		if err != nil {
			t.Fatal(err)
		}
		if resp := introspectZitadel(t, jwtResource, again.AccessToken); !resp.Active || resp.ClientID != zitadelKeyRP {
			t.Fatalf("introspection with an assertion: %+v", resp)
		}
		if err := rp.RevokeToken(ctx, k.party, again.RefreshToken, "refresh_token"); err != nil {
			t.Fatalf("revoke with an assertion: %v", err)
		}
		if resp := introspectZitadel(t, resource, again.AccessToken); resp.Active {
			t.Fatalf("revoked: still active %+v", resp)
		}
	})

	t.Run("end-session", func(t *testing.T) {
		// Server-side, without the browser's cookie, as zitadel does it.
		tokens := z.signIn(t)
		u, err := rp.EndSession(ctx, z.party, tokens.IDToken, zitadelLoggedOut, "bye", "", nil)
		if err != nil {
			t.Fatalf("EndSession: %v", err)
		}
		if u != nil && !strings.HasPrefix(u.String(), env.URL+"/") && !strings.HasPrefix(u.String(), zitadelLoggedOut) {
			t.Fatalf("EndSession sent the browser to %s", u)
		}
	})
}

package token_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// FuzzTokenRequests sends arbitrary bodies, Content-Types and Authorization
// headers to a real provider's token, revocation, introspection and userinfo
// endpoints: form parsing, client authentication and every grant's
// parameter handling. Invariants: never a 5xx; every answer is uncacheable
// JSON; errors carry a registered code, 401 with a challenge; tokens are
// issued only to what could have earned them (client credentials, or the
// code and refresh token this test obtained); userinfo answers only for the
// access token this test obtained.
func FuzzTokenRequests(f *testing.F) {
	fx := newFixture(f)
	tk := fx.tokens(f, servertest.Authz{})
	code, a := fx.code(f, servertest.Authz{})
	redeem := servertest.RedeemForm(code, a).Encode()
	svcBody := "client_id=svc&client_secret=" + url.QueryEscape(servertest.SvcSecret)
	basic := servertest.BasicHeader(special.ID, special.Secret)
	const form = "application/x-www-form-urlencoded"
	for _, s := range []struct {
		endpoint    uint8
		contentType string
		body, auth  string
	}{
		{0, form, "grant_type=client_credentials&" + svcBody, ""},
		{0, form, "grant_type=client_credentials&scope=api:read&scope=api:write&" + svcBody, ""},
		{0, form, "grant_type=client_credentials", basic},
		{0, form, "grant_type=client_credentials&client_secret=x", basic},
		{0, form, redeem, ""},
		{0, form, redeem + "&code_verifier=x", ""},
		{0, form, "grant_type=refresh_token&client_id=spa&refresh_token=" + tk.RefreshToken, ""},
		{0, form, "grant_type=refresh_token&client_id=spa&refresh_token=" + tk.RefreshToken[:20], ""},
		{0, form, "grant_type=authorization_code&client_id=spa&code=%zz", ""},
		{0, form, "grant_type=password&username=alice&password=x&client_id=spa", ""},
		{0, form, "grant_type=client_credentials&client_id=svc&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=e30.e30.e30", ""},
		{0, "application/json", `{"grant_type":"client_credentials"}`, ""},
		{0, "multipart/form-data; boundary=x", "--x--", ""},
		{0, form, "=&=&grant_type=client_credentials&" + svcBody, ""},
		{0, form, "grant_type=client_credentials", "Basic !!!"},
		{0, form, "grant_type=client_credentials", "Bearer " + tk.AccessToken},
		{1, form, "token=" + tk.RefreshToken + "&client_id=spa", ""},
		{1, form, "token=" + tk.AccessToken + "&token_type_hint=access_token&client_id=spa", ""},
		{2, form, "token=" + tk.AccessToken, servertest.BasicHeader("web", servertest.WebSecret)},
		{2, form, "token=" + tk.AccessToken + "&client_id=spa", ""},
		{3, "", "", "Bearer " + tk.AccessToken},
		{3, "", "", "Bearer " + tk.IDToken},
		{3, "", "", "DPoP " + tk.AccessToken},
		{3, form, "access_token=" + tk.AccessToken, ""},
		{3, "", "", "Bearer"},
	} {
		f.Add(s.endpoint, s.contentType, s.body, s.auth)
	}
	paths := []string{"/token", "/revoke", "/introspect", "/userinfo"}
	known := []string{oauth.ErrInvalidRequest, oauth.ErrInvalidClient, oauth.ErrInvalidGrant, oauth.ErrUnauthorizedClient,
		oauth.ErrUnsupportedGrantType, oauth.ErrInvalidScope, oauth.ErrUnsupportedTokenType, oauth.ErrInvalidToken,
		oauth.ErrInvalidDPoPProof, oauth.ErrUseDPoPNonce}
	f.Fuzz(func(t *testing.T, endpoint uint8, contentType, body, auth string) {
		path := paths[int(endpoint)%len(paths)]
		if strings.ContainsAny(auth, "\r\n\x00") || strings.ContainsAny(contentType, "\r\n\x00") {
			return // not a header a client can send
		}
		method := http.MethodPost
		if path == "/userinfo" && body == "" {
			method = http.MethodGet
		}
		r, err := fx.env.Request(method, path, contentType, body, auth)
		if err != nil {
			return // refused by the HTTP client (a header net/http will not send)
		}
		if r.Status >= 500 || (r.Status != 200 && r.Status != 400 && r.Status != 401 && r.Status != 403) {
			t.Fatalf("%s %q %q %q: status %d\n%s", path, contentType, body, auth, r.Status, r.Body)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Fatalf("%s: Cache-Control %q, want no-store (RFC 6749 §5.1)", path, got)
		}
		if r.Status == 401 && r.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s: 401 without WWW-Authenticate", path)
		}
		if r.Status >= 400 && path != "/userinfo" {
			if !json.Valid([]byte(r.Body)) || !oauth.Contains(known, r.Code()) {
				t.Fatalf("%s %q %q: error %q\n%s", path, body, auth, r.Code(), r.Body)
			}
			if r.Status == 401 && r.Code() != oauth.ErrInvalidClient {
				t.Fatalf("%s: 401 with %q", path, r.Code())
			}
		}
		if r.Status != 200 {
			return
		}
		switch path {
		case "/token":
			v, _ := url.ParseQuery(body)
			gt := v.Get("grant_type")
			earned := gt == oauth.GrantClientCredentials ||
				(gt == oauth.GrantRefreshToken && strings.Contains(body, tk.RefreshToken)) ||
				(gt == oauth.GrantAuthorizationCode && strings.Contains(body, code))
			if !earned || r.Str("access_token") == "" {
				t.Fatalf("tokens issued for %q %q:\n%s", body, auth, r.Body)
			}
		case "/userinfo":
			if !strings.Contains(auth+body, tk.AccessToken) {
				t.Fatalf("userinfo answered for %q %q:\n%s", body, auth, r.Body)
			}
		}
	})
}

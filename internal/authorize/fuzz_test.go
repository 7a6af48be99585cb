package authorize

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// fuzzClients are the registered clients the authorization request fuzzer
// asks for: a public SPA on a loopback URI, a confidential web app with two
// URIs (one with a query), and an implicit client.
var fuzzClients = map[string]storage.Client{
	"spa": {ID: "spa", TokenEndpointAuthMethod: "none", RedirectURIs: []string{"http://127.0.0.1:9100/callback"},
		AllowedOrigins: []string{"http://127.0.0.1:9100"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid", "profile", "email", "offline_access"}},
	"web": {ID: "web", TokenEndpointAuthMethod: "client_secret_basic", RedirectURIs: []string{"https://web.example/callback", "https://web.example/cb?tenant=a"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"openid", "api:read"}},
	"imp": {ID: "imp", TokenEndpointAuthMethod: "none", RedirectURIs: []string{"https://imp.example/cb"},
		GrantTypes: []string{"implicit", "authorization_code"}, ResponseTypes: []string{"code", "id_token", "id_token token", "token"},
		Scopes: []string{"openid", "profile"}},
	"svc": {ID: "svc", TokenEndpointAuthMethod: "client_secret_post", GrantTypes: []string{"client_credentials"}, Scopes: []string{"api:read"}},
}

func fuzzLookup(id string) (storage.Client, error) {
	c, ok := fuzzClients[id]
	if !ok {
		return c, storage.ErrNotFound
	}
	return c, nil
}

// FuzzAuthorizationRequest feeds raw query strings to identify and validate,
// the two steps every authorization request takes. Invariants: nothing is
// redirected until client and redirect URI are known good, and the redirect
// URI is then a registered one (RFC 9700 §4.1); a request that passes is
// internally consistent (PKCE S256 for public clients, scopes the client may
// ask for, no repeated parameter, every parameter within its limit, state
// echoed exactly, a nonce with an ID token, prompt=none alone); errors carry
// a known code.
func FuzzAuthorizationRequest(f *testing.F) {
	challenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	base := "client_id=spa&redirect_uri=" + url.QueryEscape("http://127.0.0.1:9100/callback") +
		"&response_type=code&scope=openid&code_challenge=" + challenge + "&code_challenge_method=S256&state=s"
	for _, s := range []string{
		base,
		base + "&client_id=spa",
		base + "&redirect_uri=" + url.QueryEscape("https://evil.example/cb"),
		strings.Replace(base, "9100", "5555", 1),
		strings.Replace(base, "callback", "CALLBACK", 1),
		strings.Replace(base, "callback", "callback/", 1),
		strings.Replace(base, "callback", "callback%3Fx%3D1", 1),
		strings.Replace(base, "127.0.0.1", "127.0.0.1%40evil.example", 1),
		strings.Replace(base, "&code_challenge_method=S256", "&code_challenge_method=plain", 1),
		strings.Replace(base, "&code_challenge="+challenge, "", 1),
		strings.Replace(base, challenge, challenge[:20], 1),
		strings.Replace(base, "response_type=code", "response_type=token", 1),
		strings.Replace(base, "scope=openid", "scope=openid+api%3Aadmin", 1),
		base + "&prompt=none+login",
		base + "&prompt=none&max_age=-1",
		base + "&state=" + strings.Repeat("x", 4097),
		base + "&response_mode=web_message",
		base + "&request=eyJhbGciOiJub25lIn0.e30.",
		"client_id=web&response_type=code&scope=openid",
		"client_id=web&redirect_uri=" + url.QueryEscape("https://web.example/cb?tenant=a") + "&response_type=code&scope=api%3Aread",
		"client_id=imp&redirect_uri=" + url.QueryEscape("https://imp.example/cb") + "&response_type=id_token+token&scope=openid&nonce=n",
		"client_id=imp&redirect_uri=" + url.QueryEscape("https://imp.example/cb") + "&response_type=token+id_token&scope=openid&response_mode=query&nonce=n",
		"client_id=imp&redirect_uri=" + url.QueryEscape("https://imp.example/cb") + "&response_type=id_token&scope=profile&nonce=n",
		"client_id=svc&response_type=code&scope=api%3Aread",
		"client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F",
		"",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	known := []string{oauth.ErrInvalidRequest, oauth.ErrUnsupportedResponseType, oauth.ErrUnauthorizedClient,
		oauth.ErrInvalidScope, oauth.ErrRequestNotSupported, oauth.ErrRequestURINotSupported, oauth.ErrInvalidRequestURI}
	f.Fuzz(func(t *testing.T, raw string) {
		params, _ := url.ParseQuery(raw)
		c, uri, given, err := identify(params, fuzzLookup)
		if err != nil {
			var oe *oauth.Error
			if errors.As(err, &oe) && oe.Redirectable {
				t.Fatalf("identify(%q): redirectable error %v before the redirect URI is known", raw, oe)
			}
			return
		}
		if len(params["client_id"]) != 1 || params.Get("client_id") != c.ID || len(params["redirect_uri"]) > 1 {
			t.Fatalf("identify(%q): client %q from repeated or other client_id", raw, c.ID)
		}
		if !oauth.MatchRedirectURI(uri, c.RedirectURIs) {
			t.Fatalf("identify(%q): redirect URI %q not registered for %s", raw, uri, c.ID)
		}
		if given != (params.Get("redirect_uri") != "") || (given && uri != params.Get("redirect_uri")) ||
			(!given && (len(c.RedirectURIs) != 1 || uri != c.RedirectURIs[0])) {
			t.Fatalf("identify(%q): redirect URI %q given=%v", raw, uri, given)
		}

		req := &Request{ClientID: c.ID, RedirectURI: uri, RedirectGiven: given}
		e := validate(params, c, req, now)
		if !oauth.Contains([]string{ModeQuery, ModeFragment, ModeFormPost, ModeWebMessage}, req.ResponseMode) {
			t.Fatalf("validate(%q): response mode %q", raw, req.ResponseMode)
		}
		if req.Implicit() && req.ResponseType != "" && req.ResponseMode == ModeQuery && e == nil {
			t.Fatalf("validate(%q): tokens in a query", raw)
		}
		if len(req.State) > oauth.MaxStateLength || (req.State != "" && req.State != params.Get("state")) {
			t.Fatalf("validate(%q): state %q", raw, req.State)
		}
		if e != nil {
			if !e.Redirectable || !oauth.Contains(known, e.Code) {
				t.Fatalf("validate(%q): error %+v", raw, e)
			}
			return
		}
		for _, k := range parameters {
			if len(params[k]) > 1 {
				t.Fatalf("validate(%q): %s repeated and accepted", raw, k)
			}
		}
		if !oauth.Contains(c.ResponseTypes, req.ResponseType) {
			t.Fatalf("validate(%q): response type %q not allowed for %s", raw, req.ResponseType, c.ID)
		}
		if len(req.Scopes) == 0 || !oauth.Subset(req.Scopes, c.Scopes) {
			t.Fatalf("validate(%q): scopes %q", raw, req.Scopes)
		}
		if !req.Implicit() && (c.Public() || c.RequirePKCE) &&
			(req.CodeChallengeMethod != oauth.PKCES256 || !oauth.ValidChallenge(req.CodeChallenge)) {
			t.Fatalf("validate(%q): code flow of %s without S256 PKCE", raw, c.ID)
		}
		if req.CodeChallenge != "" && (req.CodeChallengeMethod != oauth.PKCES256 || req.CodeChallenge != params.Get("code_challenge")) {
			t.Fatalf("validate(%q): challenge %q method %q", raw, req.CodeChallenge, req.CodeChallengeMethod)
		}
		if req.Returns(oauth.ResponseIDToken) && req.Nonce == "" {
			t.Fatalf("validate(%q): ID token from the authorization endpoint without nonce", raw)
		}
		for _, l := range append(oauth.IdentityLimits, oauth.RequestLimits...) {
			if l.Exceeded(params) {
				t.Fatalf("validate(%q): %s over its limit accepted", raw, l.Name)
			}
		}
		if req.HasPrompt(PromptNone) && len(req.Prompt) != 1 {
			t.Fatalf("validate(%q): prompt %q", raw, req.Prompt)
		}
		if req.MaxAge < -1 {
			t.Fatalf("validate(%q): max_age %d", raw, req.MaxAge)
		}
		if req.State != params.Get("state") {
			t.Fatalf("validate(%q): state not echoed exactly", raw)
		}
		if params.Get("request") != "" {
			t.Fatalf("validate(%q): request object accepted", raw)
		}
		if req.OpenID() && !req.RedirectGiven {
			t.Fatalf("validate(%q): OpenID request without redirect_uri", raw)
		}
	})
}

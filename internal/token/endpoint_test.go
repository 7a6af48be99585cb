package token_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// tokenCase is one request to POST /token and the exact answer it must get.
type tokenCase struct {
	name string
	// send obtains whatever it needs (codes, tokens) and sends the request.
	send   func(t *testing.T, f *fixture) servertest.Reply
	status int
	err    string
	// header lists headers the answer must carry exactly.
	header map[string]string
	// then checks what the answer must have caused.
	then func(t *testing.T, f *fixture, r servertest.Reply)
}

func runTokenCases(t *testing.T, f *fixture, cases []tokenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send(t, f)
			checkReply(t, r, tc.status, tc.err)
			for k, v := range tc.header {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			if tc.then != nil {
				tc.then(t, f, r)
			}
		})
	}
}

// form is a shorthand for url.Values from pairs.
func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

const formType = "application/x-www-form-urlencoded"

var basicChallenge = map[string]string{"WWW-Authenticate": `Basic realm="castellan"`}

// assertion is a client assertion (RFC 7523 §2.2) with the given header and
// claims and a junk signature: Castellan does not accept client assertions
// yet (private_key_jwt comes with issue 8), so every one is invalid_client.
func assertion(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "." + enc([]byte("signature"))
}

func assertionCase(name, a string) tokenCase {
	return tokenCase{
		name: "adv33/" + name,
		send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials", "client_id", "svc",
				"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
				"client_assertion", a), servertest.NoClient)
		},
		status: 401, err: "invalid_client",
	}
}

// TestTokenRequestShape covers what every token request must get right
// before any grant type looks at it: method, encoding, parameters, grant
// type and client authentication (RFC 6749 §2.3, §3.2, §5.2).
func TestTokenRequestShape(t *testing.T) {
	f := newFixture(t)
	svcBody := "client_id=svc&client_secret=" + url.QueryEscape(servertest.SvcSecret)
	cases := []tokenCase{
		{name: "missing-grant-type", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("scope", "api:read"), servertest.SvcClient)
		}, status: 400, err: "invalid_request"},
		{name: "empty-grant-type", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", ""), servertest.SvcClient)
		}, status: 400, err: "invalid_request"},
		{name: "adv34/grant-type-password", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "password", "username", "alice", "password", servertest.Password), servertest.WebClient)
		}, status: 400, err: "unsupported_grant_type"},
		{name: "adv34/grant-type-unknown", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "urn:example:unknown"), servertest.WebClient)
		}, status: 400, err: "unsupported_grant_type"},
		{name: "adv34/grant-type-implicit", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "implicit"), servertest.SPAClient)
		}, status: 400, err: "unsupported_grant_type"},
		{name: "adv34/grant-type-device-code", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "urn:ietf:params:oauth:grant-type:device_code", "device_code", "x"), servertest.SPAClient)
		}, status: 400, err: "unsupported_grant_type"},
		{name: "adv34/grant-type-case-changed", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "Client_Credentials"), servertest.SvcClient)
		}, status: 400, err: "unsupported_grant_type"},
		{name: "unauthorized-client/svc-authorization-code", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "authorization_code", "code", opaque.New()), servertest.SvcClient)
		}, status: 400, err: "unauthorized_client"},
		{name: "unauthorized-client/svc-refresh-token", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "refresh_token", "refresh_token", opaque.New()), servertest.SvcClient)
		}, status: 400, err: "unauthorized_client"},
		{name: "unauthorized-client/spa-client-credentials", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials"), servertest.SPAClient)
		}, status: 400, err: "unauthorized_client"},
		{name: "unauthorized-client/web-client-credentials", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials"), servertest.WebClient)
		}, status: 400, err: "unauthorized_client"},
		{name: "duplicate-parameter/grant_type", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&grant_type=client_credentials&"+svcBody, "")
		}, status: 400, err: "invalid_request"},
		{name: "duplicate-parameter/scope", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&scope=api:read&scope=api:write&"+svcBody, "")
		}, status: 400, err: "invalid_request"},
		{name: "duplicate-parameter/client_secret", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&client_secret=x&"+svcBody, "")
		}, status: 400, err: "invalid_request"},
		{name: "duplicate-parameter/code", send: func(t *testing.T, f *fixture) servertest.Reply {
			code, a := f.code(t, servertest.Authz{})
			body := servertest.RedeemForm(code, a)
			body.Add("code", code)
			body.Set("client_id", "spa")
			return f.raw(t, "/token", formType, body.Encode(), "")
		}, status: 400, err: "invalid_request"},
		{name: "content-type/json", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", "application/json", `{"grant_type":"client_credentials","client_id":"svc"}`, "")
		}, status: 400, err: "invalid_request"},
		{name: "content-type/missing", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", "", "grant_type=client_credentials&"+svcBody, "")
		}, status: 400, err: "invalid_request"},
		{name: "content-type/multipart", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", "multipart/form-data; boundary=x", "--x--", "")
		}, status: 400, err: "invalid_request"},
		{name: "content-type/text-plain", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", "text/plain", "grant_type=client_credentials&"+svcBody, "")
		}, status: 400, err: "invalid_request"},
		{name: "content-type/with-charset-accepted", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType+"; charset=UTF-8", "grant_type=client_credentials&"+svcBody, "")
		}, status: 200},
		{name: "malformed-form-encoding", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&scope=%zz&"+svcBody, "")
		}, status: 400, err: "invalid_request"},
		{name: "malformed-form-encoding/semicolon", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials;scope=api:read&"+svcBody, "")
		}, status: 400, err: "invalid_request"},
		{name: "body-too-large", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&"+svcBody+"&pad="+strings.Repeat("a", 70<<10), "")
		}, status: 400, err: "invalid_request"},
		{name: "client-secret-in-query-ignored", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token?client_secret="+url.QueryEscape(servertest.SvcSecret), formType, "grant_type=client_credentials&client_id=svc", "")
		}, status: 401, err: "invalid_client"},
		{name: "query-string-parameters-ignored", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token?grant_type=client_credentials", formType, svcBody, "")
		}, status: 400, err: "invalid_request"},

		// Client authentication.
		{name: "adv32/wrong-secret-basic", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "authorization_code", "code", opaque.New()),
				servertest.ClientAuth{ID: "web", Secret: "wrong-secret-0123456789abcdef012345", Method: "client_secret_basic"})
		}, status: 401, err: "invalid_client", header: basicChallenge},
		{name: "adv32/wrong-secret-post", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials"),
				servertest.ClientAuth{ID: "svc", Secret: "wrong", Method: "client_secret_post"})
		}, status: 401, err: "invalid_client", header: basicChallenge},
		{name: "adv32/secret-prefix", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials"),
				servertest.ClientAuth{ID: "svc", Secret: servertest.SvcSecret[:len(servertest.SvcSecret)-1], Method: "client_secret_post"})
		}, status: 401, err: "invalid_client"},
		{name: "adv32/secret-padded", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials"),
				servertest.ClientAuth{ID: "svc", Secret: servertest.SvcSecret + "0", Method: "client_secret_post"})
		}, status: 401, err: "invalid_client"},
		{name: "adv32/empty-secret-basic", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "authorization_code", "code", opaque.New()),
				servertest.ClientAuth{ID: "web", Method: "client_secret_basic"})
		}, status: 401, err: "invalid_client", header: basicChallenge},
		{name: "adv32/unknown-client-basic", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials"),
				servertest.ClientAuth{ID: "nobody", Secret: servertest.WebSecret, Method: "client_secret_basic"})
		}, status: 401, err: "invalid_client", header: basicChallenge},
		{name: "adv32/unknown-client-none", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "authorization_code", "code", opaque.New()),
				servertest.ClientAuth{ID: "nobody", Method: "none"})
		}, status: 401, err: "invalid_client"},
		assertionCase("assertion-alg-none", assertion(`{"alg":"none"}`, `{"iss":"svc","sub":"svc","aud":"AUD","jti":"1","exp":9999999999}`)),
		assertionCase("assertion-hs256-keyed-with-public-key", assertion(`{"alg":"HS256","typ":"JWT"}`, `{"iss":"svc","sub":"svc","aud":"AUD","jti":"2","exp":9999999999}`)),
		assertionCase("assertion-wrong-aud", assertion(`{"alg":"ES256"}`, `{"iss":"svc","sub":"svc","aud":"https://evil.example/token","jti":"3","exp":9999999999}`)),
		assertionCase("assertion-expired", assertion(`{"alg":"ES256"}`, `{"iss":"svc","sub":"svc","aud":"AUD","jti":"4","exp":1}`)),
		assertionCase("assertion-no-sub", assertion(`{"alg":"ES256"}`, `{"iss":"svc","aud":"AUD","jti":"5","exp":9999999999}`)),
		assertionCase("assertion-replayed-jti-first", assertion(`{"alg":"ES256"}`, `{"iss":"svc","sub":"svc","aud":"AUD","jti":"6","exp":9999999999}`)),
		assertionCase("assertion-replayed-jti-second", assertion(`{"alg":"ES256"}`, `{"iss":"svc","sub":"svc","aud":"AUD","jti":"6","exp":9999999999}`)),
		assertionCase("assertion-garbage", "not-a-jwt"),
		// RFC 6749 §2.3: more than one authentication method in a request is
		// invalid_request, whichever methods they are (as Basic with a secret
		// in the body below).
		{name: "adv33/assertion-type-besides-secret", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials",
				"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), servertest.SvcClient)
		}, status: 400, err: "invalid_request"},
		{name: "adv33/assertion-besides-valid-secret", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
				"client_assertion", assertion(`{"alg":"ES256"}`, `{"iss":"svc","sub":"svc"}`)), servertest.SvcClient)
		}, status: 400, err: "invalid_request"},
		{name: "adv33/assertion-besides-basic", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="+
				assertion(`{"alg":"ES256"}`, `{"iss":"svc","sub":"svc"}`), servertest.BasicHeader("svc", servertest.SvcSecret))
		}, status: 400, err: "invalid_request"},
		{name: "basic-and-client-secret-in-body", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&client_secret="+url.QueryEscape(SpecialSecret),
				servertest.BasicHeader(special.ID, special.Secret))
		}, status: 400, err: "invalid_request"},
		{name: "basic-and-other-client-id-in-body", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&client_id=svc", servertest.BasicHeader(special.ID, special.Secret))
		}, status: 400, err: "invalid_request"},
		{name: "basic-and-same-client-id-in-body", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&client_id="+url.QueryEscape(special.ID), servertest.BasicHeader(special.ID, special.Secret))
		}, status: 200},
		{name: "public-client-presenting-secret-post", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "authorization_code", "code", opaque.New()),
				servertest.ClientAuth{ID: "spa", Secret: "some-secret-0123456789abcdef0123456789", Method: "client_secret_post"})
		}, status: 401, err: "invalid_client"},
		{name: "public-client-presenting-secret-basic", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "authorization_code", "code", opaque.New()),
				servertest.ClientAuth{ID: "spa", Secret: "some-secret-0123456789abcdef0123456789", Method: "client_secret_basic"})
		}, status: 401, err: "invalid_client", header: basicChallenge},
		{name: "confidential-client-without-auth", send: func(t *testing.T, f *fixture) servertest.Reply {
			code, a := f.code(t, web("openid"))
			return f.token(t, servertest.RedeemForm(code, a), servertest.ClientAuth{ID: "web", Method: "none"})
		}, status: 401, err: "invalid_client"},
		{name: "confidential-client-no-identification", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials"), servertest.NoClient)
		}, status: 401, err: "invalid_client"},
		{name: "confidential-client-other-secret-method", send: func(t *testing.T, f *fixture) servertest.Reply {
			// web registered client_secret_basic; the right secret in the body
			// authenticates it too (the code is made up, hence invalid_grant).
			return f.token(t, form("grant_type", "authorization_code", "code", opaque.New()),
				servertest.ClientAuth{ID: "web", Secret: servertest.WebSecret, Method: "client_secret_post"})
		}, status: 400, err: "invalid_grant"},
		{name: "confidential-client-other-secret-method-wrong-secret", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "authorization_code", "code", opaque.New()),
				servertest.ClientAuth{ID: "web", Secret: servertest.WebSecret + "x", Method: "client_secret_post"})
		}, status: 401, err: "invalid_client"},
		{name: "basic-form-encoded-special-characters", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "client_credentials"), special)
		}, status: 200},
		{name: "basic-special-characters-not-form-encoded", send: func(t *testing.T, f *fixture) servertest.Reply {
			// RFC 6749 §2.3.1: the parts are form-decoded, so a raw '+' reads as a space.
			raw := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(special.ID)+":"+SpecialSecret))
			return f.raw(t, "/token", formType, "grant_type=client_credentials", raw)
		}, status: 401, err: "invalid_client", header: basicChallenge},
		{name: "basic-scheme-case-insensitive", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials",
				"basic "+strings.TrimPrefix(servertest.BasicHeader(special.ID, special.Secret), "Basic "))
		}, status: 200},
		{name: "basic-malformed-base64", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials", "Basic !!!")
		}, status: 401, err: "invalid_client", header: basicChallenge},
		{name: "basic-without-colon", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials", "Basic "+base64.StdEncoding.EncodeToString([]byte("svc")))
		}, status: 401, err: "invalid_client"},
		{name: "bearer-scheme-at-token-endpoint", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/token", formType, "grant_type=client_credentials&client_id=svc", "Bearer "+opaque.New())
		}, status: 401, err: "invalid_client"},
	}
	runTokenCases(t, f, cases)
}

// TestAuthorizationCodeGrant is grant_type=authorization_code (RFC 6749
// §4.1.3, RFC 7636 §4.6; ADVERSARIAL 25, 28–31, 40).
func TestAuthorizationCodeGrant(t *testing.T) {
	f := newFixture(t)
	redeemAs := func(a servertest.Authz, edit func(url.Values)) func(t *testing.T, f *fixture) servertest.Reply {
		return func(t *testing.T, f *fixture) servertest.Reply {
			code, a := f.code(t, a)
			body := servertest.RedeemForm(code, a)
			edit(body)
			return f.token(t, body, a.Client)
		}
	}
	// Values carried from a case's send to its then.
	var first servertest.Tokens
	var retry servertest.Reply
	cases := []tokenCase{
		{name: "public-client-with-pkce", send: redeemAs(servertest.Authz{}, func(url.Values) {}), status: 200,
			header: map[string]string{"Pragma": "no-cache", "Content-Type": "application/json"},
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				tk := mustToken(t, r)
				if tk.RefreshToken == "" || tk.IDToken == "" || tk.ExpiresIn != 3600 || tk.Scope != "openid profile email offline_access" {
					t.Errorf("token response: %s", r.Body)
				}
				h := servertest.Header(tk.AccessToken)
				if h["typ"] != "at+jwt" || h["alg"] != "ES256" {
					t.Errorf("access token header %v, want typ at+jwt alg ES256 (RFC 9068 §2.1)", h)
				}
				c := servertest.Claims(tk.AccessToken)
				for _, k := range []string{"iss", "sub", "aud", "client_id", "scope", "exp", "iat", "jti", "sid", "auth_time", "grant"} {
					if c[k] == nil {
						t.Errorf("access token without %s: %v", k, c)
					}
				}
				if c["client_id"] != "spa" || c["iss"] != f.env.URL || c["aud"] != f.env.URL {
					t.Errorf("access token claims: %v", c)
				}
			}},
		{name: "confidential-client-without-pkce", send: redeemAs(servertest.Authz{Client: servertest.WebClient, NoPKCE: true}, func(url.Values) {}), status: 200},
		{name: "adv25/code-reused-revokes-first-tokens",
			send: func(t *testing.T, f *fixture) servertest.Reply {
				code, a := f.code(t, servertest.Authz{})
				first = mustToken(t, f.env.Redeem(t, code, a))
				if !f.env.Active(t, first.AccessToken) {
					t.Fatal("first access token inactive before the reuse")
				}
				return f.env.Redeem(t, code, a)
			},
			status: 400, err: "invalid_grant",
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				inactive(t, f.env, servertest.SvcClient, first.AccessToken)
				checkReply(t, f.env.Refresh(t, servertest.SPAClient, first.RefreshToken, ""), 400, "invalid_grant")
				if u := f.env.Userinfo(t, http.MethodGet, first.AccessToken); u.Status != 401 {
					t.Errorf("userinfo with a revoked code's access token: %d", u.Status)
				}
			}},
		{name: "adv28/code-of-another-client",
			send: func(t *testing.T, f *fixture) servertest.Reply {
				code, a := f.code(t, servertest.Authz{})
				body := servertest.RedeemForm(code, a)
				r := f.token(t, body, servertest.WebClient)
				retry = f.env.Redeem(t, code, a)
				return r
			},
			status: 400, err: "invalid_grant",
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				// The code is used up by the attempt: its client cannot redeem it either.
				checkReply(t, retry, 400, "invalid_grant")
			}},
		{name: "adv29/verifier-missing", send: redeemAs(servertest.Authz{}, func(v url.Values) { v.Del("code_verifier") }),
			status: 400, err: "invalid_grant"},
		{name: "adv29/verifier-wrong", send: redeemAs(servertest.Authz{}, func(v url.Values) { v.Set("code_verifier", opaque.New()) }),
			status: 400, err: "invalid_grant"},
		{name: "adv29/verifier-too-short", send: redeemAs(servertest.Authz{}, func(v url.Values) { v.Set("code_verifier", v.Get("code_verifier")[:42]) }),
			status: 400, err: "invalid_grant"},
		{name: "adv29/verifier-padded", send: redeemAs(servertest.Authz{}, func(v url.Values) { v.Set("code_verifier", v.Get("code_verifier")+"A") }),
			status: 400, err: "invalid_grant"},
		{name: "adv29/verifier-is-the-challenge", send: redeemAs(servertest.Authz{}, func(v url.Values) {
			v.Set("code_verifier", oauth.S256Challenge(v.Get("code_verifier")))
		}), status: 400, err: "invalid_grant"},
		{name: "adv29/verifier-missing-confidential", send: redeemAs(servertest.Authz{Client: servertest.WebClient}, func(v url.Values) { v.Del("code_verifier") }),
			status: 400, err: "invalid_grant"},
		{name: "adv30/verifier-for-code-without-challenge", send: redeemAs(servertest.Authz{Client: servertest.WebClient, NoPKCE: true}, func(v url.Values) {
			v.Set("code_verifier", opaque.New())
		}), status: 400, err: "invalid_grant"},
		{name: "adv31/redirect-uri-other-registered", send: redeemAs(servertest.Authz{Client: servertest.WebClient}, func(v url.Values) {
			v.Set("redirect_uri", "https://web.example/other")
		}), status: 400, err: "invalid_grant"},
		{name: "adv31/redirect-uri-trailing-slash", send: redeemAs(servertest.Authz{}, func(v url.Values) { v.Set("redirect_uri", servertest.SPARedirect+"/") }),
			status: 400, err: "invalid_grant"},
		{name: "adv31/redirect-uri-changed-case", send: redeemAs(servertest.Authz{}, func(v url.Values) {
			v.Set("redirect_uri", strings.ToUpper(servertest.SPARedirect))
		}), status: 400, err: "invalid_grant"},
		{name: "redirect-uri-omitted-at-token", send: redeemAs(servertest.Authz{}, func(v url.Values) { v.Del("redirect_uri") }),
			status: 400, err: "invalid_grant"},
		{name: "redirect-uri-omitted-at-both", send: redeemAs(servertest.Authz{Scope: "profile", OmitRedirect: true}, func(url.Values) {}),
			status: 200},
		{name: "code-missing", send: redeemAs(servertest.Authz{}, func(v url.Values) { v.Del("code") }),
			status: 400, err: "invalid_request"},
		{name: "code-unknown", send: redeemAs(servertest.Authz{}, func(v url.Values) { v.Set("code", opaque.New()) }),
			status: 400, err: "invalid_grant"},
		{name: "adv40/refresh-token-as-code", send: func(t *testing.T, f *fixture) servertest.Reply {
			tk := f.tokens(t, servertest.Authz{})
			return f.token(t, form("grant_type", "authorization_code", "code", tk.RefreshToken, "redirect_uri", servertest.SPARedirect,
				"code_verifier", opaque.New()), servertest.SPAClient)
		}, status: 400, err: "invalid_grant"},
		{name: "adv40/access-token-as-code", send: func(t *testing.T, f *fixture) servertest.Reply {
			tk := f.tokens(t, servertest.Authz{})
			return f.token(t, form("grant_type", "authorization_code", "code", tk.AccessToken, "redirect_uri", servertest.SPARedirect,
				"code_verifier", opaque.New()), servertest.SPAClient)
		}, status: 400, err: "invalid_grant"},
	}
	runTokenCases(t, f, cases)
}

// TestDamagedCodesAndTokens: a truncated or padded code or refresh token is
// refused, never matched by prefix, and does not use up the real one
// (ADVERSARIAL 40).
func TestDamagedCodesAndTokens(t *testing.T) {
	f := newFixture(t)
	code, a := f.code(t, servertest.Authz{})
	tk := f.tokens(t, servertest.Authz{})
	for name, bad := range mutations(code) {
		t.Run("adv40/code-"+name, func(t *testing.T) {
			checkReply(t, f.env.Redeem(t, bad, a), 400, "invalid_grant")
		})
	}
	for name, bad := range mutations(tk.RefreshToken) {
		t.Run("adv40/refresh-token-"+name, func(t *testing.T) {
			checkReply(t, f.env.Refresh(t, servertest.SPAClient, bad, ""), 400, "invalid_grant")
		})
	}
	t.Run("adv40/real-code-still-redeems", func(t *testing.T) {
		mustToken(t, f.env.Redeem(t, code, a))
	})
	t.Run("adv40/real-refresh-token-still-works", func(t *testing.T) {
		mustToken(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""))
	})
}

// TestClientCredentialsGrant is grant_type=client_credentials (RFC 6749 §4.4).
func TestClientCredentialsGrant(t *testing.T) {
	f := newFixture(t)
	cc := func(scope string) func(t *testing.T, f *fixture) servertest.Reply {
		return func(t *testing.T, f *fixture) servertest.Reply {
			v := form("grant_type", "client_credentials")
			if scope != "" {
				v.Set("scope", scope)
			}
			return f.token(t, v, servertest.SvcClient)
		}
	}
	scopeIs := func(want string) func(t *testing.T, f *fixture, r servertest.Reply) {
		return func(t *testing.T, f *fixture, r servertest.Reply) {
			tk := mustToken(t, r)
			if tk.Scope != want || tk.RefreshToken != "" || tk.IDToken != "" {
				t.Errorf("got %s, want scope %q and no refresh or ID token", r.Body, want)
			}
			c := servertest.Claims(tk.AccessToken)
			if c["sub"] != "svc" || c["client_id"] != "svc" || c["scope"] != want || c["grant"] != nil {
				t.Errorf("access token claims: %v", c)
			}
		}
	}
	runTokenCases(t, f, []tokenCase{
		{name: "default-scope-is-everything-allowed", send: cc(""), status: 200, then: scopeIs("api:read api:write")},
		{name: "narrower-scope", send: cc("api:write"), status: 200, then: scopeIs("api:write")},
		{name: "openid-refused", send: cc("openid api:read"), status: 400, err: "invalid_scope"},
		{name: "offline-access-refused", send: cc("offline_access"), status: 400, err: "invalid_scope"},
		{name: "unknown-scope", send: cc("api:admin"), status: 400, err: "invalid_scope"},
		{name: "malformed-scope", send: cc(`api:read "x"`), status: 400, err: "invalid_scope"},
	})
}

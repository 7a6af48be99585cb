package authorize_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// promptCase is one combination of SSO session, consent, prompt, max_age and
// id_token_hint (OIDC Core §3.1.2.1, §3.1.2.3).
type promptCase struct {
	name   string
	client string
	// before advances the clock before anything happens (to expire the hints).
	before time.Duration
	// session is who signed in first ("" nobody); age is how long ago.
	session string
	age     time.Duration
	// hint is the id_token_hint: an ID token of "alice" or "bob", or a broken
	// one ("garbage", "access-token", "tampered").
	hint string
	set  map[string]string
	want want
	// then is who signs in on the sign-in page the case expects (and the
	// consent page that may follow is allowed).
	then string
	// name of the user the code is for (default: then, else session).
	user string
}

// TestPromptMaxAgeConsent runs the combinations as a table. Every successful
// case redeems its code and checks whose it is and when they signed in:
// auth_time is the first sign-in's unless the case signs in again.
func TestPromptMaxAgeConsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// web: alice consented to openid profile; html: nobody ever consents.
	f.consent(t, "alice", "web", "openid profile")
	hints := map[string]string{"alice": f.rawIDToken(t, "alice"), "bob": f.rawIDToken(t, "bob")}
	code := f.outcome(t, follow(t, f.agent("alice"), f.authorize(request("spa"))), request("spa"), want{kind: query}).Get("code")
	hints["access-token"] = f.exchange(t, "spa", code, true).AccessToken
	hints["garbage"] = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"
	hints["tampered"] = tamper(t, hints["alice"])
	names := map[string]string{"alice": "Alice Liddell", "bob": "Bob"}

	cases := []promptCase{
		// prompt=none.
		{name: "prompt=none/no-session", client: "spa", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "prompt=none/no-session-consent-client", client: "web", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "prompt=none/session-skip_consent", client: "spa", session: "alice", set: map[string]string{"prompt": "none"}, want: want{kind: query}},
		{name: "prompt=none/session-consent-known", client: "web", session: "alice", set: map[string]string{"prompt": "none"}, want: want{kind: query}},
		{name: "prompt=none/session-consent-narrower", client: "web", session: "alice", set: map[string]string{"prompt": "none", "scope": "openid"}, want: want{kind: query}},
		{name: "prompt=none/session-no-consent", client: "html", session: "alice", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "consent_required"}},
		{name: "prompt=none/session-consent-of-another-user", client: "web", session: "bob", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "consent_required"}},
		{name: "prompt=none/session-wider-scope-than-consented", client: "web", session: "alice", set: map[string]string{"prompt": "none", "scope": "openid profile email"}, want: want{kind: query, err: "consent_required"}},
		{name: "prompt=none/session-idle-expired", client: "spa", session: "alice", age: 31 * time.Minute, set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "prompt=none/session-implicit", client: "imp", session: "alice", set: map[string]string{"prompt": "none"}, want: want{kind: fragment}},
		{name: "prompt=none/no-session-implicit", client: "imp", set: map[string]string{"prompt": "none"}, want: want{kind: fragment, err: "login_required"}},

		// prompt=login and select_account.
		{name: "prompt=login/session-signs-in-again", client: "spa", session: "alice", age: time.Minute, set: map[string]string{"prompt": "login"}, want: want{kind: login}, then: "alice"},
		{name: "prompt=login/no-session", client: "spa", set: map[string]string{"prompt": "login"}, want: want{kind: login}, then: "alice"},
		{name: "prompt=login/at-the-same-instant", client: "spa", session: "alice", set: map[string]string{"prompt": "login"}, want: want{kind: login}, then: "alice"},
		{name: "prompt=login/another-user-signs-in", client: "spa", session: "alice", age: time.Minute, set: map[string]string{"prompt": "login"}, want: want{kind: login}, then: "bob"},
		{name: "prompt=login/then-consent", client: "web", session: "alice", age: time.Minute, set: map[string]string{"prompt": "login consent"}, want: want{kind: login}, then: "alice"},
		{name: "prompt=select_account/is-login", client: "spa", session: "alice", age: time.Minute, set: map[string]string{"prompt": "select_account"}, want: want{kind: login}, then: "alice"},

		// prompt=consent.
		{name: "prompt=consent/consent-known-asks-again", client: "web", session: "alice", set: map[string]string{"prompt": "consent"}, want: want{kind: consent}},
		{name: "prompt=consent/skip_consent-client-answers", client: "spa", session: "alice", set: map[string]string{"prompt": "consent"}, want: want{kind: query}},
		{name: "prompt=consent/no-session", client: "web", set: map[string]string{"prompt": "consent"}, want: want{kind: login}, then: "alice"},

		// max_age.
		{name: "max_age/exceeded-signs-in-again", client: "spa", session: "alice", age: 2 * time.Minute, set: map[string]string{"max_age": "60"}, want: want{kind: login}, then: "alice"},
		{name: "max_age/not-exceeded", client: "spa", session: "alice", age: 2 * time.Minute, set: map[string]string{"max_age": "600"}, want: want{kind: query}},
		{name: "max_age/exactly-reached", client: "spa", session: "alice", age: time.Minute, set: map[string]string{"max_age": "60"}, want: want{kind: query}},
		{name: "max_age/one-second-over", client: "spa", session: "alice", age: 61 * time.Second, set: map[string]string{"max_age": "60"}, want: want{kind: login}, then: "alice"},
		{name: "max_age/0-is-prompt-login", client: "spa", session: "alice", set: map[string]string{"max_age": "0"}, want: want{kind: login}, then: "alice"},
		{name: "max_age/exceeded-consent-client", client: "web", session: "alice", age: 2 * time.Minute, set: map[string]string{"max_age": "60"}, want: want{kind: login}, then: "alice"},
		{name: "max_age/exceeded-prompt-none", client: "spa", session: "alice", age: 2 * time.Second, set: map[string]string{"max_age": "1", "prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "max_age/0-prompt-none", client: "spa", session: "alice", set: map[string]string{"max_age": "0", "prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "max_age/exceeded-by-minutes-prompt-none", client: "spa", session: "alice", age: 20 * time.Minute, set: map[string]string{"max_age": "600", "prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "max_age/fresh-prompt-none", client: "spa", session: "alice", age: 10 * time.Minute, set: map[string]string{"max_age": "10000", "prompt": "none"}, want: want{kind: query}},

		// id_token_hint.
		{name: "id_token_hint/same-subject-prompt-none", client: "spa", session: "alice", hint: "alice", set: map[string]string{"prompt": "none"}, want: want{kind: query}},
		{name: "id_token_hint/same-subject", client: "web", session: "alice", hint: "alice", want: want{kind: query}},
		{name: "id_token_hint/other-subject-prompt-none", client: "spa", session: "alice", hint: "bob", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "id_token_hint/other-subject-signs-in", client: "spa", session: "alice", hint: "bob", want: want{kind: login}, then: "bob"},
		{name: "id_token_hint/no-session-prompt-none", client: "spa", hint: "alice", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "id_token_hint/no-session", client: "spa", hint: "alice", want: want{kind: login}, then: "alice"},
		{name: "id_token_hint/for-another-client", client: "web", session: "alice", hint: "alice", set: map[string]string{"prompt": "none"}, want: want{kind: query}},
		{name: "id_token_hint/garbage", client: "spa", session: "alice", hint: "garbage", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "invalid_request"}},
		{name: "id_token_hint/access-token", client: "spa", session: "alice", hint: "access-token", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "invalid_request"}},
		{name: "id_token_hint/tampered", client: "spa", session: "alice", hint: "tampered", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "invalid_request"}},
		{name: "id_token_hint/invalid-no-session", client: "spa", hint: "garbage", want: want{kind: query, err: "invalid_request"}},
		// OIDC Core §3.1.2.1: the hint may be an expired ID token.
		{name: "id_token_hint/expired-still-a-hint", client: "spa", before: 2 * time.Hour, session: "alice", hint: "alice", set: map[string]string{"prompt": "none"}, want: want{kind: query}},
		{name: "id_token_hint/expired-other-subject", client: "spa", session: "alice", hint: "bob", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "login_required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.env.Clock.Advance(c.before)
			a := f.agent("alice")
			var first int64
			if c.session != "" {
				a = f.signedIn(t, c.session)
				first = f.env.Clock.Now().Unix()
			}
			f.env.Clock.Advance(c.age)
			req := with(request(c.client), "scope", "openid profile")
			for k, v := range c.set {
				req.Set(k, v)
			}
			if c.hint != "" {
				req.Set("id_token_hint", hints[c.hint])
			}
			s := get(t, a, f.authorize(req))
			p := f.outcome(t, s, req, c.want)
			user, authTime := c.session, first
			if c.want.kind == login && c.then != "" {
				authTime = f.env.Clock.Now().Unix()
				user = c.then
				s = f.signInAt(t, a, s, c.then)
				if isConsentPage(s) {
					s = decide(t, a, f.env, s, "allow")
				}
				p = f.outcome(t, s, req, want{kind: query})
			}
			if p == nil || p.Get("error") != "" || user == "" {
				return
			}
			raw, at := p.Get("id_token"), p.Get("access_token")
			if code := p.Get("code"); code != "" {
				tok := f.exchange(t, c.client, code, true)
				raw, at = tok.IDToken, tok.AccessToken
			}
			claims, _ := f.verifyID(t, c.client, raw, at)
			if p.Get("code") != "" && strings.Contains(req.Get("scope"), "profile") && claims.Name != names[user] {
				t.Errorf("code for %q, want %s", claims.Name, user)
			}
			if claims.AuthTime != authTime {
				t.Errorf("auth_time: got %d, want %d (%+ds)", claims.AuthTime, authTime, claims.AuthTime-authTime)
			}
			if c.hint == "alice" || c.hint == "bob" {
				hinted := claimsOf(t, hints[c.hint])
				if (hinted.Subject == claims.Subject) != (c.hint == user) {
					t.Errorf("sub %q, hint's sub %q, user %s", claims.Subject, hinted.Subject, user)
				}
			}
		})
	}
}

// tamper changes the subject of a signed ID token, keeping the signature.
func tamper(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `"sub":"`, `"sub":"x`, 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(s))
	return strings.Join(parts, ".")
}

// claimsOf reads a JWT's claims without verifying it (a hint made by this
// test, perhaps expired by now).
func claimsOf(t *testing.T, raw string) idClaims {
	t.Helper()
	var c idClaims
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("JWT claims of %q", trim(raw))
	}
	return c
}

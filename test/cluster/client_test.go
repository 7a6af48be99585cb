package cluster_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// statusError is an HTTP answer the caller did not expect.
type statusError struct {
	node   string
	what   string
	status int
	body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s on node %s: got %d: %.300s", e.what, e.node, e.status, e.body)
}

// noAnswer reports whether err means the node did not answer: connection
// refused or reset, timed out (a transport error, not an HTTP status).
func noAnswer(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// statusOf returns the HTTP status of err, or 0 if it carries none.
func statusOf(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.status
	}
	return 0
}

// sharedJar is one browser's cookies, sent to every node: behind a load
// balancer the nodes are one host to the browser, so a cookie one node sets
// comes back to all of them.
type sharedJar struct {
	mu      sync.Mutex
	cookies map[string]*http.Cookie
}

func (j *sharedJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.cookies, c.Name)
			continue
		}
		j.cookies[c.Name] = &http.Cookie{Name: c.Name, Value: c.Value}
	}
}

func (j *sharedJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]*http.Cookie, 0, len(j.cookies))
	for _, c := range j.cookies {
		out = append(out, c)
	}
	return out
}

// browser is one person's browser: a cookie jar shared by every node, and no
// automatic redirects (they are followed on the node the test chooses).
type browser struct {
	c      *cluster
	client *http.Client
}

func (c *cluster) browser() *browser {
	return &browser{c: c, client: &http.Client{
		Jar:           &sharedJar{cookies: map[string]*http.Cookie{}},
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs in on n through the sign-in form, as a person would.
func (b *browser) signIn(n *node) error {
	resp, body, err := do(b.client, http.MethodGet, n.url+"/login", nil, nil)
	if err != nil {
		return err
	}
	m := csrfField.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return &statusError{node: n.name, what: "GET /login", status: resp.StatusCode, body: body}
	}
	form := url.Values{"csrf_token": {m[1]}, "username": {username}, "password": {password}}
	resp, body, err = do(b.client, http.MethodPost, n.url+"/login", form, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return &statusError{node: n.name, what: "POST /login", status: resp.StatusCode, body: body}
	}
	return nil
}

// pkce is a code verifier and its S256 challenge (RFC 7636 §4.1, §4.2).
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(v))
	return pkce{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authorize sends an authorization request for the SPA to n, follows the
// provider's redirects on n, and returns the parameters of the redirect to the
// client. prompt "none" is a silent renewal on the SSO session.
func (b *browser) authorize(n *node, p pkce, scope, prompt string) (url.Values, error) {
	state := rand.Text()
	q := url.Values{
		"response_type": {"code"}, "client_id": {spaID}, "redirect_uri": {redirectURI}, "scope": {scope},
		"state": {state}, "nonce": {rand.Text()}, "code_challenge": {p.challenge}, "code_challenge_method": {"S256"},
	}
	if prompt != "" {
		q.Set("prompt", prompt)
	}
	next := n.url + "/authorize?" + q.Encode()
	for range 10 {
		resp, body, err := do(b.client, http.MethodGet, next, nil, nil)
		if err != nil {
			return nil, err
		}
		loc, err := resp.Location()
		if err != nil {
			return nil, &statusError{node: n.name, what: "authorize", status: resp.StatusCode, body: body}
		}
		switch s := loc.String(); {
		case strings.HasPrefix(s, redirectURI+"?"):
			params := loc.Query()
			switch e := params.Get("error"); e {
			case "":
			case "server_error", "temporarily_unavailable":
				// RFC 6749 §4.1.2.1: what a 500 or 503 would say, had the
				// answer not been a redirect.
				status := map[string]int{"server_error": http.StatusInternalServerError, "temporarily_unavailable": http.StatusServiceUnavailable}[e]
				return params, &statusError{node: n.name, what: "authorize (error in the redirect)", status: status, body: e + ": " + params.Get("error_description")}
			default:
				return params, fmt.Errorf("authorize on node %s: error %s: %s", n.name, e, params.Get("error_description"))
			}
			if params.Get("state") != state {
				return params, fmt.Errorf("authorize on node %s: got state %q, want %q", n.name, params.Get("state"), state)
			}
			if params.Get("iss") != b.c.issuer {
				return params, fmt.Errorf("authorize on node %s: got iss %q, want %q", n.name, params.Get("iss"), b.c.issuer)
			}
			return params, nil
		case strings.HasPrefix(s, b.c.issuer+"/"), strings.HasPrefix(s, n.url+"/"):
			// The provider names itself by the issuer; stay on the node in use,
			// as the load balancer standing at the issuer's address would.
			next = n.url + loc.RequestURI()
		default:
			return nil, fmt.Errorf("authorize on node %s: redirected to %s", n.name, s)
		}
	}
	return nil, fmt.Errorf("authorize on node %s: too many redirects", n.name)
}

// tokens is a token response, or an OAuth error.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
}

// token posts to the token endpoint of n. A non-200 answer is a *statusError
// carrying the OAuth error code in body.
func (c *cluster) token(n *node, form url.Values) (tokens, error) {
	resp, body, err := do(c.http, http.MethodPost, n.url+"/token", form, nil)
	if err != nil {
		return tokens{}, err
	}
	var t tokens
	json.Unmarshal([]byte(body), &t)
	if resp.StatusCode != http.StatusOK {
		return t, &statusError{node: n.name, what: "token " + form.Get("grant_type"), status: resp.StatusCode, body: body}
	}
	return t, nil
}

func (c *cluster) redeem(n *node, code string, p pkce) (tokens, error) {
	return c.token(n, url.Values{"grant_type": {"authorization_code"}, "client_id": {spaID}, "code": {code},
		"redirect_uri": {redirectURI}, "code_verifier": {p.verifier}})
}

func (c *cluster) refresh(n *node, refreshToken string) (tokens, error) {
	return c.token(n, url.Values{"grant_type": {"refresh_token"}, "client_id": {spaID}, "refresh_token": {refreshToken}})
}

// revoke is RFC 7009 by the SPA (a public client names itself).
func (c *cluster) revoke(n *node, token string) error {
	resp, body, err := do(c.http, http.MethodPost, n.url+"/revoke", url.Values{"client_id": {spaID}, "token": {token}}, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{node: n.name, what: "revoke", status: resp.StatusCode, body: body}
	}
	return nil
}

// introspect is RFC 7662 by the resource server; it returns "active".
func (c *cluster) introspect(n *node, token string) (bool, error) {
	h := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(rsID+":"+rsSecret))}}
	resp, body, err := do(c.http, http.MethodPost, n.url+"/introspect", url.Values{"token": {token}}, h)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, &statusError{node: n.name, what: "introspect", status: resp.StatusCode, body: body}
	}
	var r struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return false, fmt.Errorf("introspect on node %s: %v", n.name, err)
	}
	return r.Active, nil
}

// jwks fetches the published keys of n.
func (c *cluster) jwks(n *node) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	resp, body, err := do(c.http, http.MethodGet, n.url+"/jwks", nil, nil)
	if err != nil {
		return set, err
	}
	if resp.StatusCode != http.StatusOK {
		return set, &statusError{node: n.name, what: "jwks", status: resp.StatusCode, body: body}
	}
	return set, json.Unmarshal([]byte(body), &set)
}

// kidOf returns the key id in the header of a compact JWS.
func kidOf(token string) string {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return ""
	}
	return jws.Signatures[0].Header.KeyID
}

// verifyWith checks a JWS against a published key set alone.
func verifyWith(set jose.JSONWebKeySet, token string) error {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		return err
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return fmt.Errorf("kid %q not published", jws.Signatures[0].Header.KeyID)
	}
	_, err = jws.Verify(keys[0])
	return err
}

// do sends one request and reads the whole answer.
func do(client *http.Client, method, u string, form url.Values, h http.Header) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, "", err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", &url.Error{Op: method, URL: u, Err: err}
	}
	return resp, string(b), nil
}

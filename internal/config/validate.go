package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/castellan-auth/castellan/internal/clientkeys"
	"github.com/castellan-auth/castellan/internal/oauth"
)

// MinClientSecretLength is the shortest client secret accepted from a config file.
const MinClientSecretLength = 32

// Argon2id costs beyond what identity verifies (see identity.ParsePHC).
const (
	maxArgonIterations = 64
	maxArgonMemoryKiB  = 4 * 1024 * 1024
)

// maxUsernameLength is the longest username in bytes (as identity.ValidUsername).
const maxUsernameLength = 128

// Validate returns every problem with the configuration, each naming its key.
func (c *Config) Validate() []string {
	v := &validator{}
	v.issuer(c)
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		v.add("listen", "want host:port, got %q", c.Listen)
	}
	if !strings.HasPrefix(c.Storage, "sqlite:") && !strings.HasPrefix(c.Storage, "postgres://") && !strings.HasPrefix(c.Storage, "postgresql://") {
		v.add("storage", "want sqlite:PATH or postgres://…")
	}
	if c.KeyFile == "" {
		v.add("key_file", "required")
	}
	for i, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			v.add(fmt.Sprintf("trusted_proxies[%d]", i), "want an IP address or CIDR, got %q", p)
		}
	}
	if a := c.Debug.PprofListen; a != "" {
		if host, _, err := net.SplitHostPort(a); err != nil {
			v.add("debug.pprof_listen", "want host:port, got %q", a)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			v.add("debug.pprof_listen", "profiles expose the process's internals: want a loopback address, got %q", a)
		}
	}
	v.metricsListen(c)
	v.sessionEvents(c.SessionEvents)
	v.log(c.Log)
	if c.Database.MaxOpenConns < 0 || c.Database.MaxIdleConns < 0 {
		v.add("database", "connection counts must not be negative")
	} else if c.Database.MaxOpenConns > 0 && c.Database.MaxIdleConns > c.Database.MaxOpenConns {
		v.add("database.max_idle_conns", "more than database.max_open_conns (%d)", c.Database.MaxOpenConns)
	}

	v.positive("session.idle_timeout", c.Session.IdleTimeout)
	v.positive("session.absolute_timeout", c.Session.AbsoluteTimeout)
	if c.Session.IdleTimeout > c.Session.AbsoluteTimeout {
		v.add("session.idle_timeout", "longer than session.absolute_timeout")
	}
	v.positive("tokens.access_token_ttl", c.Tokens.AccessTokenTTL)
	v.positive("tokens.id_token_ttl", c.Tokens.IDTokenTTL)
	v.positive("tokens.refresh_token_idle_ttl", c.Tokens.RefreshTokenIdleTTL)
	v.positive("tokens.refresh_token_absolute_ttl", c.Tokens.RefreshTokenAbsoluteTTL)
	if c.Tokens.RefreshTokenIdleTTL > c.Tokens.RefreshTokenAbsoluteTTL {
		v.add("tokens.refresh_token_idle_ttl", "longer than tokens.refresh_token_absolute_ttl")
	}
	if c.Tokens.RefreshTokenGrace.D() > time.Minute {
		v.add("tokens.refresh_token_grace", "at most 1m: it is for simultaneous refreshes, not for replays")
	}
	v.positive("tokens.authorization_code_ttl", c.Tokens.AuthorizationCodeTTL)
	if c.Tokens.AuthorizationCodeTTL.D() > 10*time.Minute {
		// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
		v.add("tokens.authorization_code_ttl", "at most 10m (RFC 6749 §4.1.2)")
	}

	for i, a := range c.Tokens.Audience {
		if u, err := url.Parse(a); a == "" || err != nil || (u.Scheme == "" && !strings.Contains(a, ":")) {
			v.add(fmt.Sprintf("tokens.audience[%d]", i), "want an absolute URI, got %q", a)
		}
	}
	v.positive("client_assertion.max_lifetime", c.ClientAssertion.MaxLifetime)
	if c.ClientAssertion.MaxLifetime.D() > MaxClientAssertionLifetime {
		v.add("client_assertion.max_lifetime", "at most %s: an assertion authenticates one request", MaxClientAssertionLifetime)
	}
	if len(c.Signing.Algorithms) == 0 {
		v.add("signing.algorithms", "list at least one of %s", strings.Join(oauth.SigningAlgorithms, ", "))
	}
	for i, alg := range c.Signing.Algorithms {
		if !oauth.Contains(oauth.SigningAlgorithms, alg) {
			v.add(fmt.Sprintf("signing.algorithms[%d]", i), "want one of %s, got %q", strings.Join(oauth.SigningAlgorithms, ", "), alg)
		} else if oauth.Contains(c.Signing.Algorithms[:i], alg) {
			v.add(fmt.Sprintf("signing.algorithms[%d]", i), "%s listed twice", alg)
		}
	}
	if len(c.DPoP.Algorithms) == 0 {
		v.add("dpop.algorithms", "list at least one of %s", strings.Join(oauth.DPoPAlgorithms, ", "))
	}
	for i, alg := range c.DPoP.Algorithms {
		if !oauth.Contains(oauth.DPoPAlgorithms, alg) {
			// Never "none" or an HMAC: a proof shows possession of a private key.
			v.add(fmt.Sprintf("dpop.algorithms[%d]", i), "want one of %s, got %q", strings.Join(oauth.DPoPAlgorithms, ", "), alg)
		}
	}
	v.positive("signing.rotation_period", c.Signing.RotationPeriod)
	v.positive("signing.refresh_interval", c.Signing.RefreshInterval)

	p := c.Passwords
	if p.Parallelism < 1 || p.Parallelism > 255 {
		v.add("passwords.parallelism", "want 1 to 255, got %d", p.Parallelism)
	}
	// The upper bounds are those identity accepts when it reads a stored hash:
	// a hash made with more could never be verified.
	if p.Iterations < 1 || p.Iterations > maxArgonIterations {
		v.add("passwords.iterations", "want 1 to %d, got %d", maxArgonIterations, p.Iterations)
	}
	if p.MemoryKiB < 1024 || p.MemoryKiB > maxArgonMemoryKiB {
		v.add("passwords.memory_kib", "want 1024 to %d, got %d", maxArgonMemoryKiB, p.MemoryKiB)
	}
	if p.MemoryLimitMiB*1024 < p.MemoryKiB {
		v.add("passwords.memory_limit_mib", "too small for one hash of passwords.memory_kib")
	}
	v.positive("passwords.queue_timeout", p.QueueTimeout)

	if c.Throttle.AccountFailures < 1 {
		v.add("throttle.account_failures", "want at least 1")
	}
	if c.Throttle.AddressFailures < 1 {
		v.add("throttle.address_failures", "want at least 1")
	}
	v.positive("throttle.base_delay", c.Throttle.BaseDelay)
	v.positive("throttle.max_delay", c.Throttle.MaxDelay)
	v.positive("throttle.reset_after", c.Throttle.ResetAfter)
	if c.Throttle.BaseDelay > c.Throttle.MaxDelay {
		v.add("throttle.base_delay", "longer than throttle.max_delay")
	}

	v.authorize(c.Authorize)

	seen := map[string]int{}
	for i := range c.Clients {
		v.client(c, i, seen)
	}
	users := map[string]int{}
	for i := range c.Users {
		v.user(c.Users[i], i, users)
	}
	return v.problems
}

type validator struct{ problems []string }

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, key+": "+fmt.Sprintf(format, args...))
}

// log checks the log section, the same in every config.
func (v *validator) log(l Log) {
	if !oneOf(l.Format, "", "text", "json") {
		v.add("log.format", "want text or json, got %q", l.Format)
	}
	if !oneOf(l.Level, "debug", "info", "warn", "error") {
		v.add("log.level", "want debug, info, warn or error, got %q", l.Level)
	}
}

// Bounds of the authorize section: a sign-in takes minutes, not hours.
const (
	minPendingTTL = time.Minute
	maxPendingTTL = time.Hour
)

func (v *validator) authorize(a Authorize) {
	if a.PendingTTL.D() < minPendingTTL || a.PendingTTL.D() > maxPendingTTL {
		v.add("authorize.pending_ttl", "want %s to %s, got %s", minPendingTTL, maxPendingTTL, a.PendingTTL.D())
	}
	if a.MaxPending < 1 {
		v.add("authorize.max_pending", "want at least 1")
	}
	switch {
	case a.MaxPendingPerAddress < 1:
		v.add("authorize.max_pending_per_address", "want at least 1")
	case a.MaxPendingPerAddress > a.MaxPending:
		v.add("authorize.max_pending_per_address", "more than authorize.max_pending (%d)", a.MaxPending)
	}
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.add(key, "want a positive duration")
	}
}

func oneOf(s string, options ...string) bool { return oauth.Contains(options, s) }

func (v *validator) issuer(c *Config) {
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		v.add("issuer", "required")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.add("issuer", "want an absolute http(s) URL, got %q", c.Issuer)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil || strings.ContainsAny(c.Issuer, "?#"):
		// OIDC Discovery §3: the issuer has no query or fragment.
		v.add("issuer", "must not have a query, fragment or user info")
	case strings.HasSuffix(u.Path, "/"):
		v.add("issuer", "must not end with /")
	case u.Scheme == "http" && !oauth.IsLoopbackHost(u.Hostname()) && !c.InsecureHTTP:
		v.add("issuer", "http on a non-loopback host needs insecure_http: true (use https)")
	}
}

// redirectURI checks a URI that Castellan sends people to.
func (v *validator) redirectURI(c *Config, key, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs():
		v.add(key, "want an absolute URI, got %q", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		v.add(key, "must not have a fragment (RFC 6749 §3.1.2)")
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
		v.add(key, "missing host")
	case u.Scheme == "http" && !oauth.IsLoopbackHost(u.Hostname()) && !c.InsecureHTTP:
		v.add(key, "http on a non-loopback host needs insecure_http: true (use https)")
	case oneOf(strings.ToLower(u.Scheme), "javascript", "data", "vbscript", "file"):
		v.add(key, "scheme %q is not allowed", u.Scheme)
	}
}

func (v *validator) client(c *Config, i int, seen map[string]int) {
	cl := &c.Clients[i]
	at := func(k string) string { return fmt.Sprintf("clients[%d].%s", i, k) }
	if cl.ClientID == "" {
		v.add(at("client_id"), "required")
	} else if len(cl.ClientID) > oauth.MaxClientIDLength {
		// Longer ones are refused at the authorization endpoint.
		v.add(at("client_id"), "longer than %d bytes", oauth.MaxClientIDLength)
	} else if j, dup := seen[cl.ClientID]; dup {
		v.add(at("client_id"), "duplicate client id %q (also clients[%d])", cl.ClientID, j)
	} else {
		seen[cl.ClientID] = i
	}
	method := cl.TokenEndpointAuthMethod
	if method == "" {
		method = oauth.AuthClientSecretBasic
		if cl.ClientSecret == "" && cl.ClientSecretHash == "" {
			method = oauth.AuthNone
		}
	}
	switch method {
	case oauth.AuthNone:
		switch {
		case cl.ClientSecret != "":
			v.add(at("client_secret"), "a public client (token_endpoint_auth_method: none) has no secret")
		case cl.ClientSecretHash != "":
			v.add(at("client_secret_hash"), "a public client (token_endpoint_auth_method: none) has no secret")
		}
	case oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost:
		switch {
		case cl.ClientSecret != "" && cl.ClientSecretHash != "":
			v.add(at("client_secret"), "give client_secret or client_secret_hash, not both")
		case cl.ClientSecret == "" && cl.ClientSecretHash == "":
			v.add(at("client_secret"), "required for %s (at least %d characters)", method, MinClientSecretLength)
		case cl.ClientSecret != "" && len(cl.ClientSecret) < MinClientSecretLength:
			v.add(at("client_secret"), "too short: at least %d characters", MinClientSecretLength)
		case cl.ClientSecretHash != "":
			if _, err := ParseSecretHash(cl.ClientSecretHash); err != nil {
				v.add(at("client_secret_hash"), "%v", err)
			}
		}
	case oauth.AuthPrivateKeyJWT:
		v.privateKeyJWT(c, cl, at)
	default:
		v.add(at("token_endpoint_auth_method"), "want none, client_secret_basic, client_secret_post or private_key_jwt, got %q", cl.TokenEndpointAuthMethod)
	}
	if method != oauth.AuthPrivateKeyJWT {
		for _, k := range []struct{ key, val string }{{"jwks", string(cl.JWKS)}, {"jwks_uri", cl.JWKSURI}, {"token_endpoint_auth_signing_alg", cl.TokenEndpointAuthSigningAlg}} {
			if k.val != "" {
				v.add(at(k.key), "only for token_endpoint_auth_method: private_key_jwt")
			}
		}
	}
	for j, u := range cl.RedirectURIs {
		v.redirectURI(c, fmt.Sprintf("clients[%d].redirect_uris[%d]", i, j), u)
		if len(u) > oauth.MaxRedirectURILength {
			v.add(fmt.Sprintf("clients[%d].redirect_uris[%d]", i, j), "longer than %d bytes (the authorization endpoint's limit)", oauth.MaxRedirectURILength)
		}
	}
	for j, u := range cl.PostLogoutRedirectURIs {
		v.redirectURI(c, fmt.Sprintf("clients[%d].post_logout_redirect_uris[%d]", i, j), u)
	}
	for j, o := range cl.AllowedOrigins {
		if !isOrigin(o) {
			v.add(fmt.Sprintf("clients[%d].allowed_origins[%d]", i, j), "want an origin like https://app.example (scheme, host, optional port; no path), got %q", o)
		}
	}
	for _, k := range []struct{ key, val string }{{"backchannel_logout_uri", cl.BackchannelLogoutURI}, {"frontchannel_logout_uri", cl.FrontchannelLogoutURI}} {
		if k.val == "" {
			continue
		}
		if u, err := url.Parse(k.val); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
			v.add(at(k.key), "want an absolute http(s) URL without fragment, got %q", k.val)
		} else if u.Scheme == "http" && !oauth.IsLoopbackHost(u.Hostname()) && !c.InsecureHTTP {
			v.add(at(k.key), "http on a non-loopback host needs insecure_http: true (use https)")
		}
	}
	grants := cl.GrantTypes
	if len(grants) == 0 {
		grants = []string{oauth.GrantAuthorizationCode}
	}
	for j, g := range grants {
		if !oauth.Contains(oauth.GrantTypes, g) {
			v.add(fmt.Sprintf("clients[%d].grant_types[%d]", i, j), "want one of %s, got %q", strings.Join(oauth.GrantTypes, ", "), g)
		}
	}
	if oauth.Contains(grants, oauth.GrantClientCredentials) && method == oauth.AuthNone {
		v.add(at("grant_types"), "client_credentials needs a confidential client")
	}
	redirecting := oauth.Contains(grants, oauth.GrantAuthorizationCode) || oauth.Contains(grants, oauth.GrantImplicit)
	if redirecting && len(cl.RedirectURIs) == 0 {
		v.add(at("redirect_uris"), "required for %s", strings.Join(grants, ", "))
	}
	for j, rt := range cl.ResponseTypes {
		key := fmt.Sprintf("clients[%d].response_types[%d]", i, j)
		switch {
		case !oauth.Contains(oauth.ResponseTypes, rt):
			v.add(key, "want one of code, token, id_token token, id_token; got %q", rt)
		case rt == oauth.ResponseCode && !oauth.Contains(grants, oauth.GrantAuthorizationCode):
			v.add(key, "code needs grant_types to list authorization_code")
		case rt != oauth.ResponseCode && !oauth.Contains(grants, oauth.GrantImplicit):
			v.add(key, "%q needs grant_types to list implicit", rt)
		}
	}
	if _, ok := oauth.ParseScope(cl.Scope); !ok {
		v.add(at("scope"), "holds a character not allowed in a scope (RFC 6749 §3.3)")
	}
	if alg := cl.IDTokenSignedResponseAlg; alg != "" && !oauth.Contains(c.Signing.Algorithms, alg) {
		v.add(at("id_token_signed_response_alg"), "%q is not in signing.algorithms", alg)
	}
	if cl.StrictTokenEndpointAuthMethod && method != oauth.AuthClientSecretBasic && method != oauth.AuthClientSecretPost {
		v.add(at("strict_token_endpoint_auth_method"), "only for client_secret_basic and client_secret_post (%s accepts nothing else anyway)", method)
	}
	for j, a := range cl.Audience {
		if err := checkAudience(a); err != nil {
			v.add(fmt.Sprintf("clients[%d].audience[%d]", i, j), "%v", err)
		} else if oauth.Contains(cl.Audience[:j], a) {
			v.add(fmt.Sprintf("clients[%d].audience[%d]", i, j), "%q listed twice", a)
		}
	}
	v.profile(c, i, method, grants)
}

// profile refuses a client that does not conform to its profile. The
// switches a profile turns on (Client.Requires) need no checking; everything
// else it asks for must be written out, so that reading the client's entry
// tells what it does.
func (v *validator) profile(c *Config, i int, method string, grants []string) {
	cl := &c.Clients[i]
	at := func(k string) string { return fmt.Sprintf("clients[%d].%s", i, k) }
	switch cl.Profile {
	case "":
		return
	case ProfileFAPI2:
	default:
		v.add(at("profile"), "want %s (or nothing), got %q", ProfileFAPI2, cl.Profile)
		return
	}
	// FAPI 2.0 Security Profile, authorization server requirements: confidential
	// clients authenticated by private_key_jwt (or mutual TLS, which Castellan
	// has not), the code flow only, PS256/ES256/EdDSA signatures, codes living
	// at most 60 seconds, no refresh-token rotation for these clients.
	algs := strings.Join(FAPI2Algorithms, ", ")
	if method != oauth.AuthPrivateKeyJWT {
		v.add(at("token_endpoint_auth_method"), "profile fapi2 needs private_key_jwt (Castellan has no mutual TLS)")
	} else if !oauth.Contains(FAPI2Algorithms, cl.TokenEndpointAuthSigningAlg) {
		v.add(at("token_endpoint_auth_signing_alg"), "profile fapi2 needs one of %s, got %q", algs, cl.TokenEndpointAuthSigningAlg)
	}
	if !oauth.Contains(FAPI2Algorithms, cl.IDTokenSignedResponseAlg) {
		v.add(at("id_token_signed_response_alg"), "profile fapi2 needs one of %s (not the OpenID Connect default RS256), got %q", algs, cl.IDTokenSignedResponseAlg)
	}
	for j, g := range grants {
		if g != oauth.GrantAuthorizationCode && g != oauth.GrantRefreshToken && g != oauth.GrantClientCredentials {
			v.add(fmt.Sprintf("clients[%d].grant_types[%d]", i, j), "profile fapi2 allows authorization_code, refresh_token and client_credentials, got %q", g)
		}
	}
	for j, rt := range cl.ResponseTypes {
		if rt != oauth.ResponseCode {
			v.add(fmt.Sprintf("clients[%d].response_types[%d]", i, j), "profile fapi2 allows only code, got %q", rt)
		}
	}
	for j, u := range cl.RedirectURIs {
		if !strings.HasPrefix(u, "https://") {
			v.add(fmt.Sprintf("clients[%d].redirect_uris[%d]", i, j), "profile fapi2 needs https, got %q", u)
		}
	}
	if cl.RotateRefreshTokens {
		v.add(at("rotate_refresh_tokens"), "profile fapi2: a confidential client's refresh tokens do not rotate")
	}
	if ttl := c.Tokens.AuthorizationCodeTTL.D(); ttl > 60*time.Second {
		v.add(at("profile"), "fapi2 needs tokens.authorization_code_ttl of at most 60s, got %s", ttl)
	}
}

// privateKeyJWT checks a client that authenticates with signed assertions
// (RFC 7523): it has keys, one way, public ones, and no secret.
func (v *validator) privateKeyJWT(c *Config, cl *Client, at func(string) string) {
	switch {
	case cl.ClientSecret != "":
		v.add(at("client_secret"), "a private_key_jwt client has no secret")
	case cl.ClientSecretHash != "":
		v.add(at("client_secret_hash"), "a private_key_jwt client has no secret")
	}
	switch {
	case cl.JWKS != "" && cl.JWKSURI != "":
		// RFC 7591 §2: "MUST NOT both be present".
		v.add(at("jwks"), "give jwks or jwks_uri, not both")
	case cl.JWKS == "" && cl.JWKSURI == "":
		v.add(at("jwks"), "private_key_jwt needs jwks or jwks_uri")
	case cl.JWKS != "":
		if _, err := clientkeys.Parse([]byte(cl.JWKS)); err != nil {
			v.add(at("jwks"), "%v", err)
		}
	default:
		u, err := url.Parse(cl.JWKSURI)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "":
			v.add(at("jwks_uri"), "want an absolute http(s) URL without fragment, got %q", cl.JWKSURI)
		case u.Scheme == "http" && !oauth.IsLoopbackHost(u.Hostname()) && !c.InsecureHTTP:
			v.add(at("jwks_uri"), "http on a non-loopback host needs insecure_http: true (use https)")
		}
	}
	if alg := cl.TokenEndpointAuthSigningAlg; alg != "" && !oauth.Contains(oauth.ClientAssertionAlgorithms, alg) {
		v.add(at("token_endpoint_auth_signing_alg"), "want one of %s, got %q", strings.Join(oauth.ClientAssertionAlgorithms, ", "), alg)
	}
}

// MaxAudienceLength bounds one audience value: it is copied into every
// access token of the client.
const MaxAudienceLength = 256

// checkAudience accepts an audience of access tokens: an absolute URI (the
// API's resource indicator, RFC 8707 §2) or a plain name such as
// "orders-api" (RFC 7519 §4.1.3: a StringOrURI). Never the empty string,
// white space or control characters.
func checkAudience(a string) error {
	switch {
	case a == "":
		return fmt.Errorf("must not be empty")
	case len(a) > MaxAudienceLength:
		return fmt.Errorf("longer than %d bytes", MaxAudienceLength)
	case strings.ContainsFunc(a, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return fmt.Errorf("must not hold white space or control characters, got %q", a)
	case strings.Contains(a, ":"):
		// RFC 7519 §2: a StringOrURI with a colon must be a URI.
		if u, err := url.Parse(a); err != nil || u.Scheme == "" || u.Fragment != "" || strings.Contains(a, "#") {
			return fmt.Errorf("want an absolute URI without fragment or a plain name, got %q", a)
		}
	}
	return nil
}

func isOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && !strings.HasSuffix(o, "/")
}

func (v *validator) user(u User, i int, seen map[string]int) {
	at := func(k string) string { return fmt.Sprintf("users[%d].%s", i, k) }
	key := strings.ToLower(u.Username)
	switch {
	case strings.TrimSpace(u.Username) == "":
		v.add(at("username"), "required")
	case u.Username != strings.TrimSpace(u.Username):
		v.add(at("username"), "must not start or end with white space")
	case len(u.Username) > maxUsernameLength || strings.ContainsFunc(u.Username, func(r rune) bool { return !unicode.IsPrint(r) }):
		// The rule of identity.ValidUsername, which provisioning would otherwise
		// refuse only once the server starts.
		v.add(at("username"), "want 1 to %d printable characters", maxUsernameLength)
	default:
		if j, dup := seen[key]; dup {
			v.add(at("username"), "duplicate username %q (also users[%d]; usernames ignore case)", u.Username, j)
		} else {
			seen[key] = i
		}
	}
	switch {
	case u.Password != "" && u.PasswordHash != "":
		v.add(at("password"), "give password or password_hash, not both")
	case u.Password == "" && u.PasswordHash == "":
		v.add(at("password"), "give password or password_hash (argon2id PHC string)")
	case u.PasswordHash != "" && !strings.HasPrefix(u.PasswordHash, "$argon2id$"):
		v.add(at("password_hash"), "want an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")
	}
}

// ParseSecretHash reads a client_secret_hash: "sha256:" and 64 hex digits,
// the SHA-256 of the secret.
func ParseSecretHash(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return nil, fmt.Errorf("want sha256:<64 hex digits>")
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("want sha256:<64 hex digits>")
	}
	return b, nil
}

package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/oauth"
)

// BFF is the configuration of the Backend-for-Frontend gateway
// (castellan bff, DESIGN.md). It loads like Config: YAML, then CASTELLAN_*
// variables, then Validate.
type BFF struct {
	Listen string `yaml:"listen"`
	// PublicURL is the SPA's origin as the browser sees it; the callback is
	// {public_url}/bff/callback and the session cookie gets the __Host- prefix
	// and Secure when it is https.
	PublicURL string `yaml:"public_url"`
	// Issuer is the provider; its endpoints are discovered, never configured.
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// TokenEndpointAuthMethod is how the gateway authenticates at the
	// provider: client_secret_basic (with client_secret) or private_key_jwt
	// (RFC 7523, with private_key_file; the public key is served at
	// {public_url}/bff/jwks for the client's jwks_uri).
	TokenEndpointAuthMethod string `yaml:"token_endpoint_auth_method"`
	// PrivateKeyFile is the PEM private key (EC P-256, RSA ≥ 2048 or
	// Ed25519) that signs client assertions; a P-256 key is created (0600)
	// when the file is missing.
	PrivateKeyFile string `yaml:"private_key_file"`
	// Scope is asked for at sign-in; "openid" is required. The gateway
	// refreshes without "offline_access": its refresh token is then bound to
	// the provider's SSO session and dies at sign-out, which is what a
	// gateway holding a browser's session wants. With "offline_access" (and
	// a client allowed it) the refresh token outlives the sign-out.
	Scope   string `yaml:"scope"`
	Storage string `yaml:"storage"`
	// KeyFile holds the gateway's master key (created 0600 when missing); it
	// seals tokens at rest and the login-state cookie.
	KeyFile string `yaml:"key_file"`
	// StaticDir serves the SPA's files; SPAUpstream proxies to a dev server
	// instead. At most one of them.
	StaticDir   string     `yaml:"static_dir"`
	SPAUpstream string     `yaml:"spa_upstream"`
	Routes      []BFFRoute `yaml:"routes"`
	Session     Session    `yaml:"session"`
	// RefreshBefore is how long before the access token expires the gateway
	// refreshes it.
	RefreshBefore Duration `yaml:"refresh_before"`
	// InsecureHTTP allows http for a non-loopback public_url, issuer or route
	// upstream. Never in production.
	InsecureHTTP bool     `yaml:"insecure_http"`
	Log          Log      `yaml:"log"`
	Database     Database `yaml:"database"`

	// FrameAncestors are who may frame the SPA (CSP frame-ancestors, on the
	// files of static_dir and the answers of spa_upstream): "'none'" (the
	// default: nobody, against clickjacking), "'self'", or origins.
	FrameAncestors []string `yaml:"frame_ancestors"`
}

// BFFRoute sends requests under Path to Upstream with the session's access
// token: path /api/ and upstream http://127.0.0.1:7001/ forward
// /api/orders?x=1 to http://127.0.0.1:7001/orders?x=1.
type BFFRoute struct {
	Path     string `yaml:"path"`
	Upstream string `yaml:"upstream"`
}

// DefaultBFF returns the gateway configuration used for every key the file
// leaves out.
func DefaultBFF() BFF {
	return BFF{
		Listen:                  "127.0.0.1:9200",
		PublicURL:               "http://127.0.0.1:9200",
		Issuer:                  "http://127.0.0.1:9000",
		Scope:                   "openid profile email",
		TokenEndpointAuthMethod: "client_secret_basic",
		Storage:                 "sqlite:bff.db",
		KeyFile:                 "bff.key",
		FrameAncestors:          []string{FrameNone},
		Session: Session{
			IdleTimeout:     Duration(30 * time.Minute),
			AbsoluteTimeout: Duration(12 * time.Hour),
		},
		RefreshBefore: Duration(time.Minute),
		Log:           Log{Level: "info"},
		Database: Database{
			ConnMaxLifetime: Duration(30 * time.Minute),
			ConnMaxIdleTime: Duration(5 * time.Minute),
			Migrate:         true,
		},
	}
}

// LoadBFF reads the gateway's YAML file at path (if not empty) over
// DefaultBFF(), applies CASTELLAN_* variables from environ, and validates.
func LoadBFF(path string, environ []string) (*BFF, error) {
	cfg := DefaultBFF()
	if err := load(path, environ, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate returns every problem with the gateway configuration, each naming
// its key.
func (c *BFF) Validate() []string {
	v := &validator{}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		v.add("listen", "want host:port, got %q", c.Listen)
	}
	v.baseURL("public_url", c.PublicURL, c.InsecureHTTP)
	v.baseURL("issuer", c.Issuer, c.InsecureHTTP)
	if c.ClientID == "" {
		v.add("client_id", "required")
	}
	switch c.TokenEndpointAuthMethod {
	case oauth.AuthClientSecretBasic:
		switch {
		case c.ClientSecret == "":
			v.add("client_secret", "required (at least %d characters)", MinClientSecretLength)
		case len(c.ClientSecret) < MinClientSecretLength:
			v.add("client_secret", "too short: at least %d characters", MinClientSecretLength)
		}
		if c.PrivateKeyFile != "" {
			v.add("private_key_file", "only with token_endpoint_auth_method private_key_jwt")
		}
	case oauth.AuthPrivateKeyJWT:
		if c.PrivateKeyFile == "" {
			v.add("private_key_file", "required with private_key_jwt")
		}
		if c.ClientSecret != "" {
			v.add("client_secret", "not used with private_key_jwt: remove it")
		}
	default:
		v.add("token_endpoint_auth_method", "want client_secret_basic or private_key_jwt, got %q", c.TokenEndpointAuthMethod)
	}
	if scopes, ok := oauth.ParseScope(c.Scope); !ok {
		v.add("scope", "holds a character not allowed in a scope (RFC 6749 §3.3)")
	} else if !oauth.Contains(scopes, "openid") {
		v.add("scope", "must include openid: the gateway signs people in with OpenID Connect")
	}
	if !strings.HasPrefix(c.Storage, "sqlite:") && !strings.HasPrefix(c.Storage, "postgres://") && !strings.HasPrefix(c.Storage, "postgresql://") {
		v.add("storage", "want sqlite:PATH or postgres://…")
	}
	if c.KeyFile == "" {
		v.add("key_file", "required")
	}
	switch {
	case c.StaticDir != "" && c.SPAUpstream != "":
		v.add("static_dir", "give static_dir or spa_upstream, not both")
	case c.StaticDir != "":
		if fi, err := os.Stat(c.StaticDir); err != nil || !fi.IsDir() {
			v.add("static_dir", "not a directory: %q", c.StaticDir)
		}
	case c.SPAUpstream != "":
		v.upstream("spa_upstream", c.SPAUpstream, c.InsecureHTTP)
	}
	v.frameAncestors(c.FrameAncestors, c.InsecureHTTP)
	seen := map[string]int{}
	for i, r := range c.Routes {
		at := func(k string) string { return fmt.Sprintf("routes[%d].%s", i, k) }
		switch {
		case !strings.HasPrefix(r.Path, "/") || !strings.HasSuffix(r.Path, "/") || len(r.Path) < 3:
			v.add(at("path"), "want a path prefix that starts and ends with /, like /api/, got %q", r.Path)
		case r.Path != pathClean(r.Path) || strings.ContainsAny(r.Path, "?#\\%") || strings.HasPrefix(r.Path, "//"):
			v.add(at("path"), "want a plain path prefix, got %q", r.Path)
		case strings.HasPrefix(r.Path, "/bff/") || r.Path == "/healthz/":
			v.add(at("path"), "%q is the gateway's own", r.Path)
		default:
			if j, dup := seen[r.Path]; dup {
				v.add(at("path"), "duplicate path %q (also routes[%d])", r.Path, j)
			}
			seen[r.Path] = i
		}
		v.upstream(at("upstream"), r.Upstream, c.InsecureHTTP)
	}
	v.positive("session.idle_timeout", c.Session.IdleTimeout)
	v.positive("session.absolute_timeout", c.Session.AbsoluteTimeout)
	if c.Session.IdleTimeout > c.Session.AbsoluteTimeout {
		v.add("session.idle_timeout", "longer than session.absolute_timeout")
	}
	if c.RefreshBefore.D() > 10*time.Minute {
		v.add("refresh_before", "at most 10m")
	}
	v.log(c.Log)
	if c.Database.MaxOpenConns < 0 || c.Database.MaxIdleConns < 0 {
		v.add("database", "connection counts must not be negative")
	}
	return v.problems
}

// baseURL checks an origin-like base URL: absolute http(s), no query,
// fragment or user info, no trailing slash.
func (v *validator) baseURL(key, raw string, insecure bool) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		v.add(key, "required")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.add(key, "want an absolute http(s) URL, got %q", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil || strings.ContainsAny(raw, "?#"):
		v.add(key, "must not have a query, fragment or user info")
	case strings.HasSuffix(u.Path, "/"):
		v.add(key, "must not end with /")
	case u.Scheme == "http" && !oauth.IsLoopbackHost(u.Hostname()) && !insecure:
		v.add(key, "http on a non-loopback host needs insecure_http: true (use https)")
	}
}

func (v *validator) upstream(key, raw string, insecure bool) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		v.add(key, "required")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.add(key, "want an absolute http(s) URL, got %q", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		v.add(key, "must not have a query, fragment or user info")
	case u.Scheme == "http" && !oauth.IsLoopbackHost(u.Hostname()) && !insecure:
		// The gateway sends access tokens there.
		v.add(key, "http on a non-loopback host needs insecure_http: true (use https: access tokens travel there)")
	}
}

// The CSP keywords frame_ancestors takes besides origins.
const (
	FrameNone = "'none'"
	FrameSelf = "'self'"
)

// frameAncestors checks frame_ancestors: 'none' alone, or 'self' and
// origins. Each value goes into a response header as it is, so nothing but a
// keyword or a plain origin may pass (no spaces, ";", wildcards or schemes).
func (v *validator) frameAncestors(list []string, insecure bool) {
	if len(list) == 0 {
		v.add("frame_ancestors", "list \"'none'\", \"'self'\" or origins")
		return
	}
	if len(list) > 1 && slices.Contains(list, FrameNone) {
		v.add("frame_ancestors", "'none' must stand alone")
	}
	for i, a := range list {
		key := fmt.Sprintf("frame_ancestors[%d]", i)
		if a == FrameNone || a == FrameSelf {
			continue
		}
		if a == "none" || a == "self" {
			v.add(key, "write the keyword with its quotes: \"'%s'\"", a)
			continue
		}
		u, err := url.Parse(a)
		switch {
		case err != nil || strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == ';' || r == ',' || r == '*' || r == '\'' }) ||
			(u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			v.add(key, "want \"'none'\", \"'self'\" or an origin like https://portal.example, got %q", a)
		case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			v.add(key, "want an origin (scheme, host and port only), got %q", a)
		case u.Scheme == "http" && !oauth.IsLoopbackHost(u.Hostname()) && !insecure:
			v.add(key, "http on a non-loopback host needs insecure_http: true (use https)")
		}
	}
}

// pathClean is path.Clean that keeps a trailing slash.
func pathClean(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && !strings.HasSuffix(c, "/") {
		c += "/"
	}
	return c
}

// Package config is Castellan's typed configuration: the YAML file of
// DESIGN.md, overridden key by key from CASTELLAN_* environment variables, with
// defaults, and validated before anything starts. Every problem is reported with
// the key (and the file or variable) it came from, so a refusal to start says
// exactly what to fix.
package config

import (
	"time"

	"github.com/castellan-auth/castellan/internal/oauth"
)

// Config is the provider's configuration (castellan serve).
type Config struct {
	// Issuer is the public base URL; it is the "iss" of every token.
	Issuer string `yaml:"issuer"`
	Listen string `yaml:"listen"`
	// Storage is sqlite:PATH or postgres://….
	Storage string `yaml:"storage"`
	// KeyFile holds the master key; created 0600 when missing.
	KeyFile string `yaml:"key_file"`
	// InsecureHTTP allows an http issuer on a non-loopback host (and http
	// redirect URIs there). Never in production.
	InsecureHTTP bool `yaml:"insecure_http"`
	// TrustedProxies are the addresses (CIDR or single IP) whose
	// X-Forwarded-For/Forwarded headers are believed.
	TrustedProxies []string `yaml:"trusted_proxies"`

	Log       Log       `yaml:"log"`
	Database  Database  `yaml:"database"`
	Session   Session   `yaml:"session"`
	Tokens    Tokens    `yaml:"tokens"`
	Signing   Signing   `yaml:"signing"`
	Passwords Passwords `yaml:"passwords"`
	Throttle  Throttle  `yaml:"throttle"`
	Authorize Authorize `yaml:"authorize"`
	PAR       PAR       `yaml:"par"`
	DPoP      DPoP      `yaml:"dpop"`
	Debug     Debug     `yaml:"debug"`
	// ClientAssertion bounds private_key_jwt client assertions (RFC 7523).
	ClientAssertion ClientAssertion `yaml:"client_assertion"`

	// SessionEvents bounds the session-ended streams.
	SessionEvents SessionEvents `yaml:"session_events"`
	// MetricsListen, when set, serves GET /metrics on this address, a
	// listener of its own, and not on the public one; unset, /metrics is on
	// the public listener.
	MetricsListen string `yaml:"metrics_listen"`

	Clients []Client `yaml:"clients"`
	Users   []User   `yaml:"users"`
}

// Log configures structured logging.
type Log struct {
	// Format is text (default on a terminal) or json.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// Database tunes the storage connection pool and migrations.
type Database struct {
	MaxOpenConns    int      `yaml:"max_open_conns"`
	MaxIdleConns    int      `yaml:"max_idle_conns"`
	ConnMaxLifetime Duration `yaml:"conn_max_lifetime"`
	// ConnMaxIdleTime closes PostgreSQL connections left idle this long, so a
	// node hands connections back to the server after a burst (0: never).
	ConnMaxIdleTime Duration `yaml:"conn_max_idle_time"`
	// Migrate applies pending schema migrations at start (default true).
	Migrate bool `yaml:"migrate"`
}

// Session bounds the SSO session.
type Session struct {
	IdleTimeout     Duration `yaml:"idle_timeout"`
	AbsoluteTimeout Duration `yaml:"absolute_timeout"`
}

// DefaultRefreshTokenGrace is the default tokens.refresh_token_grace. A
// rotation whose response is lost (the node crashed after the commit, a
// connection dropped, a proxy timed out) leaves the client holding the
// rotated parent; its retry, seconds later, would count as reuse and revoke
// the whole family, signing the person out (11 of 96 crash-interrupted
// refreshes did, with a grace of 0). Within the grace the retry gets the very
// same child, which the client would have had anyway; a thief holding the
// parent gains nothing he could not get from the child it names. A few
// seconds cover a retry and two tabs or two BFF nodes refreshing at once;
// the maximum stays 1m, so reuse detection still ends a family soon after.
const DefaultRefreshTokenGrace = 10 * time.Second

// Tokens sets token lifetimes.
type Tokens struct {
	AccessTokenTTL          Duration `yaml:"access_token_ttl"`
	IDTokenTTL              Duration `yaml:"id_token_ttl"`
	RefreshTokenIdleTTL     Duration `yaml:"refresh_token_idle_ttl"`
	RefreshTokenAbsoluteTTL Duration `yaml:"refresh_token_absolute_ttl"`
	// RefreshTokenGrace lets a rotated refresh token presented again within this
	// time get the very same child back (two tabs refreshing at once, a retry
	// after a lost response). 0 = off; DefaultRefreshTokenGrace by default.
	RefreshTokenGrace    Duration `yaml:"refresh_token_grace"`
	AuthorizationCodeTTL Duration `yaml:"authorization_code_ttl"`
	// Audience is the "aud" of access tokens: the resource indicators of the
	// APIs that accept them (RFC 9068 §3). Default: the issuer.
	Audience []string `yaml:"audience"`
}

// Signing configures JOSE signing keys.
type Signing struct {
	// Algorithms lists the signing algorithms keys are kept for; the first signs
	// access tokens. ID tokens use the client's id_token_signed_response_alg.
	Algorithms []string `yaml:"algorithms"`
	// RotationPeriod is how long a key signs before the next one takes over.
	RotationPeriod Duration `yaml:"rotation_period"`
	// RefreshInterval is how often a node re-reads keys from storage, so that
	// keys rotated by another node are published and used.
	RefreshInterval Duration `yaml:"refresh_interval"`
}

// Passwords configures argon2id and the bounded pool that runs it.
type Passwords struct {
	// MemoryKiB, Iterations and Parallelism are the argon2id parameters for new
	// hashes (RFC 9106 second recommendation: 19 MiB, t=2, p=1 by default).
	MemoryKiB   int `yaml:"memory_kib"`
	Iterations  int `yaml:"iterations"`
	Parallelism int `yaml:"parallelism"`
	// MemoryLimitMiB caps the memory all concurrent hashes may take together;
	// it sets how many run at once.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
	// QueueTimeout is how long a sign-in waits for a hashing slot before the
	// server answers 503 with Retry-After.
	QueueTimeout Duration `yaml:"queue_timeout"`
}

// Throttle slows down password guessing.
type Throttle struct {
	// AccountFailures and AddressFailures are the failures allowed before a delay.
	AccountFailures int `yaml:"account_failures"`
	AddressFailures int `yaml:"address_failures"`
	// BaseDelay doubles with each further failure up to MaxDelay.
	BaseDelay Duration `yaml:"base_delay"`
	MaxDelay  Duration `yaml:"max_delay"`
	// ResetAfter forgets failures older than this.
	ResetAfter Duration `yaml:"reset_after"`
}

// Authorize bounds the authorization requests kept while people sign in
// (pending requests, and pushed requests, in one table): anyone can make
// Castellan store one.
type Authorize struct {
	// PendingTTL is how long a person has to sign in and consent.
	PendingTTL Duration `yaml:"pending_ttl"`
	// MaxPending is the most requests kept in all; past it new sign-ins get
	// 503 with Retry-After.
	MaxPending int `yaml:"max_pending"`
	// MaxPendingPerAddress is the most one client address may hold; past it
	// that address gets 429 with Retry-After.
	MaxPendingPerAddress int `yaml:"max_pending_per_address"`
}

// Debug holds diagnostics that are off by default.
type Debug struct {
	// PprofListen, when set, serves net/http/pprof on this loopback address
	// (its own listener, never the public one): profiles expose internals and
	// cost CPU while taken.
	PprofListen string `yaml:"pprof_listen"`
}

// PAR configures pushed authorization requests (RFC 9126).
type PAR struct {
	// Required makes every client push its authorization requests first
	// (RFC 9126 §5 require_pushed_authorization_requests, for all clients).
	Required bool `yaml:"required"`
}

// DPoP configures sender-constrained tokens (RFC 9449).
type DPoP struct {
	// Algorithms are the JWS algorithms accepted in DPoP proofs (asymmetric
	// only), published as dpop_signing_alg_values_supported.
	Algorithms []string `yaml:"algorithms"`
	// RequireNonce makes every proof carry a server nonce (RFC 9449 §8, §9):
	// a proof without a current one is answered with use_dpop_nonce and a
	// DPoP-Nonce header. It bounds how long a proof made in advance (by
	// malware on the client, say) stays usable.
	RequireNonce bool `yaml:"require_nonce"`
}

// ClientAssertion configures private_key_jwt client authentication.
type ClientAssertion struct {
	// MaxLifetime bounds exp - iat of an assertion (exp - now without iat).
	// Its jti is remembered until exp, so a longer lifetime keeps more
	// replay entries; one hour is what common client libraries sign for.
	MaxLifetime Duration `yaml:"max_lifetime"`
}

// MaxClientAssertionLifetime is the longest client_assertion.max_lifetime
// accepted: an assertion is a credential for one request, not a session.
const MaxClientAssertionLifetime = 24 * time.Hour

// Client is an OAuth client declared in the config; names follow RFC 7591.
type Client struct {
	ClientID string `yaml:"client_id"`
	// ClientSecret is accepted only with at least 32 characters.
	ClientSecret string `yaml:"client_secret"`
	// ClientSecretHash is "sha256:" and the hex SHA-256 of the secret, for
	// configs that must not hold the secret itself.
	ClientSecretHash         string   `yaml:"client_secret_hash"`
	ClientName               string   `yaml:"client_name"`
	TokenEndpointAuthMethod  string   `yaml:"token_endpoint_auth_method"`
	RedirectURIs             []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs   []string `yaml:"post_logout_redirect_uris"`
	AllowedOrigins           []string `yaml:"allowed_origins"`
	GrantTypes               []string `yaml:"grant_types"`
	ResponseTypes            []string `yaml:"response_types"`
	Scope                    string   `yaml:"scope"`
	SkipConsent              bool     `yaml:"skip_consent"`
	RequirePKCE              bool     `yaml:"require_pkce"`
	DPoPBoundAccessTokens    bool     `yaml:"dpop_bound_access_tokens"`
	IDTokenSignedResponseAlg string   `yaml:"id_token_signed_response_alg"`
	BackchannelLogoutURI     string   `yaml:"backchannel_logout_uri"`
	FrontchannelLogoutURI    string   `yaml:"frontchannel_logout_uri"`
	// OfflineRefresh lets a public client that asks for offline_access get
	// refresh tokens that outlive the SSO session (without it they are bound
	// to the session, as every client's are without offline_access).
	OfflineRefresh bool `yaml:"offline_refresh"`
	// RenewalCountsAsActivity lets silent renewals extend the SSO idle timer.
	RenewalCountsAsActivity bool `yaml:"renewal_counts_as_activity"`
	// RotateRefreshTokens rotates a confidential client's refresh tokens too.
	RotateRefreshTokens bool `yaml:"rotate_refresh_tokens"`
	// JWKS holds the public keys of a private_key_jwt client (a JSON Web Key
	// Set, written as YAML or as a JSON string); JWKSURI is where the client
	// publishes them instead. TokenEndpointAuthSigningAlg, if set, is the one
	// alg its assertions may use.
	JWKS                        JSON   `yaml:"jwks"`
	JWKSURI                     string `yaml:"jwks_uri"`
	TokenEndpointAuthSigningAlg string `yaml:"token_endpoint_auth_signing_alg"`
	// RequirePushedAuthorizationRequests refuses this client's authorization
	// requests unless they were pushed first (RFC 9126 §6).
	RequirePushedAuthorizationRequests bool `yaml:"require_pushed_authorization_requests"`
	// Profile holds the client to a security profile. ProfileFAPI2 turns on
	// require_pkce, require_pushed_authorization_requests and
	// dpop_bound_access_tokens, and the config is refused unless the rest of
	// the client conforms (see validator.profile).
	Profile string `yaml:"profile"`
	// StrictTokenEndpointAuthMethod holds a client_secret_basic or
	// client_secret_post client to exactly that method; without it either
	// way of sending the one secret is accepted.
	StrictTokenEndpointAuthMethod bool `yaml:"strict_token_endpoint_auth_method"`
	// Audience is the "aud" of this client's access tokens: the APIs that
	// accept them (RFC 9068 §3), as absolute URIs or plain names. Empty:
	// tokens.audience, else the issuer.
	Audience []string `yaml:"audience"`
}

// ProfileFAPI2 is the FAPI 2.0 Security Profile, with DPoP as its
// sender-constraining method (Castellan has no mutual TLS).
const ProfileFAPI2 = "fapi2"

// FAPI2Algorithms are the signature algorithms FAPI 2.0 allows.
var FAPI2Algorithms = []string{oauth.AlgPS256, oauth.AlgES256, oauth.AlgEdDSA}

// Requires are the protections the client must use: its own switches, or
// its profile's.
func (c *Client) Requires() (pkce, par, dpop bool) {
	fapi := c.Profile == ProfileFAPI2
	return c.RequirePKCE || fapi, c.RequirePushedAuthorizationRequests || fapi, c.DPoPBoundAccessTokens || fapi
}

// User is a person declared in the config.
type User struct {
	Username      string `yaml:"username"`
	Password      string `yaml:"password"`
	PasswordHash  string `yaml:"password_hash"`
	Email         string `yaml:"email"`
	EmailVerified bool   `yaml:"email_verified"`
	Name          string `yaml:"name"`
	GivenName     string `yaml:"given_name"`
	FamilyName    string `yaml:"family_name"`
	Disabled      bool   `yaml:"disabled"`
}

// JSON is a value kept as JSON text: in YAML it may be written as a mapping
// (converted to JSON) or as a string holding JSON; in the environment, as JSON.
type JSON string

// Duration is a time.Duration written like 30m or 12h in YAML and env.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the configuration used for every key the file leaves out.
func Default() Config {
	return Config{
		Issuer:  "http://127.0.0.1:9000",
		Listen:  "127.0.0.1:9000",
		Storage: "sqlite:castellan.db",
		KeyFile: "master.key",
		Log:     Log{Format: "", Level: "info"},
		Database: Database{
			ConnMaxLifetime: Duration(30 * time.Minute),
			ConnMaxIdleTime: Duration(5 * time.Minute),
			Migrate:         true,
		},
		Session: Session{
			IdleTimeout:     Duration(30 * time.Minute),
			AbsoluteTimeout: Duration(12 * time.Hour),
		},
		Tokens: Tokens{
			AccessTokenTTL:          Duration(time.Hour),
			IDTokenTTL:              Duration(time.Hour),
			RefreshTokenIdleTTL:     Duration(24 * time.Hour),
			RefreshTokenAbsoluteTTL: Duration(720 * time.Hour),
			RefreshTokenGrace:       Duration(DefaultRefreshTokenGrace),
			AuthorizationCodeTTL:    Duration(60 * time.Second),
		},
		Signing: Signing{
			Algorithms:      []string{"ES256", "RS256"},
			RotationPeriod:  Duration(90 * 24 * time.Hour),
			RefreshInterval: Duration(time.Minute),
		},
		Passwords: Passwords{
			MemoryKiB:      19 * 1024,
			Iterations:     2,
			Parallelism:    1,
			MemoryLimitMiB: 256,
			QueueTimeout:   Duration(5 * time.Second),
		},
		DPoP:            DPoP{Algorithms: []string{"ES256", "EdDSA", "RS256", "PS256"}},
		ClientAssertion: ClientAssertion{MaxLifetime: Duration(time.Hour)},
		Authorize: Authorize{
			PendingTTL:           Duration(10 * time.Minute),
			MaxPending:           10000,
			MaxPendingPerAddress: 1000,
		},
		Throttle: Throttle{
			AccountFailures: 5,
			AddressFailures: 50,
			BaseDelay:       Duration(2 * time.Second),
			MaxDelay:        Duration(15 * time.Minute),
			ResetAfter:      Duration(24 * time.Hour),
		},
		SessionEvents: DefaultSessionEvents(),
	}
}

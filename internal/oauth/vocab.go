package oauth

// Grant types (RFC 6749, RFC 8628 not supported).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantImplicit          = "implicit"
)

// GrantTypes lists every grant type Castellan implements.
var GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantImplicit}

// Response types (RFC 6749 §3.1.1, OAuth 2.0 Multiple Response Type Encoding).
const (
	ResponseCode         = "code"
	ResponseToken        = "token"
	ResponseIDTokenToken = "id_token token"
	ResponseIDToken      = "id_token"
)

// ResponseTypes lists every response type Castellan implements.
var ResponseTypes = []string{ResponseCode, ResponseToken, ResponseIDTokenToken, ResponseIDToken}

// Client authentication methods at the token endpoint (RFC 7591 §2, RFC 7523).
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// ClientAssertionJWT is the client_assertion_type of private_key_jwt (RFC 7523 §2.2).
const ClientAssertionJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientAssertionAlgorithms are the JWS algorithms accepted for client
// assertions. none and the HMAC algorithms never are: an HS256 "signature"
// keyed with a client's public key is a classic forgery (RFC 8725 §2.1, §3.1).
var ClientAssertionAlgorithms = []string{AlgES256, AlgEdDSA, AlgRS256, AlgPS256}

// AuthMethods lists the client authentication methods a client may register.
var AuthMethods = []string{AuthNone, AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT}

// Scopes with a meaning to OpenID Connect.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// Signing algorithms Castellan can hold keys for.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
	AlgPS256 = "PS256" // accepted from clients, not used for signing
)

// SigningAlgorithms lists the JWS algorithms Castellan signs with.
var SigningAlgorithms = []string{AlgES256, AlgRS256, AlgEdDSA}

// DPoPAlgorithms lists the JWS algorithms a DPoP proof may use (RFC 9449
// §4.2: asymmetric only).
var DPoPAlgorithms = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// Contains reports whether list holds s.
func Contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

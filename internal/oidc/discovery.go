// Package oidc holds what OpenID Connect adds on top of OAuth: the discovery
// document, ID-token and userinfo claims, and which claims each scope releases.
package oidc

// Metadata is the discovery document (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).
// It lists only what Castellan actually implements. The same document is
// served as OpenID Provider metadata and as OAuth authorization server
// metadata (RFC 8414 §3): every member is defined for both, and a client
// must find the same answers whichever it reads.
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                              string   `json:"token_endpoint,omitempty"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RevocationEndpoint                         string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint,omitempty"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint,omitempty"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported                        []string `json:"grant_types_supported,omitempty"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	// RFC 8414 §2: REQUIRED when the matching auth methods list
	// private_key_jwt (as token_endpoint_auth_signing_alg_values_supported).
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	ClaimsSupported                                    []string `json:"claims_supported,omitempty"`
	ClaimsParameterSupported                           bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                          bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported                       bool     `json:"request_uri_parameter_supported"`
	CodeChallengeMethodsSupported                      []string `json:"code_challenge_methods_supported,omitempty"`
	AuthorizationResponseIssParameterSupported         bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	PromptValuesSupported                              []string `json:"prompt_values_supported,omitempty"`
	FrontchannelLogoutSupported                        bool     `json:"frontchannel_logout_supported,omitempty"`
	FrontchannelLogoutSessionSupported                 bool     `json:"frontchannel_logout_session_supported,omitempty"`
	BackchannelLogoutSupported                         bool     `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSessionSupported                  bool     `json:"backchannel_logout_session_supported,omitempty"`
	DPoPSigningAlgValuesSupported                      []string `json:"dpop_signing_alg_values_supported,omitempty"`
	RequirePushedAuthorizationRequests                 bool     `json:"require_pushed_authorization_requests,omitempty"`
	// SessionEndedEndpoint is Castellan's own push of session ends to SPAs (not a standard).
	SessionEndedEndpoint string `json:"castellan_session_ended_endpoint,omitempty"`
	// ActivityEndpoint is Castellan's own presence signal from SPAs (not a standard).
	ActivityEndpoint string `json:"castellan_activity_endpoint,omitempty"`
}

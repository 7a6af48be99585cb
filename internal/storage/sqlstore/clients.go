package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/castellan-auth/castellan/internal/storage"
)

// clientMetadata is the JSON column holding a client's registration fields, so
// that a new RFC 7591 field needs no schema migration.
type clientMetadata struct {
	Name                              string   `json:"client_name,omitempty"`
	TokenEndpointAuthMethod           string   `json:"token_endpoint_auth_method"`
	RedirectURIs                      []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs            []string `json:"post_logout_redirect_uris,omitempty"`
	AllowedOrigins                    []string `json:"allowed_origins,omitempty"`
	GrantTypes                        []string `json:"grant_types,omitempty"`
	ResponseTypes                     []string `json:"response_types,omitempty"`
	Scopes                            []string `json:"scope,omitempty"`
	SkipConsent                       bool     `json:"skip_consent,omitempty"`
	RequirePKCE                       bool     `json:"require_pkce,omitempty"`
	DPoPBoundAccessTokens             bool     `json:"dpop_bound_access_tokens,omitempty"`
	IDTokenSignedResponseAlg          string   `json:"id_token_signed_response_alg,omitempty"`
	BackchannelLogoutURI              string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool     `json:"backchannel_logout_session_required,omitempty"`
	FrontchannelLogoutURI             string   `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool     `json:"frontchannel_logout_session_required,omitempty"`
	OfflineRefresh                    bool     `json:"offline_refresh,omitempty"`
	RenewalCountsAsActivity           bool     `json:"renewal_counts_as_activity,omitempty"`
	RotateRefreshTokens               bool     `json:"rotate_refresh_tokens,omitempty"`
	RequirePAR                        bool     `json:"require_pushed_authorization_requests,omitempty"`
	JWKS                              string   `json:"jwks,omitempty"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	TokenEndpointAuthSigningAlg       string   `json:"token_endpoint_auth_signing_alg,omitempty"`
	Profile                           string   `json:"profile,omitempty"`
	StrictTokenEndpointAuthMethod     bool     `json:"strict_token_endpoint_auth_method,omitempty"`
	Audience                          []string `json:"audience,omitempty"`
}

func toMetadata(c storage.Client) clientMetadata {
	return clientMetadata{
		Name: c.Name, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, RedirectURIs: c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, AllowedOrigins: c.AllowedOrigins, GrantTypes: c.GrantTypes,
		ResponseTypes: c.ResponseTypes, Scopes: c.Scopes, SkipConsent: c.SkipConsent, RequirePKCE: c.RequirePKCE,
		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens, IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		FrontchannelLogoutURI: c.FrontchannelLogoutURI, FrontchannelLogoutSessionRequired: c.FrontchannelLogoutSessionRequired,
		OfflineRefresh: c.OfflineRefresh, RenewalCountsAsActivity: c.RenewalCountsAsActivity,
		RotateRefreshTokens: c.RotateRefreshTokens, RequirePAR: c.RequirePushedAuthorizationRequests,
		JWKS: c.JWKS, JWKSURI: c.JWKSURI, TokenEndpointAuthSigningAlg: c.TokenEndpointAuthSigningAlg,
		Profile: c.Profile, StrictTokenEndpointAuthMethod: c.StrictTokenEndpointAuthMethod, Audience: c.Audience,
	}
}

func (m clientMetadata) apply(c *storage.Client) {
	c.Name, c.TokenEndpointAuthMethod, c.RedirectURIs = m.Name, m.TokenEndpointAuthMethod, m.RedirectURIs
	c.PostLogoutRedirectURIs, c.AllowedOrigins, c.GrantTypes = m.PostLogoutRedirectURIs, m.AllowedOrigins, m.GrantTypes
	c.ResponseTypes, c.Scopes, c.SkipConsent, c.RequirePKCE = m.ResponseTypes, m.Scopes, m.SkipConsent, m.RequirePKCE
	c.DPoPBoundAccessTokens, c.IDTokenSignedResponseAlg = m.DPoPBoundAccessTokens, m.IDTokenSignedResponseAlg
	c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = m.BackchannelLogoutURI, m.BackchannelLogoutSessionRequired
	c.FrontchannelLogoutURI, c.FrontchannelLogoutSessionRequired = m.FrontchannelLogoutURI, m.FrontchannelLogoutSessionRequired
	c.OfflineRefresh, c.RenewalCountsAsActivity, c.RotateRefreshTokens = m.OfflineRefresh, m.RenewalCountsAsActivity, m.RotateRefreshTokens
	c.RequirePushedAuthorizationRequests, c.JWKS, c.JWKSURI = m.RequirePAR, m.JWKS, m.JWKSURI
	c.TokenEndpointAuthSigningAlg, c.Profile = m.TokenEndpointAuthSigningAlg, m.Profile
	c.StrictTokenEndpointAuthMethod, c.Audience = m.StrictTokenEndpointAuthMethod, m.Audience
}

func scanClient(row interface{ Scan(...any) error }) (storage.Client, error) {
	var c storage.Client
	var meta string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.SecretDigest, &meta, &created, &updated); err != nil {
		return c, err
	}
	var m clientMetadata
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		return c, fmt.Errorf("client %q: corrupt metadata: %w", c.ID, err)
	}
	m.apply(&c)
	c.CreatedAt, c.UpdatedAt = tm(created), tm(updated)
	return c, nil
}

func (s *Store) UpsertClient(ctx context.Context, c storage.Client) error {
	meta, err := json.Marshal(toMetadata(c))
	if err != nil {
		return err
	}
	_, err = s.execDurable(ctx, `INSERT INTO clients (id, secret_digest, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET secret_digest = excluded.secret_digest, metadata = excluded.metadata, updated_at = excluded.updated_at`,
		c.ID, c.SecretDigest, string(meta), ts(c.CreatedAt), ts(c.UpdatedAt))
	return err
}

func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := scanClient(s.queryRow(ctx, `SELECT id, secret_digest, metadata, created_at, updated_at FROM clients WHERE id = ?`, id))
	return c, s.mapErr(err)
}

func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, secret_digest, metadata, created_at, updated_at FROM clients ORDER BY id`)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []storage.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, c)
	}
	return out, s.mapErr(rows.Err())
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return mustAffect(s.execDurable(ctx, `DELETE FROM clients WHERE id = ?`, id))
}

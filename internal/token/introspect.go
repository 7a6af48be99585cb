package token

import (
	"context"
	"errors"
	"net/http"

	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Introspection is the RFC 7662 §2.2 response.
type Introspection struct {
	Active       bool               `json:"active"`
	Scope        string             `json:"scope,omitempty"`
	ClientID     string             `json:"client_id,omitempty"`
	TokenType    string             `json:"token_type,omitempty"`
	Expiry       int64              `json:"exp,omitempty"`
	IssuedAt     int64              `json:"iat,omitempty"`
	NotBefore    int64              `json:"nbf,omitempty"`
	Subject      string             `json:"sub,omitempty"`
	Audience     mint.Audience      `json:"aud,omitempty"`
	Issuer       string             `json:"iss,omitempty"`
	JTI          string             `json:"jti,omitempty"`
	SID          string             `json:"sid,omitempty"`
	AuthTime     int64              `json:"auth_time,omitempty"`
	Confirmation *mint.Confirmation `json:"cnf,omitempty"`
}

// introspect is RFC 7662, for confidential clients (resource servers) only.
// Anything not active — unknown, expired, revoked, rotated out, truncated, or a
// refresh token of another client — is exactly {"active":false}.
func (e *Endpoint) introspect(w http.ResponseWriter, r *http.Request) {
	resp, err := func() (*Introspection, error) {
		form, err := parseForm(r)
		if err != nil {
			return nil, err
		}
		c, err := e.Auth.Authenticate(r.Context(), r, form)
		if err != nil {
			return nil, err
		}
		if c.Public() {
			// §2.1: the endpoint MUST require authentication; a public client has none.
			return nil, &oauth.Error{Code: oauth.ErrInvalidClient, Description: "introspection needs a confidential client"}
		}
		token := form["token"]
		if token == "" {
			return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "token required"}
		}
		return e.inspect(r.Context(), c, token)
	}()
	if err != nil {
		e.writeError(w, r, "introspection", err)
		return
	}
	web.NoStore(w)
	writeJSON(w, http.StatusOK, resp)
}

var inactive = &Introspection{}

func (e *Endpoint) inspect(ctx context.Context, c storage.Client, token string) (*Introspection, error) {
	if claims, err := e.Mint.ParseAccess(token, e.Clock.Now()); err == nil {
		active, err := e.Grants.AccessActive(ctx, claims.JTI, claims.Grant, claims.SID)
		if err != nil || !active {
			return inactive, err
		}
		typ := "Bearer"
		if claims.Confirmation != nil && claims.Confirmation.JKT != "" {
			typ = "DPoP"
		}
		return &Introspection{
			Active: true, Scope: claims.Scope, ClientID: claims.ClientID, TokenType: typ,
			Expiry: claims.Expiry, IssuedAt: claims.IssuedAt, NotBefore: claims.NotBefore,
			Subject: claims.Subject, Audience: claims.Audience, Issuer: claims.Issuer, JTI: claims.JTI,
			SID: claims.SID, AuthTime: claims.AuthTime, Confirmation: claims.Confirmation,
		}, nil
	}
	rec, err := e.Grants.LookupRefresh(ctx, token)
	if errors.Is(err, storage.ErrNotFound) {
		return inactive, nil
	}
	if err != nil {
		return nil, err
	}
	// A refresh token is the business of the client holding it only.
	if !rec.Active || rec.Grant.ClientID != c.ID {
		return inactive, nil
	}
	g := rec.Grant
	return &Introspection{
		Active: true, Scope: oauth.JoinScope(g.Scopes), ClientID: g.ClientID, TokenType: "refresh_token",
		Expiry: rec.Token.ExpiresAt.Unix(), IssuedAt: rec.Token.CreatedAt.Unix(), Subject: g.UserID,
		Issuer: e.Mint.Issuer(), SID: rec.SID, AuthTime: g.AuthTime.Unix(),
	}, nil
}

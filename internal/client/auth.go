package client

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Authenticator identifies the client of a token, revocation, introspection
// or pushed authorization request (RFC 6749 §2.3): by secret (Basic or in the
// form), by client_id alone for public clients, or by a signed assertion
// (private_key_jwt, RFC 7523 §2.2).
type Authenticator struct {
	store   storage.Clients
	secrets Secrets
	// Assertions, if set, accepts private_key_jwt; without it client
	// assertions are refused.
	Assertions *Assertions
	// dummy is compared against when the client is unknown, so that unknown and
	// known clients cost the same.
	dummy []byte
}

// NewAuthenticator returns an authenticator.
func NewAuthenticator(store storage.Clients, secrets Secrets) *Authenticator {
	return &Authenticator{store: store, secrets: secrets, dummy: secrets.Digest("castellan: no such client")}
}

func invalidClient(desc string) *oauth.Error {
	return &oauth.Error{Code: oauth.ErrInvalidClient, Description: desc}
}

// Authenticate returns the client that sent r, whose single-valued form
// parameters are form. Failures are invalid_client (401) or invalid_request;
// storage failures are returned as plain errors.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request, form map[string]string) (storage.Client, error) {
	if _, ok := form["client_assertion"]; ok || form["client_assertion_type"] != "" {
		return a.authenticateAssertion(ctx, r, form)
	}
	method, id, secret, err := credentials(r, form)
	if err != nil {
		return storage.Client{}, err
	}
	c, err := a.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		a.secrets.Check(secret, a.dummy)
		return storage.Client{}, invalidClient("client authentication failed")
	}
	if err != nil {
		return storage.Client{}, err
	}
	switch {
	case c.TokenEndpointAuthMethod != method:
		// A client authenticates the one way it registered (RFC 7591 §2); a
		// confidential client cannot fall back to sending only its id.
		a.secrets.Check(secret, a.dummy)
		return storage.Client{}, invalidClient("client authentication failed")
	case method == oauth.AuthNone:
		return c, nil
	case !a.secrets.Check(secret, c.SecretDigest):
		return storage.Client{}, invalidClient("client authentication failed")
	}
	return c, nil
}

// authenticateAssertion is private_key_jwt (RFC 7523 §2.2): the client is
// the sub of a JWT signed with one of its registered keys.
func (a *Authenticator) authenticateAssertion(ctx context.Context, r *http.Request, form map[string]string) (storage.Client, error) {
	switch {
	case r.Header.Get("Authorization") != "" || form["client_secret"] != "":
		// RFC 6749 §2.3: one authentication method per request. A failed
		// client authentication, so invalid_client (ADVERSARIAL.md 33).
		return storage.Client{}, invalidClient("use one client authentication method, not two")
	case form["client_assertion_type"] != oauth.ClientAssertionJWT:
		return storage.Client{}, invalidClient("client_assertion_type must be " + oauth.ClientAssertionJWT)
	case form["client_assertion"] == "":
		return storage.Client{}, invalidClient("client_assertion is missing")
	case a.Assertions == nil:
		return storage.Client{}, invalidClient("client assertions (private_key_jwt) are not enabled")
	}
	id, err := assertionSubject(form["client_assertion"])
	if err != nil {
		return storage.Client{}, err
	}
	if cid := form["client_id"]; cid != "" && cid != id {
		return storage.Client{}, invalidClient("client_id differs from the client_assertion sub")
	}
	c, err := a.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, invalidClient("client authentication failed")
	}
	if err != nil {
		return storage.Client{}, err
	}
	if c.TokenEndpointAuthMethod != oauth.AuthPrivateKeyJWT {
		// A client authenticates the one way it registered (RFC 7591 §2).
		return storage.Client{}, invalidClient("client authentication failed")
	}
	if err := a.Assertions.Verify(ctx, c, form["client_assertion"]); err != nil {
		return storage.Client{}, err
	}
	return c, nil
}

// credentials extracts the method and credentials a request uses. Using more
// than one method is an error (RFC 6749 §2.3).
func credentials(r *http.Request, form map[string]string) (method, id, secret string, err error) {
	auth := r.Header.Get("Authorization")
	if auth != "" {
		scheme, payload, _ := strings.Cut(auth, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return "", "", "", invalidClient("unsupported Authorization scheme at this endpoint")
		}
		raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
		user, pass, ok := strings.Cut(string(raw), ":")
		if derr != nil || !ok {
			return "", "", "", invalidClient("malformed Basic credentials")
		}
		// RFC 6749 §2.3.1: both parts are application/x-www-form-urlencoded first.
		if id, err = url.QueryUnescape(user); err != nil {
			return "", "", "", invalidClient("malformed Basic credentials")
		}
		if secret, err = url.QueryUnescape(pass); err != nil {
			return "", "", "", invalidClient("malformed Basic credentials")
		}
		if form["client_secret"] != "" {
			return "", "", "", &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "use one client authentication method, not two"}
		}
		if cid := form["client_id"]; cid != "" && cid != id {
			return "", "", "", &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "client_id differs from the authenticated client"}
		}
		if id == "" {
			return "", "", "", invalidClient("malformed Basic credentials")
		}
		return oauth.AuthClientSecretBasic, id, secret, nil
	}
	id = form["client_id"]
	if id == "" {
		return "", "", "", invalidClient("client authentication required")
	}
	if s, ok := form["client_secret"]; ok && s != "" {
		return oauth.AuthClientSecretPost, id, s, nil
	}
	return oauth.AuthNone, id, "", nil
}

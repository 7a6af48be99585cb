package client

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Authenticator identifies the client of a token, revocation, introspection
// or pushed authorization request (RFC 6749 §2.3): by secret (Basic or in the
// form), by client_id alone for public clients, or by a signed assertion
// (private_key_jwt, RFC 7523 §2.2).
//
// A client registered with client_secret_basic or client_secret_post may
// send its secret either way: the secret is the same and so is its strength,
// and libraries mix the two (zitadel/oidc's relying party sends Basic for the
// code exchange, the form for refresh and revocation, Basic for
// introspection). strict_token_endpoint_auth_method holds a client to the
// one it registered. Every other mismatch of method is refused, naming the
// method expected (never whether a secret was right).
type Authenticator struct {
	store   storage.Clients
	secrets Secrets
	log     *slog.Logger
	// Assertions, if set, accepts private_key_jwt; without it client
	// assertions are refused.
	Assertions *Assertions
	// dummy is compared against when the client is unknown, so that unknown and
	// known clients cost the same.
	dummy []byte
}

// NewAuthenticator returns an authenticator; refusals are logged to log at
// debug level, with the reason and the client id, never a credential.
func NewAuthenticator(store storage.Clients, secrets Secrets, log *slog.Logger) *Authenticator {
	return &Authenticator{store: store, secrets: secrets, log: log, dummy: secrets.Digest("castellan: no such client")}
}

func invalidClient(desc string) *oauth.Error {
	return &oauth.Error{Code: oauth.ErrInvalidClient, Description: desc}
}

// twoMethods is RFC 6749 §2.3's "MUST NOT use more than one authentication
// method in each request": a malformed request, so invalid_request (§5.2),
// whichever two methods were combined.
func twoMethods() *oauth.Error {
	return &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "use one client authentication method, not two"}
}

// errAuthFailed is the answer for an unknown client and a wrong secret or
// key alike: it confirms nothing.
const errAuthFailed = "client authentication failed"

// Authenticate returns the client that sent r, whose single-valued form
// parameters are form. Failures are invalid_client (401) or invalid_request;
// storage failures are returned as plain errors.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request, form map[string]string) (storage.Client, error) {
	if _, ok := form["client_assertion"]; ok || form["client_assertion_type"] != "" {
		c, err := a.authenticateAssertion(ctx, r, form)
		return c, a.logRefusal(ctx, oauth.AuthPrivateKeyJWT, form["client_id"], err)
	}
	method, id, secret, err := credentials(r, form)
	if err != nil {
		return storage.Client{}, a.logRefusal(ctx, method, id, err)
	}
	c, err := a.authenticateSecret(ctx, method, id, secret)
	return c, a.logRefusal(ctx, method, id, err)
}

// authenticateSecret checks a client id with its secret, or alone for a
// public client.
func (a *Authenticator) authenticateSecret(ctx context.Context, method, id, secret string) (storage.Client, error) {
	c, err := a.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		a.secrets.Check(secret, a.dummy)
		return storage.Client{}, refusal{invalidClient(errAuthFailed), "unknown client"}
	}
	if err != nil {
		return storage.Client{}, err
	}
	if !MethodAccepted(c, method) {
		// A client authenticates the way it registered (RFC 7591 §2); a
		// confidential client cannot fall back to sending only its id.
		a.secrets.Check(secret, a.dummy)
		return storage.Client{}, refusal{invalidClient(expected(c)), "sent " + method + ", registered " + c.TokenEndpointAuthMethod}
	}
	if method == oauth.AuthNone {
		return c, nil
	}
	if !a.secrets.Check(secret, c.SecretDigest) {
		return storage.Client{}, refusal{invalidClient(errAuthFailed), "wrong secret"}
	}
	return c, nil
}

// MethodAccepted reports whether client c may authenticate with method: the
// one it registered, or, for a secret, the other way of sending it unless
// the client is strict.
func MethodAccepted(c storage.Client, method string) bool {
	if method == c.TokenEndpointAuthMethod {
		return true
	}
	return secretMethod(method) && secretMethod(c.TokenEndpointAuthMethod) && !c.StrictTokenEndpointAuthMethod
}

func secretMethod(m string) bool {
	return m == oauth.AuthClientSecretBasic || m == oauth.AuthClientSecretPost
}

// expected is the error_description for a client that used a method it may
// not: the methods it may use, and nothing about its credentials.
func expected(c storage.Client) string {
	switch m := c.TokenEndpointAuthMethod; {
	case m == oauth.AuthNone:
		return "this client is public (token_endpoint_auth_method none): send its client_id and no secret"
	case secretMethod(m) && !c.StrictTokenEndpointAuthMethod:
		return "this client must authenticate with its client secret (client_secret_basic or client_secret_post)"
	default:
		return "this client must authenticate with " + m
	}
}

// refusal is an OAuth error with the reason logged for the operator, which
// may say more than the answer does (say, that the secret was wrong).
type refusal struct {
	err    *oauth.Error
	reason string
}

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// logRefusal writes a debug line for a refused authentication and returns
// the error to answer with. No credential is logged.
func (a *Authenticator) logRefusal(ctx context.Context, method, clientID string, err error) error {
	var oe *oauth.Error
	if err == nil || !errors.As(err, &oe) {
		return err
	}
	reason := oe.Description
	var rf refusal
	if errors.As(err, &rf) {
		reason = rf.reason
		err = rf.err
	}
	a.log.DebugContext(ctx, "client authentication refused", "request_id", web.RequestID(ctx),
		"client_id", truncate(clientID), "method", method, "error", oe.Code, "reason", reason)
	return err
}

// truncate bounds a client id from the request before it is logged.
func truncate(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}

// authenticateAssertion is private_key_jwt (RFC 7523 §2.2): the client is
// the sub of a JWT signed with one of its registered keys.
func (a *Authenticator) authenticateAssertion(ctx context.Context, r *http.Request, form map[string]string) (storage.Client, error) {
	switch {
	case r.Header.Get("Authorization") != "" || form["client_secret"] != "":
		return storage.Client{}, twoMethods()
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
		return storage.Client{}, refusal{invalidClient(errAuthFailed), "unknown client " + truncate(id)}
	}
	if err != nil {
		return storage.Client{}, err
	}
	if c.TokenEndpointAuthMethod != oauth.AuthPrivateKeyJWT {
		// A client authenticates the one way it registered (RFC 7591 §2).
		return storage.Client{}, refusal{invalidClient(expected(c)), "sent private_key_jwt, registered " + c.TokenEndpointAuthMethod}
	}
	if err := a.Assertions.Verify(ctx, c, form["client_assertion"], a.Assertions.endpointURL(r)); err != nil {
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
			return "", "", "", twoMethods()
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

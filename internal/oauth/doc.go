// Package oauth is the protocol vocabulary of OAuth 2.1 and OpenID Connect:
// error codes and the *Error value, grant and response types, client
// authentication methods, scopes, PKCE and redirect-URI matching. It imports
// nothing else from Castellan, so every layer can speak it.
package oauth

package demo

import (
	"net/http"
	"strings"

	"github.com/castellan-auth/castellan/internal/demoapi"
)

// APIHandler builds the demo API: it accepts the provider's access tokens
// meant for it (APIAudience) from the app's origin. client talks to the
// provider (nil: a default client).
func (s Setup) APIHandler(client *http.Client) (http.Handler, error) {
	return demoapi.New(demoapi.Config{
		Issuer:                s.Issuer,
		Audience:              s.APIAudience(),
		AllowedOrigins:        []string{strings.TrimSuffix(s.SPA, "/")},
		IntrospectionClientID: ClientAPI,
		IntrospectionSecret:   s.APISecret,
		HTTPClient:            client,
	})
}

// APIAudience is the demo API's identifier: the audience of the tokens of
// the demo's clients that call it, and what the API requires. Audience, or
// else the API's origin (a resource indicator, RFC 8707 §2).
func (s Setup) APIAudience() string {
	if s.Audience != "" {
		return s.Audience
	}
	return strings.TrimSuffix(s.API, "/")
}

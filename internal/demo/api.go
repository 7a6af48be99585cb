package demo

import (
	"net/http"
	"strings"

	"github.com/castellan-auth/castellan/internal/demoapi"
)

// APIHandler builds the demo API: it accepts the provider's access tokens
// from the app's origin. client talks to the provider (nil: a default client).
func (s Setup) APIHandler(client *http.Client) (http.Handler, error) {
	aud := s.Audience
	if aud == "" {
		aud = s.Issuer
	}
	return demoapi.New(demoapi.Config{
		Issuer:                s.Issuer,
		Audience:              aud,
		AllowedOrigins:        []string{strings.TrimSuffix(s.SPA, "/")},
		IntrospectionClientID: ClientAPI,
		IntrospectionSecret:   s.APISecret,
		HTTPClient:            client,
	})
}

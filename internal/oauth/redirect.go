package oauth

import (
	"net"
	"net/url"
	"strings"
)

// IsLoopbackHost reports whether host (without port) is a loopback address or
// "localhost".
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// MatchRedirectURI reports whether the redirect_uri of a request is one of the
// registered ones. Matching is exact string comparison (OAuth 2.1 §2.3.1,
// RFC 9700 §4.1.3), with the single exception of RFC 8252 §7.3: for an http
// loopback IP-literal redirect URI the port may differ, because native apps
// listen on an ephemeral port. "localhost" gets no such exception (§8.3).
func MatchRedirectURI(requested string, registered []string) bool {
	for _, r := range registered {
		if requested == r {
			return true
		}
	}
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || req.User != nil || !isLoopbackIP(req.Hostname()) {
		return false
	}
	for _, r := range registered {
		reg, err := url.Parse(r)
		// A registered URI never has a fragment (config validation refuses
		// one); if it did, dropping it here would widen the match.
		// The exception is for URIs registered literally as http://: one
		// written another way (htTp://) gets exact matching only.
		if err != nil || !strings.HasPrefix(r, "http://") || !isLoopbackIP(reg.Hostname()) || strings.Contains(r, "#") {
			continue
		}
		if reg.Hostname() == req.Hostname() && reg.EscapedPath() == req.EscapedPath() &&
			reg.RawQuery == req.RawQuery && !strings.Contains(requested, "#") &&
			requested == "http://"+req.Host+reg.EscapedPath()+rawQuerySuffix(reg.RawQuery) {
			return true
		}
	}
	return false
}

func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func rawQuerySuffix(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

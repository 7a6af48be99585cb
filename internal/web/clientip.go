package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP resolves the address a request came from. Forwarding headers are
// believed only when the peer is a trusted proxy; otherwise anybody could pick
// the address that sign-in throttling counts against.
type ClientIP struct {
	trusted []netip.Prefix
}

// NewClientIP parses trusted proxies (IPs or CIDRs); invalid entries are skipped
// (config validation reports them).
func NewClientIP(trusted []string) ClientIP {
	var c ClientIP
	for _, t := range trusted {
		if p, err := netip.ParsePrefix(t); err == nil {
			c.trusted = append(c.trusted, p.Masked())
		} else if a, err := netip.ParseAddr(t); err == nil {
			c.trusted = append(c.trusted, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return c
}

func (c ClientIP) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Of returns the client address of r. Walking X-Forwarded-For (or Forwarded)
// from the right, it skips trusted proxies and returns the first address that
// is not one: the rightmost address no trusted party vouches against.
func (c ClientIP) Of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if len(c.trusted) == 0 || !c.isTrusted(peer) {
		return peer.String()
	}
	hops := forwardedFor(r)
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			return peer.String()
		}
		if !c.isTrusted(a) {
			return a.Unmap().String()
		}
		peer = a.Unmap()
	}
	return peer.String()
}

// forwardedFor lists the forwarded-for addresses, left to right, from the
// Forwarded header (RFC 7239) or else X-Forwarded-For.
func forwardedFor(r *http.Request) []string {
	var out []string
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		for _, line := range fwd {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if !ok || !strings.EqualFold(k, "for") {
						continue
					}
					v = strings.Trim(v, `"`)
					if strings.HasPrefix(v, "[") {
						if end := strings.Index(v, "]"); end > 0 {
							v = v[1:end]
						}
					} else if h, _, err := net.SplitHostPort(v); err == nil {
						v = h
					}
					out = append(out, v)
				}
			}
		}
		return out
	}
	for _, line := range r.Header.Values("X-Forwarded-For") {
		for _, a := range strings.Split(line, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

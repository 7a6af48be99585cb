package oauth

import "net/url"

// Single returns the parameters of a request as single values, or the name of
// the first one that appears more than once: RFC 6749 §3.1 and §3.2 say request
// parameters "MUST NOT be included more than once".
func Single(v url.Values) (map[string]string, string) {
	out := make(map[string]string, len(v))
	for k, vals := range v {
		if k == "" {
			// "=x" names no parameter; ignoring it also keeps a repeated empty
			// name from being reported as "" (no repetition).
			continue
		}
		if len(vals) > 1 {
			return nil, k
		}
		if len(vals) == 1 {
			out[k] = vals[0]
		}
	}
	return out, ""
}

package authorize

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// MaxStoredRequestBytes bounds an authorization request as it is stored
// while the person signs in (the authorization endpoint's pending requests
// and pushed requests alike). Every parameter is bounded already (package
// oauth); this bounds what their JSON encoding makes of them, which is more
// for characters it must escape. A request of printable ASCII within the
// parameter limits stays well below it.
const MaxStoredRequestBytes = 16 << 10

// Addresses tells the client address of a request (web.ClientIP): pending
// requests are counted per address.
type Addresses interface {
	Of(r *http.Request) string
}

// AddressKey is the digest a pending request is counted under: the client
// address, an IPv6 address as its /64, since one subscriber usually holds a
// whole /64 and counting its addresses one by one would bound nothing.
func AddressKey(addr string) []byte {
	key := addr
	if a, err := netip.ParseAddr(addr); err == nil {
		a = a.Unmap().WithZone("")
		if a.Is6() {
			key = netip.PrefixFrom(a, 64).Masked().String()
		} else {
			key = a.String()
		}
	}
	sum := sha256.Sum256([]byte("castellan pending address\x00" + key))
	return sum[:]
}

// EncodeRequest encodes a validated request for storage, or refuses it
// (invalid_request, redirectable) if the encoding is longer than
// MaxStoredRequestBytes. HTML is not escaped: the encoding is read back only
// by Castellan, and "<" as \u003c would make it six times longer.
func EncodeRequest(req *Request) ([]byte, *oauth.Error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, redirectError(oauth.ErrInvalidRequest, "the authorization request cannot be encoded")
	}
	if b.Len() > MaxStoredRequestBytes {
		return nil, redirectError(oauth.ErrInvalidRequest, "the authorization request is longer than "+strconv.Itoa(MaxStoredRequestBytes)+" bytes once encoded")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// RetryAfter is the Retry-After value (whole seconds, at least 1) of a
// refusal by a limit that frees up at retryAt.
func RetryAfter(retryAt, now time.Time) int {
	return int(max(1, math.Ceil(retryAt.Sub(now).Seconds())))
}

// showFull answers a request refused because storing its pending request
// would pass a limit: 429 when its client address holds too many, 503 when
// everyone together does, both with Retry-After. It is shown on Castellan's
// page: the client cannot do anything about it, the person can wait.
func (h *Handler) showFull(w http.ResponseWriter, r *http.Request, fe *storage.FullError) {
	now := h.Clock.Now()
	secs := RetryAfter(fe.RetryAt, now)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	wait := web.ErrorPage{RetryAfter: waitText(secs)}
	if errors.Is(fe, storage.ErrAddressFull) {
		h.Log.Debug("pending requests of one address at their limit", "request_id", web.RequestID(r.Context()))
		wait.Message = "Too many sign-ins have been started from your network and not finished."
		h.Pages.Error(w, r, http.StatusTooManyRequests, "Too many sign-ins", wait)
		return
	}
	if last := h.fullNoticed.Load(); now.Unix()-last >= 60 && h.fullNoticed.CompareAndSwap(last, now.Unix()) {
		h.Log.Warn("pending requests at their limit (authorize.max_pending): new sign-ins are refused with 503 until some expire",
			"request_id", web.RequestID(r.Context()), "max_pending", h.Limits.Total)
	}
	wait.Message = "Castellan is handling as many sign-ins as it can at the moment."
	h.Pages.Error(w, r, http.StatusServiceUnavailable, "Try again later", wait)
}

// waitText says a wait of secs seconds in words.
func waitText(secs int) string {
	switch {
	case secs < 60:
		return "a minute"
	case secs < 120:
		return "two minutes"
	}
	return strconv.Itoa((secs+59)/60) + " minutes"
}

package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wire is a lean HTTP/1.1 client for one keep-alive connection to one plain
// http origin, like one of wrk's connections: the request is written with one
// write, the answer parsed in place, and no goroutine or channel stands
// between them. On a two-core machine that shares its cores with the server,
// the load generator's own cost per request decides how close the server can
// be driven to its ceiling; net/http's client costs several times more per
// request (two goroutines per connection and a hand-off per request).
//
// It knows what the bench needs and no more: Content-Length and chunked
// bodies, Connection: close, and one retry when a kept-alive connection turns
// out to have been closed by the server before it read the request.
type wire struct {
	origin  string // "http://host:port", no trailing slash
	addr    string
	host    string
	timeout time.Duration
	conn    net.Conn
	br      *bufio.Reader
	out     []byte
	body    bytes.Buffer
}

// newWire returns a wire client for the origin of issuer, or an error if the
// issuer is not plain http (TLS is left to net/http).
func newWire(issuer string, timeout time.Duration) (*wire, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("wire: %s is not plain http", issuer)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &wire{origin: "http://" + u.Host, addr: addr, host: u.Host, timeout: timeout}, nil
}

func (w *wire) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

func (w *wire) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return err
	}
	w.conn = c
	if w.br == nil {
		w.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		w.br.Reset(c)
	}
	return nil
}

// errWire marks an answer the client could not parse.
var errWire = errors.New("malformed HTTP response")

func (w *wire) roundTrip(ctx context.Context, method, u, body string, hdr ...string) (exchange, error) {
	path, ok := strings.CutPrefix(u, w.origin)
	if !ok || !strings.HasPrefix(path, "/") {
		return exchange{}, fmt.Errorf("wire: %s is not on %s", u, w.origin)
	}
	w.out = append(w.out[:0], method...)
	w.out = append(w.out, ' ')
	w.out = append(w.out, path...)
	w.out = append(w.out, " HTTP/1.1\r\nHost: "...)
	w.out = append(w.out, w.host...)
	w.out = append(w.out, "\r\nUser-Agent: castellan-bench\r\n"...)
	for i := 0; i+1 < len(hdr); i += 2 {
		w.out = append(w.out, hdr[i]...)
		w.out = append(w.out, ": "...)
		w.out = append(w.out, hdr[i+1]...)
		w.out = append(w.out, "\r\n"...)
	}
	if body != "" || method == "POST" {
		w.out = append(w.out, "Content-Length: "...)
		w.out = strconv.AppendInt(w.out, int64(len(body)), 10)
		w.out = append(w.out, "\r\n"...)
	}
	w.out = append(w.out, "\r\n"...)
	w.out = append(w.out, body...)

	for attempt := 0; ; attempt++ {
		reused := w.conn != nil
		if !reused {
			if err := w.dial(ctx); err != nil {
				return exchange{}, err
			}
		}
		w.conn.SetDeadline(time.Now().Add(w.timeout))
		ex, started, err := w.exchange()
		if err == nil {
			return ex, nil
		}
		w.close()
		// A kept-alive connection the server had already closed fails before any
		// byte of an answer: the request was not processed, send it again once.
		if !reused || started || attempt > 0 || !closedByPeer(err) || ctx.Err() != nil {
			return exchange{}, &url.Error{Op: method, URL: u, Err: err}
		}
	}
}

func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// exchange writes the prepared request and reads the answer. started reports
// whether any of the answer arrived.
func (w *wire) exchange() (ex exchange, started bool, err error) {
	if _, err := w.conn.Write(w.out); err != nil {
		return ex, false, err
	}
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return ex, len(line) > 0, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return ex, true, errWire
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return ex, true, errWire
	}
	ex.status = status
	length, chunked, keep := int64(-1), false, line[7] == '1'
	for {
		line, err = w.br.ReadSlice('\n')
		if err != nil {
			return ex, true, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return ex, true, errWire
		}
		value = bytes.TrimSpace(value)
		switch {
		case equalFold(name, "content-length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return ex, true, errWire
			}
		case equalFold(name, "transfer-encoding"):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case equalFold(name, "connection"):
			if equalFold(value, "close") {
				keep = false
			}
		case equalFold(name, "location"):
			ex.location = string(value)
		}
	}
	if ex.location != "" && strings.HasPrefix(ex.location, "/") {
		ex.location = w.origin + ex.location
	}
	w.body.Reset()
	switch {
	case status == 204 || status == 304 || (status >= 100 && status < 200):
	case chunked:
		if _, err := w.body.ReadFrom(httputil.NewChunkedReader(w.br)); err != nil {
			return ex, true, err
		}
		// Trailer section, then the empty line that ends the message.
		for {
			line, err := w.br.ReadSlice('\n')
			if err != nil {
				return ex, true, err
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
	case length >= 0:
		if n, err := w.body.ReadFrom(io.LimitReader(w.br, length)); err != nil || n != length {
			return ex, true, cmpErr(err, io.ErrUnexpectedEOF)
		}
	default: // delimited by the end of the connection
		if _, err := w.body.ReadFrom(w.br); err != nil {
			return ex, true, err
		}
		keep = false
	}
	ex.body = w.body.Bytes()
	if !keep {
		w.close()
	}
	return ex, true, nil
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func equalFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

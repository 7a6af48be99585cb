package loadgen

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"
)

func TestJSONString(t *testing.T) {
	for _, c := range []struct {
		body, key, want string
	}{
		{`{"access_token":"abc.def.ghi","token_type":"Bearer"}`, "access_token", "abc.def.ghi"},
		{`{"access_token":"abc","refresh_token":"r-1"}`, "refresh_token", "r-1"},
		{`{ "refresh_token" : "spaced" }`, "refresh_token", "spaced"},
		{`{"id_token":"a\"b"}`, "id_token", `a"b`},
		{`{"access_token":"abc"}`, "refresh_token", ""},
		{`not json`, "access_token", ""},
	} {
		if got := jsonString([]byte(c.body), c.key); got != c.want {
			t.Errorf("jsonString(%s, %s): got %q, want %q", c.body, c.key, got, c.want)
		}
	}
}

func TestErrorKey(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{unexpected("token", 400, []byte(`{"error":"invalid_grant","error_description":"reused"}`)), "400 invalid_grant"},
		{unexpected("login", 503, []byte(`<html>Busy</html>`)), "503"},
		{&url.Error{Op: "Post", URL: "http://x", Err: errors.New("connection refused")}, "net"},
		{errors.New("something else"), "protocol"},
	} {
		if got := errorKey(c.err); got != c.want {
			t.Errorf("errorKey(%v): got %q, want %q", c.err, got, c.want)
		}
	}
}

func TestProcReadsThisProcess(t *testing.T) {
	// Burn a little CPU so the tick-granular counter moves.
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	_ = x
	cpu, err := cpuTime(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("cpuTime: got %v, %v", cpu, err)
	}
	rss, hwm, err := memory(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Errorf("memory: got rss %d hwm %d, %v", rss, hwm, err)
	}
	if _, err := cpuTime(-1); err == nil {
		t.Error("cpuTime of no process: no error")
	}
}

func TestPlanPicksByWeight(t *testing.T) {
	p, err := newPlan(Mixed, map[string]int{Introspect: 3, Refresh: 1, SignIn: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.kinds) != 2 {
		t.Fatalf("got %d kinds, want 2 (zero weights dropped)", len(p.kinds))
	}
	r := rand.New(rand.NewPCG(7, 8))
	n := map[string]int{}
	for range 40000 {
		n[p.pick(r).name]++
	}
	if got := float64(n[Introspect]) / 40000; got < 0.73 || got > 0.77 {
		t.Errorf("introspect share %.3f, want about 0.75", got)
	}
	b := &Baseline{AccessAlg: "ES256", IDAlg: "ES256", SignMicros: map[string]float64{"ES256": 40}, VerifyMicros: map[string]float64{"ES256": 100}}
	// 3/4 × one verification + 1/4 × two signatures.
	if got := p.floor(b); got != 0.75*100+0.25*80 {
		t.Errorf("floor: got %v µs, want 95", got)
	}
}

func TestWireClient(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte(`{"a":`))
			w.(http.Flusher).Flush()
			w.Write([]byte(`"b"}`))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/redirect":
			http.Redirect(w, r, "/next?x=1", http.StatusSeeOther)
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(r.Method + " " + r.Header.Get("Authorization") + " " + string(b)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	w, err := newWire(srv.URL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	ctx := t.Context()
	for _, c := range []struct {
		method, path, body string
		hdr                []string
		status             int
		want, location     string
	}{
		{"POST", "/echo", "x=1&y=2", []string{"Authorization", "Basic abc"}, 200, "POST Basic abc x=1&y=2", ""},
		{"GET", "/chunked", "", nil, 200, `{"a":"b"}`, ""},
		{"GET", "/echo", "", nil, 200, "GET  ", ""},
		{"GET", "/redirect", "", nil, 303, "", srv.URL + "/next?x=1"},
		{"GET", "/close", "", nil, 200, "bye", ""},
		{"GET", "/missing", "", nil, 404, "404 page not found\n", ""},
		{"POST", "/echo", "", nil, 200, "POST  ", ""},
	} {
		ex, err := w.roundTrip(ctx, c.method, srv.URL+c.path, c.body, c.hdr...)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		if ex.status != c.status || (c.want != "" && string(ex.body) != c.want) || ex.location != c.location {
			t.Errorf("%s %s: got %d %q location %q, want %d %q location %q", c.method, c.path, ex.status, ex.body, ex.location, c.status, c.want, c.location)
		}
	}
	// The server drops idle connections: the next request goes out again on a
	// new one.
	srv.CloseClientConnections()
	if ex, err := w.roundTrip(ctx, "GET", srv.URL+"/chunked", ""); err != nil || ex.status != 200 {
		t.Errorf("after the server closed the connection: got %v, %v", ex.status, err)
	}
	if _, err := w.roundTrip(ctx, "GET", "http://elsewhere.example/x", ""); err == nil {
		t.Error("a URL on another origin was sent")
	}
	if _, err := newWire("https://127.0.0.1:1", time.Second); err == nil {
		t.Error("https accepted by the plain-http client")
	}
}

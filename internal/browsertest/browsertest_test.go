package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/browsertest"
)

// TestHarness drives a small page through every helper: navigation, typing,
// clicking, reading text, evaluating, waiting, several tabs sharing a
// BroadcastChannel, and a redirect observed where no server listens.
func TestHarness(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>t</title>
<form method="post" action="/login"><input name="username"><input name="password" type="password"><button type="submit">Go</button></form>
<p id="late"></p>
<script>
setTimeout(() => document.getElementById("late").textContent = "ready", 300);
const ch = new BroadcastChannel("t"); ch.onmessage = (e) => { document.title = e.data; };
</script>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/callback?user="+r.PostFormValue("username"), http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := browsertest.New(t)
	one := b.Tab("one")
	two := b.Tab("two")
	one.Navigate(srv.URL)
	two.Navigate(srv.URL)
	if got := one.WaitText("#late", "ready", 5*time.Second); got != "ready" {
		t.Errorf("got %q, want ready", got)
	}
	browsertest.Eval[bool](one, `(new BroadcastChannel("t").postMessage("hello"), true)`)
	two.WaitJS("message from the other tab", 5*time.Second, `document.title === "hello"`)

	redirects := one.Intercept("http://127.0.0.1:1/*")
	one.SignIn("alice", "secret")
	select {
	case u := <-redirects:
		if !strings.HasSuffix(u, "/callback?user=alice") {
			t.Errorf("got redirect %s, want …/callback?user=alice", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no redirect seen")
	}
	if got := browsertest.Eval[int](one, `Promise.resolve(6 * 7)`); got != 42 {
		t.Errorf("got %d, want 42", got)
	}
}

func TestMain(m *testing.M) { browsertest.Main(m) }

// Package browsertest runs headless Chromium for end-to-end tests that need a
// real browser — cookies with SameSite rules, iframes, postMessage, CORS, Web
// Locks, BroadcastChannel — driven from Go with chromedp.
//
// Chromium is the one named by CASTELLAN_TEST_CHROMIUM, or `chromium` on the
// PATH under CI=true. Without one a test skips with a message, except under
// CI=true, where it fails: CI must not pass by skipping.
//
// Waits poll a condition until a deadline; nothing sleeps a fixed time.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/castellan-auth/castellan/internal/clock"
)

// EnvChromium names the Chromium executable to test with.
const EnvChromium = "CASTELLAN_TEST_CHROMIUM"

// Timeout bounds every single browser action and wait unless a call says
// otherwise.
var Timeout = 20 * time.Second

// Path returns the Chromium to run. Without one it skips the test, or fails
// it under CI=true.
func Path(t testing.TB) string {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=%s: %v", EnvChromium, p, err)
		}
		return p
	}
	if ci {
		p, err := exec.LookPath("chromium")
		if err != nil {
			t.Fatalf("CI=true but no Chromium: set %s or install it (apt-get install -y chromium)", EnvChromium)
		}
		return p
	}
	t.Skipf("browser test skipped: set %s to a Chromium executable to run it (e.g. apt-get install -y chromium; %s=/usr/bin/chromium)", EnvChromium, EnvChromium)
	return ""
}

// Browser is a browser profile of one test: a Chromium process of its own,
// or a browser context of the shared one (see Main).
type Browser struct {
	t    testing.TB
	ctx  context.Context // the first tab; every other tab is its child
	mu   sync.Mutex
	used bool // the first tab was handed out
	tabs []*Tab
}

// allocatorOptions are Chromium's flags: headless, no sandbox (it runs as
// root in CI), no GPU, no QUIC, no first-run or background networking, no
// component updates or sync. Loopback origins may reach each other
// (LocalNetworkAccessChecks off), and background tabs keep their timers, since
// the tests run several tabs of one app at once.
func allocatorOptions(path, dir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "LocalNetworkAccessChecks"),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1280, 900),
	}
}

// launch starts Chromium with a fresh profile in dir.
func launch(path, dir string) (context.Context, func(), error) {
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocatorOptions(path, dir)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() { cancel(); cancelAlloc() }
	// The first Run starts the browser and binds it to ctx, which has no
	// deadline: actions get their own timeouts.
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("start chromium %s: %w", path, err)
	}
	return ctx, stop, nil
}

// shared is the one Chromium of a test binary that calls Main. Starting
// Chromium takes seconds, so its tests share one process, each in a browser
// context of its own (like a private window: no cookies, storage or locks in
// common with any other test).
var shared struct {
	sync.Mutex
	enabled bool
	ctx     context.Context
	stop    func()
	dir     string
	err     error
}

// Main runs a package's tests with one shared Chromium; call it from
// TestMain. Without it, New starts a Chromium per test.
func Main(m *testing.M) {
	shared.enabled = true
	code := m.Run()
	shared.Lock()
	if shared.stop != nil {
		shared.stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	shared.Unlock()
	os.Exit(code)
}

func sharedBrowser(path string) (context.Context, error) {
	shared.Lock()
	defer shared.Unlock()
	if shared.ctx == nil && shared.err == nil {
		shared.dir, shared.err = os.MkdirTemp("", "castellan-chromium-")
		if shared.err == nil {
			shared.ctx, shared.stop, shared.err = launch(path, shared.dir)
		}
	}
	return shared.ctx, shared.err
}

// New returns a browser for the test: a fresh profile with no cookies or
// storage, closed when the test ends.
func New(t testing.TB) *Browser {
	t.Helper()
	path := Path(t)
	var ctx context.Context
	if shared.enabled {
		parent, err := sharedBrowser(path)
		if err != nil {
			t.Fatal(err)
		}
		var cancel context.CancelFunc
		ctx, cancel = chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
		if err := chromedp.Do(ctx); err != nil {
			cancel()
			t.Fatalf("open a browser context: %v", err)
		}
		t.Cleanup(cancel)
	} else {
		var stop func()
		var err error
		ctx, stop, err = launch(path, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	b := &Browser{t: t, ctx: ctx}
	// Registered last, so it runs first: the consoles are still there.
	t.Cleanup(func() {
		if t.Failed() {
			b.dumpConsoles()
		}
	})
	return b
}

// Tab returns a tab: the browser's first one on the first call, then new ones
// (separate windows of the same profile: they share cookies, storage, Web
// Locks and BroadcastChannels). name labels its console output.
func (b *Browser) Tab(name string) *Tab {
	b.t.Helper()
	b.mu.Lock()
	first := !b.used
	b.used = true
	b.mu.Unlock()
	ctx := b.ctx
	if !first {
		var cancel context.CancelFunc
		ctx, cancel = chromedp.NewContext(b.ctx)
		if err := chromedp.Do(ctx); err != nil {
			cancel()
			b.t.Fatalf("open tab %s: %v", name, err)
		}
		b.t.Cleanup(cancel)
	}
	tab := &Tab{T: b.t, Ctx: ctx, Name: name}
	tab.captureConsole()
	b.mu.Lock()
	b.tabs = append(b.tabs, tab)
	b.mu.Unlock()
	return tab
}

func (b *Browser) dumpConsoles() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, tab := range b.tabs {
		if out := tab.Console(); out != "" {
			b.t.Logf("console of tab %s:\n%s", tab.Name, out)
		}
	}
}

// Tab is one browser tab.
type Tab struct {
	T    testing.TB
	Ctx  context.Context
	Name string

	mu      sync.Mutex
	console []string
}

// captureConsole keeps the tab's console messages and uncaught exceptions,
// which the browser dumps when the test fails.
func (p *Tab) captureConsole() {
	messages := chromedp.Console(p.Ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			line := fmt.Sprintf("%s %s: %s", m.Time.Format("15:04:05.000"), m.Type, m.Text)
			if m.URL != "" {
				line += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
			}
			p.mu.Lock()
			p.console = append(p.console, line)
			p.mu.Unlock()
		}
	}()
}

// Console returns the console messages seen so far, one a line.
func (p *Tab) Console() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.console, "\n")
}

// Do runs actions with the default timeout, failing the test on error.
func (p *Tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.T.Fatalf("tab %s: %s: %v\n%s", p.Name, what, err, p.describe())
	}
}

// Navigate loads url and waits for its load event.
func (p *Tab) Navigate(url string) {
	p.T.Helper()
	p.Do("navigate to "+url, chromedp.Navigate(url))
}

// Click clicks the first element matching the CSS selector, once visible.
func (p *Tab) Click(sel string) {
	p.T.Helper()
	p.Do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// SignIn fills Castellan's sign-in page (the selectors DESIGN.md keeps
// stable) and submits it; the caller waits for where it leads.
func (p *Tab) SignIn(username, password string) {
	p.T.Helper()
	p.Do("fill the sign-in form",
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SetValue(chromedp.CSS(`input[name=username]`), username),
		chromedp.SetValue(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
}

// Eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into T, failing the test on error.
func Eval[T any](p *Tab, expr string) T {
	p.T.Helper()
	v, err := TryEval[T](p, expr)
	if err != nil {
		p.T.Fatalf("tab %s: evaluate %s: %v\n%s", p.Name, expr, err, p.describe())
	}
	return v
}

// TryEval is Eval returning the error.
func TryEval[T any](p *Tab, expr string) (T, error) {
	return evalWithin[T](p, Timeout, expr)
}

func evalWithin[T any](p *Tab, d time.Duration, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.Ctx, d)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// Text returns the text (innerText) of the first element matching the CSS
// selector, or "" when there is none.
func (p *Tab) Text(sel string) string {
	v, _ := TryEval[string](p, fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel))
	return v
}

// PageText returns the text of the whole page.
func (p *Tab) PageText() string {
	v, _ := TryEval[string](p, `document.body ? document.body.innerText : ""`)
	return v
}

// Location returns the tab's current URL.
func (p *Tab) Location() string {
	v, _ := TryEval[string](p, `location.href`)
	return v
}

// WaitFor polls cond until it reports true, failing the test with what and
// cond's last note once timeout has passed.
func (p *Tab) WaitFor(what string, timeout time.Duration, cond func() (ok bool, note string)) {
	p.T.Helper()
	deadline := time.Now().Add(timeout)
	var note string
	for {
		var ok bool
		ok, note = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.T.Fatalf("tab %s: waited %v for %s; last: %s\n%s", p.Name, timeout, what, note, p.describe())
		}
		select {
		case <-p.Ctx.Done():
			p.T.Fatalf("tab %s: browser gone while waiting for %s: %v", p.Name, what, p.Ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitJS polls a JavaScript expression until it is truthy.
func (p *Tab) WaitJS(what string, timeout time.Duration, expr string) {
	p.T.Helper()
	p.WaitFor(what, timeout, func() (bool, string) {
		v, err := TryEval[bool](p, "!!("+expr+")")
		if err != nil {
			return false, err.Error()
		}
		return v, "false"
	})
}

// WaitText polls until the element matching sel contains substr.
func (p *Tab) WaitText(sel, substr string, timeout time.Duration) string {
	p.T.Helper()
	var text string
	p.WaitFor(fmt.Sprintf("%q in %s", substr, sel), timeout, func() (bool, string) {
		text = p.Text(sel)
		return strings.Contains(text, substr), fmt.Sprintf("%q", text)
	})
	return text
}

// WaitURL polls until the tab's URL starts with prefix and returns it.
func (p *Tab) WaitURL(prefix string, timeout time.Duration) string {
	p.T.Helper()
	var u string
	p.WaitFor("URL "+prefix+"…", timeout, func() (bool, string) {
		u = p.Location()
		return strings.HasPrefix(u, prefix), u
	})
	return u
}

// Intercept answers, inside the browser, every request whose URL matches the
// pattern (Fetch domain wildcards: * and ?) with an empty 200 page, and sends
// each such URL on the returned channel. It observes where a redirect goes
// when no server listens there.
func (p *Tab) Intercept(pattern string) <-chan string {
	p.T.Helper()
	paused := chromedp.Events(p.Ctx, fetch.RequestPaused)
	ctx, cancel := context.WithTimeout(p.Ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern}}}); err != nil {
		p.T.Fatalf("tab %s: intercept %s: %v", p.Name, pattern, err)
	}
	urls := make(chan string, 16)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			select {
			case urls <- ev.Request.URL:
			default:
			}
			fctx, cancel := context.WithTimeout(p.Ctx, Timeout)
			chromedp.Call(fctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: ev.RequestID, ResponseCode: 200,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}},
			})
			cancel()
		}
	}()
	return urls
}

// FollowRealTime keeps a test provider's fake clock on the real time until
// the test ends: browsers and client libraries judge token expiry by their
// own clock.
func FollowRealTime(t testing.TB, c *clock.Fake) {
	stop := make(chan struct{})
	done := make(chan struct{})
	c.Set(time.Now())
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				c.Set(time.Now())
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// describe is what a failure message shows about the tab: URL and page text.
func (p *Tab) describe() string {
	if errors.Is(p.Ctx.Err(), context.Canceled) {
		return "(tab closed)"
	}
	// Short: the tab may be what hangs.
	text, _ := evalWithin[string](p, 2*time.Second, `document.body ? document.body.innerText : ""`)
	if len(text) > 1500 {
		text = text[:1500] + "…"
	}
	loc, _ := evalWithin[string](p, 2*time.Second, `location.href`)
	return fmt.Sprintf("URL: %s\npage text:\n%s", loc, text)
}

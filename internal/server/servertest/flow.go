package servertest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

var (
	csrfField  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	authzField = regexp.MustCompile(`name="authz" value="([^"]+)"`)
)

// Step is one response seen while following a flow.
type Step struct {
	Status   int
	URL      string
	Location string
	Header   http.Header
	Body     string
}

// Agent drives the provider's pages like a person in a browser would: it
// follows redirects within the provider, signs in with its credentials when it
// meets the sign-in page, and answers the consent page with its decision.
type Agent struct {
	Env      *Env
	Client   *http.Client
	Username string
	Password string
	// Consent is "allow" or "deny" (default allow).
	Consent string
	// Steps records every response seen.
	Steps []Step
}

// Agent returns an agent with a fresh browser signed in as nobody yet.
func (e *Env) Agent(username string) *Agent {
	return &Agent{Env: e, Client: e.Browser(), Username: username, Password: Password, Consent: "allow"}
}

// CSRF returns the CSRF token of a page body.
func CSRF(body string) string {
	if m := csrfField.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

func (a *Agent) do(req *http.Request) (Step, error) {
	resp, err := a.Client.Do(req)
	if err != nil {
		return Step{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s := Step{Status: resp.StatusCode, URL: req.URL.String(), Location: resp.Header.Get("Location"), Header: resp.Header, Body: string(b)}
	if s.Location != "" {
		if loc, err := req.URL.Parse(s.Location); err == nil {
			s.Location = loc.String()
		}
	}
	a.Steps = append(a.Steps, s)
	return s, nil
}

// Get fetches u without following redirects.
func (a *Agent) Get(u string) (Step, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return a.do(req)
}

// Post submits a form to u without following redirects.
func (a *Agent) Post(u string, form url.Values) (Step, error) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(req)
}

// Follow starts at u and goes on until a response leaves the provider (its
// redirect Location is returned) or ends on a provider page (returned as the
// last step, Location empty).
func (a *Agent) Follow(u string) (Step, error) {
	s, err := a.Get(u)
	for i := 0; err == nil && i < 20; i++ {
		switch {
		case s.Location != "" && !strings.HasPrefix(s.Location, a.Env.URL+"/"):
			return s, nil
		case s.Location != "":
			s, err = a.Get(s.Location)
		case s.Status == http.StatusOK && strings.Contains(s.Body, `name="password"`):
			s, err = a.Post(a.Env.URL+"/login", url.Values{
				"csrf_token": {CSRF(s.Body)}, "authz": {field(authzField, s.Body)},
				"username": {a.Username}, "password": {a.Password},
			})
		case s.Status == http.StatusOK && strings.Contains(s.Body, `name="decision" value="allow"`) && strings.Contains(s.Body, "/authorize/consent"):
			s, err = a.Post(a.Env.URL+"/authorize/consent", url.Values{
				"csrf_token": {CSRF(s.Body)}, "authz": {field(authzField, s.Body)}, "decision": {a.Consent},
			})
		default:
			return s, nil
		}
	}
	if err != nil {
		return s, err
	}
	return s, fmt.Errorf("too many steps")
}

func field(re *regexp.Regexp, body string) string {
	if m := re.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// Params returns the response parameters of a redirect to a client: the query,
// or the fragment when there is one.
func Params(location string) url.Values {
	u, err := url.Parse(location)
	if err != nil {
		return nil
	}
	if u.Fragment != "" {
		v, _ := url.ParseQuery(u.EscapedFragment())
		return v
	}
	return u.Query()
}

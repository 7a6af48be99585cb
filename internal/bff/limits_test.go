package bff_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestSignedInAPICallOutlivesServerTimeouts: the server's read timeout cuts
// off a stranger's slow body, but a signed-in person's API call streams its
// body for as long as it takes. No clock is read: the stranger's connection,
// opened after the API call started, being cut off shows that the API
// call's own read timeout has passed too.
func TestSignedInAPICallOutlivesServerTimeouts(t *testing.T) {
	s := newStack(t, stackOptions{server: func(hs *http.Server) {
		hs.ReadTimeout, hs.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	}})
	b := s.browser("alice")
	b.login(t, "/")

	body, feed := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/echo/upload", body)
	req.Header.Set("X-CSRF", "1")
	answer := make(chan *http.Response, 1)
	failed := make(chan error, 1)
	go func() {
		resp, err := b.agent.Client.Do(req)
		if err != nil {
			failed <- err
			return
		}
		answer <- resp
	}()
	io.WriteString(feed, "first half, ")

	u, _ := url.Parse(s.URL)
	stranger, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	io.WriteString(stranger, "POST /bff/backchannel-logout HTTP/1.1\r\nHost: "+u.Host+"\r\nContent-Length: 100\r\n\r\nlogout_token=")
	stranger.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, stranger); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the stranger's slow body was not cut off")
		}
	}

	io.WriteString(feed, "second half")
	feed.Close()
	select {
	case err := <-failed:
		t.Fatalf("signed-in API call: %v", err)
	case resp := <-answer:
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(got) != "first half, second half" {
			t.Errorf("signed-in API call: got %d %q (%v), want 200 with the whole body", resp.StatusCode, got, err)
		}
	}
}

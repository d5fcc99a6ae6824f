package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/imgpipe/imgpipe/shared/wire"
)

// needServer checks --url and --key.
func (c *command) needServer() error {
	if c.base == "" {
		return errors.New("no server: set IMGPIPE_URL or --url to the API's base URL (make dev prints it; terraform output api_url)")
	}
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q is not an http(s) URL such as https://REGION-PROJECT.cloudfunctions.net/imgpipe-api", c.base)
	}
	if err := c.keyMayGoTo(u); err != nil {
		return err
	}
	if c.key == "" {
		return errors.New("no API key: set IMGPIPE_API_KEY or --key (an operator creates keys with imgpipe-keys create)")
	}
	c.base = strings.TrimRight(c.base, "/")
	return nil
}

// errPlainHTTP refuses to send the API key in clear text across a network.
var errPlainHTTP = errors.New("the API key would travel unencrypted")

// keyMayGoTo says whether the API key may be sent to u: always over
// https://, over http:// only to this machine (localhost, 127.0.0.0/8,
// ::1) unless the user passed --insecure-http.
func (c *command) keyMayGoTo(u *url.URL) error {
	if u.Scheme != "http" || c.insecureHTTP || isLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w: %s is plain http:// to another machine, where anyone on the path can read the key; use https://, or pass --insecure-http if that network is yours", errPlainHTTP, u.Redacted())
}

// isLoopback says whether host (a URL's host name, without port) is this
// machine: localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiClient is the HTTP client for calls that carry the API key: it
// follows a redirect only where the key may go (an https:// API that
// redirects to http:// on the same host would otherwise resend the key in
// clear text).
func (c *command) apiClient() *http.Client {
	cl := *c.env.Client
	next := cl.CheckRedirect
	cl.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := c.keyMayGoTo(req.URL); err != nil {
			return fmt.Errorf("the server redirected to %s: %w", req.URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cl
}

// call sends a request to the API and returns the response, or an error
// that says what to do next.
func (c *command) call(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("User-Agent", "imgpipe-cli/1")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.apiClient().Do(req)
	if err != nil {
		if errors.Is(err, errPlainHTTP) {
			return nil, unwrapURLError(err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%s did not answer in time: try again, or check the server's logs", c.base)
		}
		return nil, fmt.Errorf("cannot reach %s (%v): is the server running, and is IMGPIPE_URL (or --url) right?", c.base, unwrapURLError(err))
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, refusal(resp)
}

// refusal is the error of an API answer with status 400 or above: what
// the server said (its error body, or the text it sent instead) and what
// to do next.
func refusal(resp *http.Response) error {
	var e wire.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(b, &e)
	msg := e.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(b))
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("the server refused the API key (401 %s): check IMGPIPE_API_KEY or --key", msg)
	case http.StatusNotFound:
		return fmt.Errorf("not found (404): %s; check the request ID (it belongs to the key that uploaded it)", msg)
	case http.StatusTooManyRequests:
		return fmt.Errorf("too many requests (429): %s; retry in %s s", msg, or(resp.Header.Get("Retry-After"), "a few"))
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		var sb strings.Builder
		fmt.Fprintf(&sb, "the server refused the upload (%d): %s", resp.StatusCode, msg)
		for _, d := range e.Error.Details {
			sb.WriteString("\n  " + d)
		}
		sb.WriteString("\nfix the file and upload it again")
		return errors.New(sb.String())
	default:
		id := ""
		if e.RequestID != "" {
			id = " (request " + e.RequestID + ")"
		}
		return fmt.Errorf("the server failed (%d): %s%s; try again in a minute", resp.StatusCode, msg, id)
	}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// getJSON reads a JSON answer into v.
func (c *command) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.call(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return errNotTheAPI(path, err)
	}
	return nil
}

// errNotTheAPI is the error of an answer to what (a path, or "the
// upload") that imgpipe cannot read.
func errNotTheAPI(what string, err error) error {
	return fmt.Errorf("the server's answer to %s is not what imgpipe expects (%v): is --url the imgpipe API?", what, err)
}

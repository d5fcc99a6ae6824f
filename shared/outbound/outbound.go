// Package outbound is the only way imgpipe reaches a URL a user gave: image
// fetches and webhooks. Its guard checks the address actually dialled (after
// DNS, on every redirect), so a name that resolves to our metadata server or
// a private network is refused however it is spelled.
package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// Reason codes of fetch failures, as batch defines them.
const (
	ReasonBlocked   = batch.ReasonBlockedAddress
	ReasonTooLarge  = batch.ReasonFetchTooLarge
	ReasonTimeout   = batch.ReasonTimeout
	ReasonRedirects = batch.ReasonTooManyRedirects
	ReasonDNS       = batch.ReasonDNSNotFound
	ReasonConnect   = batch.ReasonConnectionFailed
	ReasonScheme    = batch.ReasonUnsupportedScheme
)

// Guard decides which addresses may be dialled.
type Guard struct {
	// AllowLoopback admits 127.0.0.0/8 and ::1 on any port: for the local
	// stack only (IMGPIPE_ALLOW_LOOPBACK, set by make dev/test/demo).
	AllowLoopback bool
	// Allow admits these prefixes on any port, whatever the rules below say
	// (IMGPIPE_ALLOW_ADDRESSES; empty by default).
	Allow []netip.Prefix
	// Ports allowed elsewhere; empty means 80 and 443.
	Ports []int
}

var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",          // "this network"
		"100.64.0.0/10",      // carrier-grade NAT
		"192.0.0.0/24",       // IETF protocol assignments
		"192.0.2.0/24",       // documentation
		"198.18.0.0/15",      // benchmarking
		"198.51.100.0/24",    // documentation
		"203.0.113.0/24",     // documentation
		"240.0.0.0/4",        // reserved, and broadcast
		"64:ff9b::/96",       // NAT64 (embeds IPv4)
		"64:ff9b:1::/48",     // local-use NAT64
		"2002::/16",          // 6to4 (embeds IPv4)
		"2001::/32",          // Teredo (embeds IPv4)
		"2001:db8::/32",      // documentation
		"100::/64",           // discard-only
		"fec0::/10",          // deprecated site-local
		"::/128",             // unspecified
		"::ffff:0:0/96",      // IPv4-mapped: checked unmapped, never dialled mapped
		"::/96",              // IPv4-compatible (deprecated)
		"fd00:ec2::254/128",  // cloud metadata over IPv6
		"169.254.169.254/32", // metadata (also link-local)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// blockedHosts are refused by name before any lookup.
var blockedHosts = map[string]bool{
	"metadata.google.internal": true,
	"metadata.google":          true,
	"metadata":                 true,
	"metadata.goog":            true,
}

// CheckAddr refuses an address we must never dial.
func (g Guard) CheckAddr(ip netip.Addr, port int) error {
	ip = ip.Unmap()
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	loop := ip.IsLoopback()
	switch {
	case loop && g.AllowLoopback:
		return nil
	case loop, ip.IsPrivate(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast(),
		ip.IsMulticast(), ip.IsUnspecified():
		return fault.New(fault.Permanent, ReasonBlocked, "address %s is not a public address", ip)
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return fault.New(fault.Permanent, ReasonBlocked, "address %s is in the reserved range %s", ip, p)
		}
	}
	ports := g.Ports
	if len(ports) == 0 {
		ports = []int{80, 443}
	}
	for _, p := range ports {
		if p == port {
			return nil
		}
	}
	return fault.New(fault.Permanent, ReasonBlocked, "port %d is not allowed (allowed: %v)", port, ports)
}

// CheckURL refuses schemes other than http(s) and blocked host names; the
// address itself is checked when dialled.
func (g Guard) CheckURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fault.New(fault.Permanent, ReasonScheme, "scheme %q is not allowed (http, https are)", u.Scheme)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if blockedHosts[host] {
		return fault.New(fault.Permanent, ReasonBlocked, "host %q is not allowed", u.Hostname())
	}
	return nil
}

// dialContext resolves the name itself, refuses it when any of its
// addresses is blocked (a name that also points inside is hostile), and
// dials the checked address, so no second lookup can rebind it. The
// dialer's Control checks the address again at connect.
func (g Guard) dialContext(r Resolver, d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		port, _ := strconv.Atoi(portStr)
		if blockedHosts[strings.TrimSuffix(strings.ToLower(host), ".")] {
			return nil, fault.New(fault.Permanent, ReasonBlocked, "host %q is not allowed", host)
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else if pinned, ok := ctx.Value(resolvedKey{}).(resolvedHost); ok && pinned.host == normalHost(host) {
			ips = pinned.ips // looked up once, to key the per-host slot on
		} else if ips, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
		for _, ip := range ips {
			if err := g.CheckAddr(ip, port); err != nil {
				return nil, fault.New(fault.Permanent, ReasonBlocked, "%s resolves to a refused address: %s", host, err.(*fault.Error).Message)
			}
		}
		var lastErr error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), portStr))
			if err == nil {
				return c, nil
			}
			lastErr = err
		}
		return nil, lastErr
	}
}

// control runs after DNS resolution, just before connect.
func (g Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fault.New(fault.Permanent, ReasonBlocked, "cannot parse dialled address %q", address)
	}
	return g.CheckAddr(ap.Addr(), int(ap.Port()))
}

// Resolver looks names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configure a Client.
type Options struct {
	Guard        Guard
	Timeout      time.Duration // whole request, body included
	MaxRedirects int
	UserAgent    string
	Resolver     Resolver // net.DefaultResolver when nil
	// MaxPerHost bounds this client's fetches in flight to one host; 0
	// means no bound. Image hosts answer bursts with 429s. A host is the
	// address dialled (the first address its name resolves to, and the
	// port), so spellings of one host (case, a trailing dot, a default
	// port, an IP literal, another name for the same address) share its
	// slots.
	MaxPerHost int
}

// Client fetches user URLs through the guard.
type Client struct {
	hc   *http.Client
	opts Options

	mu    sync.Mutex
	hosts map[string]*hostSlots
}

// hostSlots bounds the fetches in flight to one host.
type hostSlots struct {
	slots chan struct{}
	users int // fetches holding or waiting for a slot; the entry goes at 0
}

// resolvedKey is the context key of a resolvedHost.
type resolvedKey struct{}

// resolvedHost is what a fetch looked its host up as: the dialer dials
// these addresses for that host instead of looking it up again, so the
// address the per-host slot is keyed on is the address dialled.
type resolvedHost struct {
	host string // normalHost
	ips  []netip.Addr
}

// normalHost is a host name as DNS reads it: lower case, no trailing dot.
func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// hostKey is the address a fetch of u dials, and its port (the scheme's
// default when the URL has none). A name is keyed on the lowest of the
// addresses it resolves to, so a round-robin name that answers the same
// set in another order keeps its key. ctx carries the lookup, so the
// dialer uses the same addresses. IP literals are keyed as themselves (an
// IPv4-mapped IPv6 address as its IPv4 form).
func (c *Client) hostKey(ctx context.Context, u *url.URL) (key string, _ context.Context, err error) {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", ctx, fault.New(fault.Permanent, "invalid_url", "invalid port %q", port)
	}
	host := normalHost(u.Hostname())
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, err := c.opts.Resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return "", ctx, classify(err)
		}
		if len(ips) == 0 {
			return "", ctx, classify(&net.DNSError{Err: "no addresses", Name: host, IsNotFound: true})
		}
		ctx = context.WithValue(ctx, resolvedKey{}, resolvedHost{host: host, ips: ips})
		ip = ips[0].Unmap()
		for _, a := range ips[1:] {
			if a.Unmap().Less(ip) {
				ip = a.Unmap()
			}
		}
	}
	return netip.AddrPortFrom(ip.Unmap().WithZone(""), uint16(p)).String(), ctx, nil
}

// acquire takes a slot for host, waiting while all are in use; release
// gives it back.
func (c *Client) acquire(ctx context.Context, host string) (release func(), err error) {
	c.mu.Lock()
	h := c.hosts[host]
	if h == nil {
		h = &hostSlots{slots: make(chan struct{}, c.opts.MaxPerHost)}
		c.hosts[host] = h
	}
	h.users++
	c.mu.Unlock()
	done := func() {
		c.mu.Lock()
		if h.users--; h.users == 0 {
			delete(c.hosts, host)
		}
		c.mu.Unlock()
	}
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots; done() }, nil
	case <-ctx.Done():
		done()
		return nil, fault.Wrap(fault.Transient, batch.ReasonCanceled, ctx.Err(), "waiting for a free connection to %s", host)
	}
}

// UserAgent is what imgpipe's fetches say they are: imgpipe, and where its
// operator can be reached.
func UserAgent(contactURL string) string { return "imgpipe/1 (+" + contactURL + ")" }

// NewClient builds a Client; no proxy is used (a proxy would dial for us,
// past the guard).
func NewClient(o Options) *Client {
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = UserAgent("https://github.com/imgpipe/imgpipe")
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: o.Guard.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           o.Guard.dialContext(o.Resolver, dialer),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       60 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
	}
	hc := &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > o.MaxRedirects {
				return fault.New(fault.Permanent, ReasonRedirects, "more than %d redirects", o.MaxRedirects)
			}
			return o.Guard.CheckURL(req.URL)
		},
	}
	return &Client{hc: hc, opts: o, hosts: map[string]*hostSlots{}}
}

// HTTPClient exposes the guarded client (for webhooks).
func (c *Client) HTTPClient() *http.Client { return c.hc }

// Fetch GETs rawURL and returns at most maxBytes of body; more is a
// permanent too_large failure, detected while streaming.
func (c *Client) Fetch(ctx context.Context, rawURL string, maxBytes int64) ([]byte, error) {
	return c.FetchAdmitted(ctx, rawURL, maxBytes, nil)
}

// FetchAdmitted is Fetch that calls admit, when not nil, once the host has
// a slot for it and just before the request goes out: a fetch queued
// behind its host's other fetches holds nothing admit hands out. An error
// from admit ends the fetch with that error.
func (c *Client) FetchAdmitted(ctx context.Context, rawURL string, maxBytes int64, admit func(context.Context) error) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fault.New(fault.Permanent, "invalid_url", "invalid URL: %v", err)
	}
	if err := c.opts.Guard.CheckURL(u); err != nil {
		return nil, err
	}
	if c.opts.MaxPerHost > 0 {
		key, kctx, err := c.hostKey(ctx, u)
		if err != nil {
			return nil, err
		}
		release, err := c.acquire(ctx, key)
		if err != nil {
			return nil, err
		}
		defer release()
		ctx = kctx
	}
	if admit != nil {
		if err := admit(ctx); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fault.New(fault.Permanent, "invalid_url", "invalid URL: %v", err)
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	req.Header.Set("Accept", "image/jpeg,image/png,image/webp,image/gif;q=0.9,*/*;q=0.1")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		reason := batch.ReasonHTTPPrefix + strconv.Itoa(resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500 {
			e := fault.New(fault.Transient, reason, "the image server answered %s", resp.Status)
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
				e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
			}
			return nil, e
		}
		return nil, fault.New(fault.Permanent, reason, "the image server answered %s", resp.Status)
	}
	if resp.ContentLength > maxBytes {
		return nil, fault.New(fault.Permanent, ReasonTooLarge, "the image is %d bytes, more than %d", resp.ContentLength, maxBytes)
	}
	// Sized from Content-Length when there is one (checked above): one
	// allocation instead of a doubling series, and room to see the end.
	buf := bytes.NewBuffer(make([]byte, 0, max(resp.ContentLength, 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBytes+1)); err != nil {
		return nil, classify(err)
	}
	body := buf.Bytes()
	if int64(len(body)) > maxBytes {
		return nil, fault.New(fault.Permanent, ReasonTooLarge, "the image is more than %d bytes", maxBytes)
	}
	// Without Content-Length the buffer grew by doubling: an image held
	// while it waits for a compression slot keeps only its own bytes
	// (compressImage's memory rule counts max_image_bytes for it).
	if cap(body)-len(body) > len(body)/8+bytes.MinRead {
		body = bytes.Clone(body)
	}
	return body, nil
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// Zero when absent or unreadable; at most an hour.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, time.Hour))
}

// classify turns a transport error into a fault with a reason.
func classify(err error) error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fault.Wrap(fault.Transient, ReasonTimeout, err, "the image server did not answer in time")
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fault.Wrap(fault.Permanent, ReasonDNS, err, "the host %q does not exist", dnsErr.Name)
	case errors.Is(err, context.Canceled):
		return fault.Wrap(fault.Transient, batch.ReasonCanceled, err, "the fetch was canceled")
	default:
		return fault.Wrap(fault.Transient, ReasonConnect, err, "fetching the image failed")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Redact hides a URL's query and credentials for display.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return fmt.Sprint(u)
}

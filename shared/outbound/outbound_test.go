package outbound

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/fault"
)

func TestGuardRefuses(t *testing.T) {
	g := Guard{}
	for _, s := range []string{
		"127.0.0.1", "0.0.0.0", "::1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
		"169.254.169.254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "fd00::1", "fe80::1",
		"224.0.0.1", "255.255.255.255", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "fd00:ec2::254",
	} {
		err := g.CheckAddr(netip.MustParseAddr(s), 80)
		if fault.ReasonOf(err) != ReasonBlocked {
			t.Errorf("%s: %v, want %s", s, err, ReasonBlocked)
		}
	}
	if err := g.CheckAddr(netip.MustParseAddr("8.8.8.8"), 443); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	if err := g.CheckAddr(netip.MustParseAddr("8.8.8.8"), 22); fault.ReasonOf(err) != ReasonBlocked {
		t.Errorf("port 22 allowed: %v", err)
	}
	if err := (Guard{AllowLoopback: true}).CheckAddr(netip.MustParseAddr("127.0.0.1"), 8090); err != nil {
		t.Errorf("loopback refused with AllowLoopback: %v", err)
	}
	if err := (Guard{AllowLoopback: true}).CheckAddr(netip.MustParseAddr("10.0.0.1"), 80); err == nil {
		t.Error("AllowLoopback admitted a private address")
	}
}

func TestFetchRefusesAtConnectTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret")) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	c := NewClient(Options{Guard: Guard{}, Timeout: 2 * time.Second})
	for _, u := range []string{
		srv.URL,                         // 127.0.0.1
		"http://localhost" + port + "/", // a name that resolves to loopback
		"http://[::1]" + port + "/",
		"http://metadata.google.internal/computeMetadata/v1/",
		"ftp://example.com/x.jpg",
	} {
		_, err := c.Fetch(context.Background(), u, 1<<20)
		if r := fault.ReasonOf(err); r != ReasonBlocked && r != ReasonScheme {
			t.Errorf("%s: %v (reason %s), want refused", u, err, r)
		}
	}
}

func TestFetch(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("0123456789")) })
	mux.HandleFunc("/404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/503", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 100)) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/to-metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/computeMetadata/v1/", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewClient(Options{Guard: Guard{AllowLoopback: true}, Timeout: 500 * time.Millisecond, MaxRedirects: 5})
	tests := []struct {
		path   string
		body   string
		reason string
		kind   fault.Kind
	}{
		{"/ok", "0123456789", "", ""},
		{"/redirect", "0123456789", "", ""},
		{"/404", "", "http_404", fault.Permanent},
		{"/503", "", "http_503", fault.Transient},
		{"/hang", "", ReasonTimeout, fault.Transient},
		{"/big", "", ReasonTooLarge, fault.Permanent},
		{"/loop", "", ReasonRedirects, fault.Permanent},
		{"/to-metadata", "", ReasonBlocked, fault.Permanent},
	}
	for _, tt := range tests {
		b, err := c.Fetch(context.Background(), srv.URL+tt.path, 50)
		if tt.reason == "" {
			if err != nil || string(b) != tt.body {
				t.Errorf("%s: %q, %v", tt.path, b, err)
			}
			continue
		}
		if fault.ReasonOf(err) != tt.reason || fault.KindOf(err) != tt.kind {
			t.Errorf("%s: %v (reason %s kind %s), want %s %s", tt.path, err, fault.ReasonOf(err), fault.KindOf(err), tt.kind, tt.reason)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("https://u:p@hooks.example/x?token=abc"); got != "https://hooks.example/x?REDACTED" {
		t.Errorf("Redact = %s", got)
	}
}

// fakeDNS resolves names from a table: what an attacker's DNS would answer.
type fakeDNS map[string][]netip.Addr

func (f fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := f[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// The table of refused targets: each refused directly and as a redirect from an
// allowed host; the allowed host itself works.
func TestGuardTable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		w.Write([]byte("allowed"))
	})}}
	srv.Start()
	defer srv.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	dns := fakeDNS{
		"allowed.example": {netip.MustParseAddr("127.0.0.2")},
		"localhost":       {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		"evil.example":    {netip.MustParseAddr("127.0.0.1")},                                  // a public name pointing home
		"mixed.example":   {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("10.0.0.1")}, // one good, one bad
	}
	c := NewClient(Options{Guard: Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}, Resolver: dns, Timeout: 2 * time.Second, MaxRedirects: 5})
	ctx := context.Background()
	if b, err := c.Fetch(ctx, "http://allowed.example:"+port+"/", 100); err != nil || string(b) != "allowed" {
		t.Fatalf("allowed host: %q, %v", b, err)
	}
	for _, target := range []string{
		"127.0.0.1", "localhost", "0.0.0.0", "[::1]", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
		"169.254.169.254", "metadata.google.internal", "[::ffff:127.0.0.1]", "[fd00::1]", "evil.example", "mixed.example",
	} {
		u := "http://" + target + ":" + port + "/"
		if _, err := c.Fetch(ctx, u, 100); fault.ReasonOf(err) != ReasonBlocked {
			t.Errorf("direct %s: %v, want %s", u, err, ReasonBlocked)
		}
		via := "http://allowed.example:" + port + "/?to=" + url.QueryEscape(u)
		if _, err := c.Fetch(ctx, via, 100); fault.ReasonOf(err) != ReasonBlocked {
			t.Errorf("redirect to %s: %v, want %s", u, err, ReasonBlocked)
		}
	}
	for _, public := range []string{"8.8.8.8", "2001:4860:4860::8888", "93.184.215.14"} {
		if err := (Guard{}).CheckAddr(netip.MustParseAddr(public), 443); err != nil {
			t.Errorf("public %s refused: %v", public, err)
		}
	}
}

// Spellings of one address are one host to the per-host cap: case, a
// trailing dot, a default port, an IP literal, another name for it. A
// different port or address is another host.
func TestHostKeyIsTheAddressDialled(t *testing.T) {
	dns := fakeDNS{
		"img.example":   {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("93.184.215.15")},
		"cdn.example":   {netip.MustParseAddr("93.184.215.14")}, // a CNAME, as the resolver answers it
		"other.example": {netip.MustParseAddr("93.184.215.15")},
		"v6.example":    {netip.MustParseAddr("2001:4860:4860::8888")},
		// Round robin: the same set in another order.
		"rr.example": {netip.MustParseAddr("93.184.215.15"), netip.MustParseAddr("93.184.215.14")},
	}
	c := NewClient(Options{Resolver: dns, MaxPerHost: 1})
	key := func(raw string) string {
		t.Helper()
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		k, _, err := c.hostKey(context.Background(), u)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return k
	}
	for want, spellings := range map[string][]string{
		"93.184.215.14:443": {"https://img.example/a.jpg", "https://IMG.Example./a.jpg", "https://img.example:443/a.jpg",
			"https://cdn.example/b.jpg", "https://93.184.215.14/c.jpg", "https://[::ffff:93.184.215.14]/c.jpg",
			"https://rr.example/d.jpg"},
		"93.184.215.14:80":           {"http://img.example/a.jpg", "http://img.example:80/a.jpg", "HTTP://CDN.EXAMPLE./x"},
		"93.184.215.14:8080":         {"http://img.example:8080/a.jpg"},
		"93.184.215.15:443":          {"https://other.example/a.jpg"},
		"[2001:4860:4860::8888]:443": {"https://v6.example/a.jpg", "https://[2001:4860:4860:0::8888]:443/"},
	} {
		for _, s := range spellings {
			if got := key(s); got != want {
				t.Errorf("%s is keyed %s, want %s", s, got, want)
			}
		}
	}
	u, _ := url.Parse("https://missing.example/a.jpg")
	if _, _, err := c.hostKey(context.Background(), u); fault.ReasonOf(err) != ReasonDNS {
		t.Errorf("a name that does not resolve: %v, want %s", err, ReasonDNS)
	}
}

// countingDNS is fakeDNS that counts its lookups.
type countingDNS struct {
	fakeDNS
	mu      sync.Mutex
	lookups int
}

func (c *countingDNS) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	c.mu.Lock()
	c.lookups++
	c.mu.Unlock()
	return c.fakeDNS.LookupNetIP(ctx, network, host)
}

// Three spellings of one loopback server, fetched at once with a cap of
// one fetch a host: the server never sees two at once, and the other two
// wait under one key. The name is looked up once per fetch: the dialer
// dials what the slot was keyed on.
func TestPerHostCapSharedBySpellings(t *testing.T) {
	var inHandler, peak atomic.Int32
	entered := make(chan struct{}, 3)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inHandler.Add(1)
		defer inHandler.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		entered <- struct{}{}
		<-release
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // before srv.Close, which waits for the handlers
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	dns := &countingDNS{fakeDNS: fakeDNS{
		"img.example": {netip.MustParseAddr("127.0.0.1")},
		"cdn.example": {netip.MustParseAddr("127.0.0.1")},
	}}
	c := NewClient(Options{Guard: Guard{AllowLoopback: true}, Resolver: dns, Timeout: 10 * time.Second, MaxPerHost: 1})
	urls := []string{"http://IMG.example.:" + port + "/a", "http://cdn.example:" + port + "/b", "http://127.0.0.1:" + port + "/c"}
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Go(func() {
			if b, err := c.Fetch(context.Background(), u, 100); err != nil || string(b) != "ok" {
				t.Errorf("%s: %q, %v", u, b, err)
			}
		})
	}
	<-entered
	// Every fetch is now in the handler or waiting for a slot: wait until
	// the client's table says so.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		users := 0
		for _, h := range c.hosts {
			users += h.users
		}
		keys := len(c.hosts)
		c.mu.Unlock()
		if users == len(urls) {
			if keys != 1 {
				t.Errorf("three spellings of one address hold %d keys, want 1", keys)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d fetches reached the client's per-host table", users, len(urls))
		}
	}
	if n := inHandler.Load(); n != 1 {
		t.Errorf("%d fetches at once reached the server, the cap is 1", n)
	}
	free()
	wg.Wait()
	if p := peak.Load(); p != 1 {
		t.Errorf("the server saw %d fetches at once, the cap is 1", p)
	}
	if dns.lookups != 2 {
		t.Errorf("%d lookups for two fetches by name, want one each", dns.lookups)
	}
}

// A body sent without Content-Length is held in a slice of its own size,
// not in the doubled buffer it was read into.
func TestFetchHoldsOnlyTheBody(t *testing.T) {
	const size = 17 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range size >> 20 {
			w.Write(chunk) // chunked: no Content-Length
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	c := NewClient(Options{Guard: Guard{AllowLoopback: true}, Timeout: 10 * time.Second})
	b, err := c.Fetch(context.Background(), srv.URL+"/x", 25<<20)
	if err != nil || len(b) != size {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	if cap(b) > size+size/8+bytes.MinRead {
		t.Errorf("a %d MiB body is held in %d MiB", size>>20, cap(b)>>20)
	}
}

package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// Sentinels standing for the user's secrets: none may appear in anything
// the command prints.
const (
	keySentinel    = "imgpipe_SENTINELkey7f3a9c"
	secretSentinel = "whsec_U0VOVElORUwtd2ViaG9vay1zZWNyZXQtNzdmM2E5Yw=="
)

// run runs the command with these variables, stdout not a terminal.
func run(t *testing.T, vars map[string]string, client *http.Client, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	code := cli.Run(context.Background(), args, cli.Env{
		Getenv: func(k string) string { return vars[k] }, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Poll: 10 * time.Millisecond, Client: client,
	})
	return code, out.String(), errb.String()
}

// echoServer answers every API call with an error whose message quotes
// the request's Authorization header, as a careless server or proxy might.
func echoServer(t *testing.T, status int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"code": "x", "message": "you sent " + r.Header.Get("Authorization"), "details": []string{r.Header.Get("Authorization")}}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// With the key and the webhook secret in the environment, no usage text,
// help text or error of any command prints either of them.
func TestNoSecretInUsageOrErrors(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(csv, []byte("Serial Number,Product Name,Input Image URLs\nA,Mug,https://example.com/a.jpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var invocations [][]string
	invocations = append(invocations, nil, []string{"help"}, []string{"-h"}, []string{"--help"}, []string{"nosuchcommand"})
	for _, cmd := range []string{"upload", "status", "report", "download", "verify-webhook"} {
		invocations = append(invocations,
			[]string{cmd, "-h"}, []string{cmd, "--help"}, []string{cmd, "--no-such-flag"}, []string{cmd},
			[]string{cmd, "a", "b", "c"}, []string{cmd, "--json"}, []string{cmd, "--key"})
	}
	invocations = append(invocations,
		[]string{"upload", csv, "--quality", "x"}, []string{"upload", csv, "--quality", "500"},
		[]string{"upload", csv, "--sizes", "thumb:0"}, []string{"upload", "/nonexistent.csv"},
		[]string{"upload", csv}, []string{"upload", csv, "--json"}, []string{"status", "r1"}, []string{"status", "r1", "--json"},
		[]string{"report", "r1"}, []string{"download", "r1", "-d", t.TempDir()},
		[]string{"verify-webhook"}, []string{"verify-webhook", "--json"})
	servers := map[string]string{
		"401 echoing":  echoServer(t, http.StatusUnauthorized).URL,
		"500 echoing":  echoServer(t, http.StatusInternalServerError).URL,
		"400 echoing":  echoServer(t, http.StatusBadRequest).URL,
		"unreachable":  "http://127.0.0.1:1",
		"not http(s)":  "ftp://example.com",
		"plain remote": "http://imgpipe.example",
	}
	checked := 0
	for serverName, base := range servers {
		vars := map[string]string{"IMGPIPE_URL": base, "IMGPIPE_API_KEY": keySentinel, "IMGPIPE_WEBHOOK_SECRET": secretSentinel}
		for _, args := range invocations {
			for _, stdin := range []string{"", "POST / HTTP/1.1\nwebhook-signature: v1,abc\n\n{}"} {
				_, out, errs := run(t, vars, nil, stdin, args...)
				for _, secret := range []string{keySentinel, secretSentinel, strings.TrimPrefix(secretSentinel, "whsec_")} {
					if strings.Contains(out, secret) || strings.Contains(errs, secret) {
						t.Errorf("%s, imgpipe %q prints a secret:\nstdout: %s\nstderr: %s", serverName, args, out, errs)
					}
				}
				checked++
			}
		}
	}
	// The checks above must have seen the texts they guard.
	_, _, errs := run(t, map[string]string{"IMGPIPE_API_KEY": keySentinel}, nil, "", "upload", "-h")
	for _, want := range []string{"-key", "IMGPIPE_API_KEY", "-insecure-http"} {
		if !strings.Contains(errs, want) {
			t.Errorf("upload -h lacks %q:\n%s", want, errs)
		}
	}
	_, _, errs = run(t, map[string]string{"IMGPIPE_URL": servers["401 echoing"], "IMGPIPE_API_KEY": keySentinel}, nil, "", "status", "r1")
	if !strings.Contains(errs, "refused the API key (401 you sent Bearer [redacted])") {
		t.Errorf("a 401 quoting the key: %s", errs)
	}
	t.Logf("%d invocations checked", checked)
}

// The key and the secret still come from the environment, and a flag
// still wins over it.
func TestSecretsComeFromTheEnvironment(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(wire.Status{RequestID: "r1", Status: "COMPLETED", Products: []wire.Product{}})
	}))
	defer srv.Close()
	vars := map[string]string{"IMGPIPE_URL": srv.URL, "IMGPIPE_API_KEY": keySentinel}
	if code, out, errs := run(t, vars, nil, "", "status", "r1"); code != cli.ExitOK {
		t.Fatalf("status: exit %d %s %s", code, out, errs)
	}
	if code, out, errs := run(t, vars, nil, "", "status", "r1", "--key", "imgpipe_fromflag"); code != cli.ExitOK {
		t.Fatalf("status --key: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := run(t, vars, nil, "", "status", "r1", "--key", ""); code != cli.ExitError || !strings.Contains(errs, "no API key") {
		t.Errorf("--key \"\" overrides the variable: exit %d %s", code, errs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != "Bearer "+keySentinel || got[1] != "Bearer imgpipe_fromflag" {
		t.Errorf("keys sent: %q", got)
	}
	if code, _, errs := run(t, map[string]string{"IMGPIPE_WEBHOOK_SECRET": secretSentinel}, nil, "POST / HTTP/1.1\nwebhook-id: m\nwebhook-timestamp: 1\nwebhook-signature: v1,abc\n\n{}", "verify-webhook"); code != cli.ExitError || !strings.Contains(errs, "does not verify") {
		t.Errorf("verify-webhook with the secret in the environment: exit %d %s", code, errs)
	}
	if code, _, errs := run(t, nil, nil, "", "verify-webhook"); code != cli.ExitError || !strings.Contains(errs, "IMGPIPE_WEBHOOK_SECRET") {
		t.Errorf("verify-webhook without a secret: exit %d %s", code, errs)
	}
}

// recorder is a transport that answers every request itself, the way an
// API on any host would, and records where each went and with what key.
type recorder struct {
	mu       sync.Mutex
	requests []string // "URL key"
	answer   func(r *http.Request) *http.Response
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.requests = append(rt.requests, r.URL.String()+" "+r.Header.Get("Authorization"))
	rt.mu.Unlock()
	if rt.answer != nil {
		if resp := rt.answer(r); resp != nil {
			return resp, nil
		}
	}
	b, _ := json.Marshal(wire.Status{RequestID: "r1", Status: "COMPLETED", Products: []wire.Product{}})
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
}

func (rt *recorder) sent() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.requests...)
}

// The key goes over http:// only to this machine, unless the user passes
// --insecure-http; https:// goes anywhere.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	cases := []struct {
		base     string
		flags    []string
		allowed  bool
		scenario string
	}{
		{"http://imgpipe.example", nil, false, "another host over http"},
		{"http://10.0.0.7:8080", nil, false, "a private address over http"},
		{"http://127.0.0.2.nip.io:8080", nil, false, "a name that looks like loopback"},
		{"http://[::ffff:10.0.0.1]:8080", nil, false, "a mapped non-loopback address"},
		{"http://imgpipe.example", []string{"--insecure-http"}, true, "another host over http, with --insecure-http"},
		{"https://imgpipe.example", nil, true, "https"},
		{"http://127.0.0.1:8080", nil, true, "127.0.0.1"},
		{"http://127.9.8.7:8080", nil, true, "elsewhere in 127.0.0.0/8"},
		{"http://[::1]:8080", nil, true, "::1"},
		{"http://localhost:8080", nil, true, "localhost"},
		{"http://LOCALHOST.:8080", nil, true, "localhost, upper case, trailing dot"},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			rt := &recorder{}
			vars := map[string]string{"IMGPIPE_URL": tc.base, "IMGPIPE_API_KEY": keySentinel}
			code, out, errs := run(t, vars, &http.Client{Transport: rt}, "", append([]string{"status", "r1"}, tc.flags...)...)
			sent := rt.sent()
			if tc.allowed {
				if code != cli.ExitOK || len(sent) != 1 || !strings.HasSuffix(sent[0], "Bearer "+keySentinel) {
					t.Errorf("exit %d, requests %q: %s %s", code, sent, out, errs)
				}
				return
			}
			if code != cli.ExitError || len(sent) != 0 {
				t.Errorf("exit %d, requests %q, want 1 and none", code, sent)
			}
			for _, want := range []string{"http://", "--insecure-http", "https://"} {
				if !strings.Contains(errs, want) {
					t.Errorf("the refusal lacks %q: %s", want, errs)
				}
			}
		})
	}
}

// An https:// API that redirects to http:// on another machine does not
// get the key resent in clear text.
func TestRedirectToPlainHTTPRefused(t *testing.T) {
	rt := &recorder{answer: func(r *http.Request) *http.Response {
		if r.URL.Scheme == "https" {
			return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {"http://imgpipe.example" + r.URL.RequestURI()}},
				Body: io.NopCloser(strings.NewReader("")), Request: r}
		}
		return nil
	}}
	vars := map[string]string{"IMGPIPE_URL": "https://imgpipe.example", "IMGPIPE_API_KEY": keySentinel}
	code, _, errs := run(t, vars, &http.Client{Transport: rt}, "", "status", "r1")
	sent := rt.sent()
	if code != cli.ExitError || len(sent) != 1 || !strings.HasPrefix(sent[0], "https://") || !strings.Contains(errs, "--insecure-http") {
		t.Errorf("exit %d, requests %q: %s", code, sent, errs)
	}
	code, _, errs = run(t, vars, &http.Client{Transport: rt}, "", "status", "r1", "--insecure-http")
	if sent := rt.sent(); code != cli.ExitOK || len(sent) != 3 || !strings.HasPrefix(sent[2], "http://imgpipe.example/") {
		t.Errorf("with --insecure-http: exit %d, requests %q: %s", code, sent, errs)
	}
}

// hostileAPI fakes the status answer of a request whose serial numbers and
// size names try to escape the download folder, name devices, or collide
// once made safe. Every output link answers a distinct body.
func hostileAPI(t *testing.T) (*httptest.Server, int) {
	long := strings.Repeat("x", 5000)
	serials := []string{"../../etc/x", "a/b", "a_b", "A_B", "..", ".", "", "CON", "con.txt", "nul\x00byte", long, long + "y",
		`\windows\system32`, "c:evil", "-rf", "日本", "p-1", "p", ".hidden", "/abs"}
	sizeNames := []string{"../../../escape", "..", "a/b", "a_b", "1", "NUL", strings.Repeat("s", 3000), "\x00"}
	var srv *httptest.Server
	var mu sync.Mutex
	links := 0
	link := func() string { links++; return fmt.Sprintf("%s/o/%d", srv.URL, links) }
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/o/") {
			fmt.Fprintf(w, "output %s", strings.TrimPrefix(r.URL.Path, "/o/"))
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/api/status/") {
			http.NotFound(w, r)
			return
		}
		links = 0
		s := wire.Status{RequestID: "r1", Status: "COMPLETED"}
		for _, serial := range serials {
			p := wire.Product{SerialNumber: serial, OutputImageURLs: []string{link(), link()}}
			if serial == "p" {
				// p's image 1 in size "1" is p-1-1, as is p-1's image 1.
				p.Outputs = []wire.ImageOutputs{{Index: 0, Sizes: map[string]wire.Size{}}}
				for _, n := range sizeNames {
					p.Outputs[0].Sizes[n] = wire.Size{URL: link()}
				}
			}
			s.Products = append(s.Products, p)
		}
		s.TotalImages = 2 * len(serials)
		s.ProcessedImages = s.TotalImages
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(srv.Close)
	return srv, 2*len(serials) + len(sizeNames)
}

// Every downloaded file lands inside the folder, under a bounded name of
// safe characters, and no output overwrites another, whatever names the
// server sends.
func TestDownloadNamesFromAHostileServer(t *testing.T) {
	srv, want := hostileAPI(t)
	top := t.TempDir()
	dir := filepath.Join(top, "deep", "out")
	code, out, errs := run(t, map[string]string{"IMGPIPE_URL": srv.URL, "IMGPIPE_API_KEY": keySentinel}, nil, "", "download", "r1", "-d", dir)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	safe := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._~-]*\.jpg$`)
	device := regexp.MustCompile(`(?i)^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\.|$)`)
	bodies := map[string]string{}
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		name := filepath.Base(path)
		switch {
		case filepath.Dir(path) != dir:
			t.Errorf("%s is outside the download folder", path)
		case !filepath.IsLocal(rel) || !safe.MatchString(name) || device.MatchString(name):
			t.Errorf("unsafe name %q", name)
		case len(name) > 140:
			t.Errorf("name of %d bytes: %q", len(name), name)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if other, ok := bodies[string(b)]; ok {
			t.Errorf("%s and %s hold the same output", other, name)
		}
		bodies[string(b)] = name
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != want {
		t.Errorf("%d distinct outputs on disk, want %d (one overwrote another):\n%s", len(bodies), want, out)
	}
	// The names stay recognisable: the serial first, then the image number.
	for _, name := range []string{"a_b-1.jpg", "a_b-1~2.jpg", "A_B-1~3.jpg", "_CON-1.jpg", "p-1-1.jpg", "p-1-1~2.jpg", "p-1-_..jpg", "p-1-_NUL.jpg", "product-1.jpg"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("expected %s: %v", name, err)
		}
	}
}

// A symbolic link planted in the download folder does not lead a download
// out of it.
func TestDownloadDoesNotFollowLinksOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/o/1" {
			fmt.Fprint(w, "output")
			return
		}
		_ = json.NewEncoder(w).Encode(wire.Status{RequestID: "r1", Status: "COMPLETED", TotalImages: 1, ProcessedImages: 1,
			Products: []wire.Product{{SerialNumber: "s", OutputImageURLs: []string{"http://" + r.Host + "/o/1"}}}})
	}))
	defer srv.Close()
	top := t.TempDir()
	dir := filepath.Join(top, "out")
	victim := filepath.Join(top, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "s-1.jpg")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	code, _, errs := run(t, map[string]string{"IMGPIPE_URL": srv.URL, "IMGPIPE_API_KEY": keySentinel}, nil, "", "download", "r1", "-d", dir)
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the download wrote through a link out of its folder (exit %d, %s)", code, errs)
	}
	if code != cli.ExitError || !strings.Contains(errs, "creating") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

// A server whose status pages never advance ends download, and the
// failure count of upload --wait, with an error instead of a loop.
func TestStatusPagesThatDoNotAdvance(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(csv, []byte("Serial Number,Product Name,Input Image URLs\nA,Mug,https://example.com/a.jpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"download", "r1", "-d", t.TempDir()}, {"upload", csv, "--wait"}} {
		calls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				fmt.Fprint(w, `{"requestId":"r1","status":"PENDING","totalImages":1}`)
				return
			}
			calls++
			s := wire.Status{RequestID: "r1", Status: "COMPLETED", TotalImages: 1, FailedImages: 1}
			if calls < 100 { // then it gives up, so that a client that loops still ends
				next := 0
				s.Page.NextOffset = &next
			}
			_ = json.NewEncoder(w).Encode(s)
		}))
		code, _, errs := run(t, map[string]string{"IMGPIPE_URL": srv.URL, "IMGPIPE_API_KEY": keySentinel}, nil, "", args...)
		srv.Close()
		if code != cli.ExitError || calls > 3 || !strings.Contains(errs, "do not advance") {
			t.Errorf("%s: exit %d after %d status calls: %s", args[0], code, calls, errs)
		}
	}
}

package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// errorAPI answers every call with status and body, and the headers.
func errorAPI(t *testing.T, status int, body string, headers map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func errorJSON(code, message, requestID string, details ...string) string {
	b, _ := json.Marshal(wire.ErrorBody{Error: wire.ErrorDetail{Code: code, Message: message, Details: details}, RequestID: requestID})
	return string(b)
}

// Every refusal of the API exits 1 with a message that quotes the server
// and says what to do next; with --json the same message is on stdout.
func TestAPIErrorMessages(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		headers map[string]string
		want    []string
	}{
		{"refused key", 401, errorJSON("unauthenticated", "unknown API key", ""), nil,
			[]string{"the server refused the API key (401 unknown API key)", "IMGPIPE_API_KEY or --key"}},
		{"not found", 404, errorJSON("not_found", `request "r1" not found`, ""), nil,
			[]string{`not found (404): request "r1" not found`, "check the request ID"}},
		{"rate limited", 429, errorJSON("rate_limited", "slow down", ""), map[string]string{"Retry-After": "7"},
			[]string{"too many requests (429): slow down; retry in 7 s"}},
		{"rate limited, no Retry-After", 429, errorJSON("rate_limited", "slow down", ""), nil,
			[]string{"retry in a few s"}},
		{"refused upload", 400, errorJSON("invalid", "invalid CSV", "", "line 2: no serial number", "line 3, column 3: not a URL"), nil,
			[]string{"the server refused the upload (400): invalid CSV\n  line 2: no serial number\n  line 3, column 3: not a URL\nfix the file"}},
		{"too large", 413, errorJSON("too_large", "body over 30 MiB", ""), nil,
			[]string{"the server refused the upload (413): body over 30 MiB"}},
		{"server failure", 500, errorJSON("internal", "internal error", "req-9"), nil,
			[]string{"the server failed (500): internal error (request req-9); try again in a minute"}},
		{"not JSON", 502, "<html>bad gateway</html>", nil,
			[]string{"the server failed (502): <html>bad gateway</html>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := errorAPI(t, tc.status, tc.body, tc.headers)
			vars := map[string]string{"IMGPIPE_URL": srv.URL, "IMGPIPE_API_KEY": keySentinel}
			code, out, errs := run(t, vars, nil, "", "status", "r1")
			for _, want := range tc.want {
				if code != cli.ExitError || !strings.Contains(errs, want) {
					t.Errorf("exit %d, stderr %q, want %q", code, errs, want)
				}
			}
			if out != "" {
				t.Errorf("stdout without --json: %q", out)
			}
			code, out, _ = run(t, vars, nil, "", "status", "r1", "--json")
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(out), &e); err != nil || code != cli.ExitError || !strings.Contains(e.Error, tc.want[0]) {
				t.Errorf("--json: exit %d, stdout %q (%v)", code, out, err)
			}
		})
	}
}

// Without a usable server the command says which setting to fix, and
// sends nothing.
func TestServerSettingsAndReach(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	garbled := errorAPI(t, 200, "this is not JSON", nil)
	cases := []struct {
		name   string
		vars   map[string]string
		client *http.Client
		want   string
	}{
		{"no URL", map[string]string{"IMGPIPE_API_KEY": keySentinel}, nil, "no server: set IMGPIPE_URL or --url"},
		{"not http", map[string]string{"IMGPIPE_URL": "ftp://example.com", "IMGPIPE_API_KEY": keySentinel}, nil, `--url "ftp://example.com" is not an http(s) URL`},
		{"no key", map[string]string{"IMGPIPE_URL": "http://127.0.0.1:1"}, nil, "no API key: set IMGPIPE_API_KEY or --key"},
		{"unreachable", map[string]string{"IMGPIPE_URL": "http://127.0.0.1:1", "IMGPIPE_API_KEY": keySentinel}, nil,
			"cannot reach http://127.0.0.1:1"},
		{"too slow", map[string]string{"IMGPIPE_URL": slow.URL, "IMGPIPE_API_KEY": keySentinel}, &http.Client{Timeout: 100 * time.Millisecond},
			"did not answer in time"},
		{"not the API", map[string]string{"IMGPIPE_URL": garbled.URL, "IMGPIPE_API_KEY": keySentinel}, nil,
			"is not an imgpipe status"},
	}
	for _, tc := range cases {
		code, out, errs := run(t, tc.vars, tc.client, "", "status", "r1")
		if code != cli.ExitError || !strings.Contains(errs, tc.want) || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q, want %q", tc.name, code, out, errs, tc.want)
		}
	}
}

// The usage text goes to stderr; asking for it is success, anything the
// command does not know is exit 1.
func TestUsageAndArguments(t *testing.T) {
	api := newFakeAPI(t, 10)
	cases := []struct {
		args []string
		want int
		text string
	}{
		{nil, cli.ExitError, "imgpipe upload FILE.csv"},
		{[]string{"help"}, cli.ExitOK, "Exit codes: 0 every image done"},
		{[]string{"--help"}, cli.ExitOK, "imgpipe download ID -d DIR"},
		{[]string{"compress", "x"}, cli.ExitError, `unknown command "compress"`},
		{[]string{"status"}, cli.ExitError, "status takes a request ID: imgpipe status ID"},
		{[]string{"status", "a", "b"}, cli.ExitError, "status takes a request ID"},
		{[]string{"report"}, cli.ExitError, "report takes a request ID"},
		{[]string{"download", "r1"}, cli.ExitError, "download takes a request ID and a folder"},
		{[]string{"upload"}, cli.ExitError, "upload takes one file"},
		{[]string{"verify-webhook", "file"}, cli.ExitError, "verify-webhook reads the delivery from standard input"},
		{[]string{"status", "r1", "--no-such-flag"}, cli.ExitError, "flag provided but not defined: -no-such-flag"},
		{[]string{"status", "-h"}, cli.ExitOK, "-insecure-http"},
		{[]string{"upload", "--help"}, cli.ExitOK, "-max-width"},
	}
	for _, tc := range cases {
		code, out, errs := run(t, api.vars(), nil, "", tc.args...)
		if code != tc.want || !strings.Contains(errs, tc.text) || out != "" {
			t.Errorf("imgpipe %q: exit %d (want %d), stdout %q, stderr %q, want %q", tc.args, code, tc.want, out, errs, tc.text)
		}
	}
	if calls := api.sent("/"); len(calls) != 0 {
		t.Errorf("calls sent: %+v", calls)
	}
}

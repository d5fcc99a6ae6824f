package cli_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/shared/webhook"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// delivery is a signed delivery of a finished request, as a receiver
// captures it: the request line, headers and body, lines ending in eol.
// With indent, the body is indented JSON whose lines end in eol too.
func delivery(t *testing.T, eol string, indent bool) (capture, body string) {
	t.Helper()
	s, err := webhook.NewSigner([]string{secretSentinel})
	if err != nil {
		t.Fatal(err)
	}
	p := wire.WebhookPayload{Event: webhook.EventCompleted, RequestID: "r1", Status: "COMPLETED",
		TotalImages: 3, ProcessedImages: 2, FailedImages: 1, Products: []wire.WebhookProduct{}}
	b, _ := json.Marshal(p)
	if indent {
		b, _ = json.MarshalIndent(p, "", "  ")
		b = []byte(strings.ReplaceAll(string(b), "\n", eol))
	}
	h, err := s.Headers(webhook.MessageID("r1", webhook.EventCompleted), time.Now(), b)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(append([]string{"POST /hook HTTP/1.1"}, headerLines(h)...), eol) + eol + eol + string(b), string(b)
}

func headerLines(h http.Header) []string {
	var lines []string
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	sort.Strings(lines)
	return lines
}

// verify-webhook accepts a delivery signed with the secret, captured with
// or without the request line, in LF or CRLF, and refuses one whose body
// changed or that lacks what it needs, saying why.
func TestVerifyWebhook(t *testing.T) {
	vars := map[string]string{"IMGPIPE_WEBHOOK_SECRET": secretSentinel}
	crlf, body := delivery(t, "\r\n", false)
	lf, _ := delivery(t, "\n", false)
	bare := lf[strings.Index(lf, "\n")+1:]
	indented, _ := delivery(t, "\r\n", true)
	for name, stdin := range map[string]string{"CRLF": crlf, "LF": lf, "no request line": bare, "CRLF in the body": indented} {
		code, out, errs := run(t, vars, nil, stdin, "verify-webhook")
		want := "valid: delivery msg_r1_request_completed, request.completed for request r1 (COMPLETED: 2 processed, 1 failed)\n"
		if code != cli.ExitOK || out != want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out, errs)
		}
	}
	code, out, _ := run(t, vars, nil, crlf, "verify-webhook", "--json")
	var got struct {
		Valid     bool
		WebhookID string
		Payload   wire.WebhookPayload
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != cli.ExitOK || !got.Valid || got.WebhookID != "msg_r1_request_completed" || got.Payload.FailedImages != 1 {
		t.Errorf("--json: exit %d, %+v (%v)", code, got, err)
	}

	head := lf[:strings.Index(lf, "\n\n")]
	cases := []struct {
		name, stdin, want string
		vars              map[string]string
	}{
		{"changed body", strings.Replace(crlf, `"failedImages":1`, `"failedImages":0`, 1), "the delivery does not verify", vars},
		{"another secret", crlf, "the delivery does not verify", map[string]string{"IMGPIPE_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		{"no blank line", strings.Replace(lf, "\n\n", "\n", 1), "no blank line between headers and body", vars},
		{"no signature", strings.Replace(lf, "Webhook-Signature", "X-Other", 1), "no webhook-signature header", vars},
		{"no colon", head + "\nnot a header\n\n" + body, `header line 6 "not a header" has no colon`, vars},
		{"not a secret", crlf, "--secret is not a webhook secret", map[string]string{"IMGPIPE_WEBHOOK_SECRET": "hunter2"}},
	}
	for _, tc := range cases {
		code, out, errs := run(t, tc.vars, nil, tc.stdin, "verify-webhook")
		if code != cli.ExitError || !strings.Contains(errs, tc.want) || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q, want %q", tc.name, code, out, errs, tc.want)
		}
	}
}

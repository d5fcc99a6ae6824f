package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/imgpipe/imgpipe/shared/webhook"
)

// verifyWebhook checks a captured delivery: an HTTP request as received
// (request line, headers, body), or a bare body with the webhook-* headers
// given as "Name: value" lines before a blank line.
func (c *command) verifyWebhook(args []string, secret string) (int, error) {
	if len(args) != 0 {
		return ExitError, errors.New("verify-webhook reads the delivery from standard input: imgpipe verify-webhook --secret whsec_... < delivery.http")
	}
	if secret == "" {
		return ExitError, errors.New("no secret: set IMGPIPE_WEBHOOK_SECRET or pass --secret whsec_..., the secret the operator gave you")
	}
	v, err := webhook.NewVerifier(secret)
	if err != nil {
		return ExitError, fmt.Errorf("--secret is not a webhook secret (%v): it looks like whsec_ followed by base64", err)
	}
	raw, err := io.ReadAll(io.LimitReader(c.env.Stdin, 64<<20))
	if err != nil {
		return ExitError, fmt.Errorf("reading the delivery: %w", err)
	}
	h, body, err := parseDelivery(raw)
	if err != nil {
		return ExitError, err
	}
	p, err := v.Verify(body, h)
	if err != nil {
		return ExitError, fmt.Errorf("the delivery does not verify: %v (the wrong secret, a changed body, or a timestamp over 5 minutes old)", err)
	}
	if c.json {
		_ = json.NewEncoder(c.env.Stdout).Encode(map[string]any{"valid": true, "webhookId": h.Get(webhook.HeaderID), "payload": p})
		return ExitOK, nil
	}
	c.out("valid: delivery %s, %s for request %s (%s: %d processed, %d failed)\n",
		h.Get(webhook.HeaderID), p.Event, p.RequestID, p.Status, p.ProcessedImages, p.FailedImages)
	return ExitOK, nil
}

// parseDelivery splits a captured delivery into headers and body.
func parseDelivery(raw []byte) (http.Header, []byte, error) {
	norm := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	head, body, ok := bytes.Cut(norm, []byte("\n\n"))
	if !ok {
		return nil, nil, errors.New("the delivery has no blank line between headers and body: capture the whole request")
	}
	h := http.Header{}
	for i, line := range strings.Split(string(head), "\n") {
		if i == 0 && (strings.HasPrefix(line, "POST ") || strings.HasPrefix(line, "PUT ")) {
			continue // the request line
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, fmt.Errorf("header line %d %q has no colon", i+1, line)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if h.Get(webhook.HeaderSignature) == "" {
		return nil, nil, fmt.Errorf("the delivery has no %s header: capture the headers as well as the body", webhook.HeaderSignature)
	}
	// The body is exactly what was sent: take it from the raw bytes.
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 && bytes.Equal(bytes.ReplaceAll(raw[:i], []byte("\r\n"), []byte("\n")), head) {
		body = raw[i+4:]
	}
	return h, body, nil
}

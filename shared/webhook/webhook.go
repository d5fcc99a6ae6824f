// Package webhook is how imgpipe signs what it sends when a request
// finishes, and how a receiver checks it: a JSON payload (wire.WebhookPayload)
// signed per the Standard Webhooks spec
// (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256
// of "id.timestamp.body">), using the Standard Webhooks Go library.
//
// A receiver in Go:
//
//	v, _ := webhook.NewVerifier(os.Getenv("IMGPIPE_WEBHOOK_SECRET"))
//	body, _ := io.ReadAll(r.Body)
//	p, err := v.Verify(body, r.Header) // signature and a 5-minute timestamp window
//	// then drop duplicates by r.Header.Get("webhook-id")
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imgpipe/imgpipe/shared/wire"
)

// Event names.
const EventCompleted = "request.completed"

// Header names (Standard Webhooks).
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// MessageID is the webhook-id of a request's event: the same for every
// attempt and redelivery, so receivers can drop duplicates.
func MessageID(requestID, event string) string {
	return "msg_" + requestID + "_" + strings.ReplaceAll(event, ".", "_")
}

// Signer signs with one or more secrets (whsec_…): every signature goes in
// the header, so a receiver keeps working while secrets rotate.
type Signer struct {
	hooks []*standardwebhooks.Webhook
}

// NewSigner parses the secrets.
func NewSigner(secrets []string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("webhook: no signing secret")
	}
	s := &Signer{}
	for i, sec := range secrets {
		h, err := standardwebhooks.NewWebhook(sec)
		if err != nil {
			return nil, fmt.Errorf("webhook: secret %d: %w", i+1, err)
		}
		s.hooks = append(s.hooks, h)
	}
	return s, nil
}

// Headers returns the Standard Webhooks headers for body sent now.
func (s *Signer) Headers(id string, now time.Time, body []byte) (http.Header, error) {
	sigs := make([]string, 0, len(s.hooks))
	for _, h := range s.hooks {
		sig, err := h.Sign(id, now, body)
		if err != nil {
			return nil, fmt.Errorf("standardwebhooks.Sign: %w", err)
		}
		sigs = append(sigs, sig)
	}
	hd := http.Header{}
	hd.Set(HeaderID, id)
	hd.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	hd.Set(HeaderSignature, strings.Join(sigs, " "))
	hd.Set("Content-Type", "application/json")
	return hd, nil
}

// Verifier checks deliveries for a receiver.
type Verifier struct {
	hooks []*standardwebhooks.Webhook
}

// NewVerifier accepts a delivery signed with any of secrets.
func NewVerifier(secrets ...string) (*Verifier, error) {
	s, err := NewSigner(secrets)
	if err != nil {
		return nil, err
	}
	return &Verifier{hooks: s.hooks}, nil
}

// Verify checks the signature and that the timestamp is within 5 minutes of
// now, then decodes the payload.
func (v *Verifier) Verify(body []byte, h http.Header) (wire.WebhookPayload, error) {
	var errs []error
	for _, hook := range v.hooks {
		err := hook.Verify(body, h)
		if err == nil {
			var p wire.WebhookPayload
			if err := json.Unmarshal(body, &p); err != nil {
				return p, fmt.Errorf("webhook: payload: %w", err)
			}
			return p, nil
		}
		errs = append(errs, err)
	}
	return wire.WebhookPayload{}, fmt.Errorf("webhook: %w", errors.Join(errs...))
}

package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/wire"
)

const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_aW1ncGlwZS1sb2NhbC1kZXZlbG9wbWVudC1zZWNyZXQ="
)

func TestSignAndVerify(t *testing.T) {
	body, _ := json.Marshal(wire.WebhookPayload{Event: EventCompleted, RequestID: "r1", Status: "COMPLETED", TotalImages: 2, ProcessedImages: 1, FailedImages: 1})
	s, err := NewSigner([]string{secretA, secretB})
	if err != nil {
		t.Fatal(err)
	}
	id := MessageID("r1", EventCompleted)
	h, err := s.Headers(id, time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	if id != "msg_r1_request_completed" || len(strings.Fields(h.Get(HeaderSignature))) != 2 {
		t.Errorf("id %q signature %q", id, h.Get(HeaderSignature))
	}
	for _, sec := range []string{secretA, secretB} { // a receiver knowing either secret
		v, _ := NewVerifier(sec)
		p, err := v.Verify(body, h)
		if err != nil || p.RequestID != "r1" || p.FailedImages != 1 {
			t.Errorf("verify with %s: %+v, %v", sec[:10], p, err)
		}
	}

	tests := []struct {
		name string
		body []byte
		h    func() http.Header
	}{
		{"tampered body", []byte(strings.Replace(string(body), `"failedImages":1`, `"failedImages":0`, 1)), func() http.Header { return h }},
		{"old timestamp", body, func() http.Header {
			old, _ := s.Headers(id, time.Now().Add(-6*time.Minute), body)
			return old
		}},
		{"other id", body, func() http.Header {
			c := h.Clone()
			c.Set(HeaderID, "msg_other")
			return c
		}},
		{"no signature", body, func() http.Header {
			c := h.Clone()
			c.Del(HeaderSignature)
			return c
		}},
	}
	v, _ := NewVerifier(secretA)
	for _, tt := range tests {
		if _, err := v.Verify(tt.body, tt.h()); err == nil {
			t.Errorf("%s: verified", tt.name)
		}
	}
	other, _ := NewVerifier("whsec_" + strings.Repeat("QUFB", 8))
	if _, err := other.Verify(body, h); err == nil {
		t.Error("verified with a wrong secret")
	}
}

// A known vector, so receivers in other languages can check their code.
func TestKnownSignature(t *testing.T) {
	s, _ := NewSigner([]string{secretA})
	h, _ := s.Headers("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if got, want := h.Get(HeaderSignature), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature %s, want %s (the Standard Webhooks spec's example)", got, want)
	}
}

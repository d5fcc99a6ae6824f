package viewlink

import (
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old, _ := NewSigner([]string{"whsec_old"})
	s, err := NewSigner([]string{"whsec_new", "whsec_old"})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.Token("req1", now.Add(time.Hour))
	flip := []byte(tok)
	flip[len(flip)-3] ^= 1
	cases := []struct {
		name  string
		id    string
		token string
		at    time.Time
		ok    bool
	}{
		{"its own request, in time", "req1", tok, now, true},
		{"another request", "req2", tok, now, false},
		{"expired", "req1", tok, now.Add(2 * time.Hour), false},
		{"one character changed", "req1", string(flip), now, false},
		{"truncated", "req1", tok[:len(tok)-2], now, false},
		{"empty", "req1", "", now, false},
		{"not base64", "req1", strings.Repeat("*", len(tok)), now, false},
		{"signed with the older secret", "req1", old.Token("req1", now.Add(time.Hour)), now, true},
		{"signed with an unknown secret", "req1", mustSigner(t, "whsec_other").Token("req1", now.Add(time.Hour)), now, false},
	}
	for _, tc := range cases {
		if err := s.Check(tc.id, tc.token, tc.at); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := NewSigner(nil); err == nil {
		t.Error("a signer without secrets")
	}
}

func mustSigner(t *testing.T, s string) *Signer {
	t.Helper()
	sg, err := NewSigner([]string{s})
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

package viewlink

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func key(c byte) []byte { return bytes.Repeat([]byte{c}, 32) }

func TestTokens(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old := mustSigner(t, key('o'))
	s := mustSigner(t, key('n'), key('o'))
	tok := s.Token("req1", "ownerA", now.Add(time.Hour))
	flip := []byte(tok)
	flip[len(flip)-3] ^= 1
	cases := []struct {
		name, id, owner, token string
		at                     time.Time
		ok                     bool
	}{
		{"its own request and owner, in time", "req1", "ownerA", tok, now, true},
		{"another request", "req2", "ownerA", tok, now, false},
		{"another owner", "req1", "ownerB", tok, now, false},
		{"expired", "req1", "ownerA", tok, now.Add(2 * time.Hour), false},
		{"one character changed", "req1", "ownerA", string(flip), now, false},
		{"truncated", "req1", "ownerA", tok[:len(tok)-2], now, false},
		{"empty", "req1", "ownerA", "", now, false},
		{"not base64", "req1", "ownerA", strings.Repeat("*", len(tok)), now, false},
		{"very long", "req1", "ownerA", strings.Repeat("A", 1<<20), now, false},
		{"signed with the older key", "req1", "ownerA", old.Token("req1", "ownerA", now.Add(time.Hour)), now, true},
		{"signed with an unknown key", "req1", "ownerA", mustSigner(t, key('x')).Token("req1", "ownerA", now.Add(time.Hour)), now, false},
	}
	for _, tc := range cases {
		c, err := s.Check(tc.id, tc.token, tc.at)
		if err == nil {
			err = c.Owner(tc.owner)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	// The last character's spare bits: another spelling of the same bytes.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[len(tok)-1])
	respelt := tok[:len(tok)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1])
	if _, err := s.Check("req1", respelt, now); err == nil {
		t.Error("a second spelling of a token was admitted")
	}
	if _, err := NewSigner(nil); err == nil {
		t.Error("a signer without keys")
	}
	if _, err := NewSigner([][]byte{[]byte("short")}); err == nil {
		t.Error("a signer with a 5-byte key")
	}
	if (Checked{}).Owner("ownerA") == nil {
		t.Error("an unchecked token confirmed an owner")
	}
}

// A receiver of webhooks holds the webhook secret, and could mint tokens
// the way links were once derived from it: an HMAC of a label under the
// secret, then expiry and request ID. None of them opens a page.
func TestTokenFromWebhookSecretRefused(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	secret := "whsec_aW1ncGlwZS1sb2NhbC1kZXZlbG9wbWVudC1zZWNyZXQ="
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("imgpipe view link v1"))
	derived := m.Sum(nil)
	exp := uint64(now.Add(100 * 365 * 24 * time.Hour).Unix())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], exp)
	tm := hmac.New(sha256.New, derived)
	tm.Write(b[:])
	tm.Write([]byte("req1"))
	legacy := base64.RawURLEncoding.EncodeToString(append(b[:], tm.Sum(nil)...))
	s := mustSigner(t, key('n'))
	if _, err := s.Check("req1", legacy, now); err == nil {
		t.Error("a token derived from the webhook secret was admitted")
	}
	// Nor does the same secret used as the key of this scheme.
	forged := mustSigner(t, derived).Token("req1", "ownerA", now.Add(time.Hour))
	if _, err := s.Check("req1", forged, now); err == nil {
		t.Error("a token signed with a key derived from the webhook secret was admitted")
	}
}

func mustSigner(t *testing.T, keys ...[]byte) *Signer {
	t.Helper()
	sg, err := NewSigner(keys)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

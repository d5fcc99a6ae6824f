// Package viewlink signs and checks the read-only links to a request's
// status page: the link carries a token, an expiry and an HMAC-SHA256 of
// the request ID and that expiry, so a person can open the page without an
// API key, and the token opens that one request only, until it expires.
//
// The signing keys are derived from the webhook secrets (an HMAC of a fixed
// label under each), so no other secret is kept: the newest secret signs,
// any of them verifies, and rotating the webhook secrets rotates the links.
package viewlink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// label separates these keys from any other use of the secrets.
const label = "imgpipe view link v1"

// Signer makes and checks view tokens.
type Signer struct {
	keys [][]byte // keys[0] signs
}

// NewSigner derives the signing keys from secrets, newest first.
func NewSigner(secrets []string) (*Signer, error) {
	var keys [][]byte
	for _, s := range secrets {
		if s = strings.TrimSpace(s); s != "" {
			m := hmac.New(sha256.New, []byte(s))
			m.Write([]byte(label))
			keys = append(keys, m.Sum(nil))
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("viewlink: no secret to derive a key from")
	}
	return &Signer{keys: keys}, nil
}

func mac(key []byte, id string, exp uint64) []byte {
	m := hmac.New(sha256.New, key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], exp)
	m.Write(b[:])
	m.Write([]byte(id))
	return m.Sum(nil)
}

// Token is a token for request id, valid until expires.
func (s *Signer) Token(id string, expires time.Time) string {
	exp := uint64(expires.Unix())
	b := make([]byte, 8, 8+sha256.Size)
	binary.BigEndian.PutUint64(b, exp)
	b = append(b, mac(s.keys[0], id, exp)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrInvalid is every refusal: the caller answers all of them the same.
var ErrInvalid = errors.New("viewlink: invalid or expired token")

// Check admits token for request id at now.
func (s *Signer) Check(id, token string, now time.Time) error {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 8+sha256.Size {
		return ErrInvalid
	}
	exp := binary.BigEndian.Uint64(b[:8])
	ok := false
	for _, k := range s.keys {
		ok = ok || hmac.Equal(b[8:], mac(k, id, exp))
	}
	if !ok || now.After(time.Unix(int64(exp), 0)) {
		return ErrInvalid
	}
	return nil
}

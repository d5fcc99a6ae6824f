// Package viewlink signs and checks the read-only links to a request's
// status page: the link carries a token that opens one request's page,
// without an API key, until it expires.
//
// The keys are the server's own (IMGPIPE_VIEW_LINK_KEYS): nobody outside
// the functions holds them, unlike the webhook secrets, which every
// receiver has. A token is bound to its request, to the API key that owns
// the request and to its expiry:
//
//	token = base64url(expiry ‖ tagID ‖ tagOwner)
//	tagID    = HMAC-SHA256(key, "id" ‖ expiry ‖ requestID)[:16]
//	tagOwner = HMAC-SHA256(key, "owner" ‖ expiry ‖ len(requestID) ‖ requestID ‖ ownerKeyID)[:16]
//
// tagID is checked before anything is read (a forged token costs no
// database read); tagOwner once the request, and so its owner, is known.
// The caller then checks that the owner's key is not revoked: revoking a
// key revokes its links. The first key signs, any of them verifies, so
// keys rotate without breaking links until the old key is dropped.
package viewlink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// tagSize is the length of each truncated HMAC: 128 bits.
const tagSize = 16

// tokenSize is the decoded length of a token.
const tokenSize = 8 + 2*tagSize

// Signer makes and checks view tokens.
type Signer struct {
	keys [][]byte // keys[0] signs
}

// NewSigner uses keys, newest first; each must be at least 32 bytes.
func NewSigner(keys [][]byte) (*Signer, error) {
	var out [][]byte
	for _, k := range keys {
		if len(k) < 32 {
			return nil, errors.New("viewlink: a key is shorter than 32 bytes")
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("viewlink: no key")
	}
	return &Signer{keys: out}, nil
}

func tagID(key []byte, id string, exp uint64) []byte {
	m := hmac.New(sha256.New, key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], exp)
	m.Write([]byte("id"))
	m.Write(b[:])
	m.Write([]byte(id))
	return m.Sum(nil)[:tagSize]
}

func tagOwner(key []byte, id, owner string, exp uint64) []byte {
	m := hmac.New(sha256.New, key)
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], exp)
	binary.BigEndian.PutUint64(b[8:], uint64(len(id)))
	m.Write([]byte("owner"))
	m.Write(b[:])
	m.Write([]byte(id))
	m.Write([]byte(owner))
	return m.Sum(nil)[:tagSize]
}

// Token is a token for request id, owned by the API key owner, valid
// until expires.
func (s *Signer) Token(id, owner string, expires time.Time) string {
	exp := uint64(expires.Unix())
	b := make([]byte, 8, tokenSize)
	binary.BigEndian.PutUint64(b, exp)
	b = append(b, tagID(s.keys[0], id, exp)...)
	b = append(b, tagOwner(s.keys[0], id, owner, exp)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrInvalid is every refusal: the caller answers all of them the same.
var ErrInvalid = errors.New("viewlink: invalid or expired token")

// Checked is a token that opens request ID until Expires, once its owner
// is confirmed with Owner.
type Checked struct {
	ID      string
	Expires time.Time
	key     []byte
	raw     []byte
}

// Check admits token for request id at now, before anything about the
// request is known. It reads no more than a token's length.
func (s *Signer) Check(id, token string, now time.Time) (Checked, error) {
	if base64.RawURLEncoding.DecodedLen(len(token)) != tokenSize {
		return Checked{}, ErrInvalid
	}
	// Strict: a token has one spelling (a limiter keyed on it counts it
	// once).
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != tokenSize {
		return Checked{}, ErrInvalid
	}
	exp := binary.BigEndian.Uint64(b[:8])
	if exp > 1<<40 || now.After(time.Unix(int64(exp), 0)) {
		return Checked{}, ErrInvalid
	}
	for _, k := range s.keys {
		if hmac.Equal(b[8:8+tagSize], tagID(k, id, exp)) {
			return Checked{ID: id, Expires: time.Unix(int64(exp), 0), key: k, raw: b}, nil
		}
	}
	return Checked{}, ErrInvalid
}

// Owner confirms that the token was made for the request owned by owner.
func (c Checked) Owner(owner string) error {
	if c.key == nil || !hmac.Equal(c.raw[8+tagSize:], tagOwner(c.key, c.ID, owner, binary.BigEndian.Uint64(c.raw[:8]))) {
		return ErrInvalid
	}
	return nil
}

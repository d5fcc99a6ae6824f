// Package invoker checks who called a private function. In production the
// gate is Cloud Run's: only an identity with roles/run.invoker gets through,
// and Cloud Run verifies the Google ID token itself. It then forwards the
// token with its signature replaced by SIGNATURE_REMOVED_BY_GOOGLE, so a
// receiver that verifies the signature again refuses every real call. What
// is left to check here is that the admitted token was minted for this
// receiver: its audience, its service account and its expiry.
//
// A token that still carries a signature did not come through Cloud Run's
// check; it is admitted only if that signature verifies against Google's keys.
//
// Which header holds the token: a caller may pass Cloud Run's IAM check with
// the token in X-Serverless-Authorization, and then Cloud Run leaves that
// caller's own Authorization header as it was sent, unchecked. So when
// X-Serverless-Authorization is present, it alone is read (the token Cloud
// Run verified), and Authorization only when it is absent.
package invoker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/api/idtoken"
)

// RemovedSignature is what Cloud Run puts in place of the signature of an
// ID token it has verified before passing the request on.
const RemovedSignature = "SIGNATURE_REMOVED_BY_GOOGLE"

// HeaderServerless is the header a caller may put its ID token in for Cloud
// Run's IAM check instead of Authorization. When a request carries it, the
// token checked is the one in it, whatever Authorization says.
const HeaderServerless = "X-Serverless-Authorization"

// Issuers of Google ID tokens.
var issuers = map[string]bool{"https://accounts.google.com": true, "accounts.google.com": true}

// skew is the clock difference tolerated on exp and iat.
const skew = 30 * time.Second

// Checker admits the ID tokens minted for Audience on behalf of Email.
type Checker struct {
	Audience string // the receiver's URL, as the caller named it when minting the token
	Email    string // the service account the token must name
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Verify checks a token that still has its signature; nil means
	// idtoken.Validate (Google's public keys).
	Verify func(ctx context.Context, token, audience string) error
}

// Claims are the claims of a Google ID token that a receiver checks.
type Claims struct {
	Issuer        string `json:"iss"`
	Audience      string `json:"aud"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Subject       string `json:"sub"`
	IssuedAt      int64  `json:"iat"`
	Expires       int64  `json:"exp"`
}

// Check admits the request r or says why not. The error is for logs: the
// caller answers every refusal the same way.
func (c Checker) Check(r *http.Request) (Claims, error) {
	if c.Audience == "" || c.Email == "" {
		return Claims{}, errors.New("invoker: no audience or service account configured")
	}
	header := HeaderServerless
	if len(r.Header.Values(HeaderServerless)) == 0 {
		header = "Authorization"
	}
	tok, ok := strings.CutPrefix(r.Header.Get(header), "Bearer ")
	if !ok || tok == "" {
		return Claims{}, fmt.Errorf("invoker: no bearer token in %s", header)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return Claims{}, errors.New("invoker: the token is not a JWT")
	}
	var cl Claims
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("invoker: the token's payload is not base64url: %w", err)
	}
	if err := json.Unmarshal(payload, &cl); err != nil {
		return Claims{}, fmt.Errorf("invoker: the token's payload is not JSON: %w", err)
	}
	if parts[2] != RemovedSignature {
		verify := c.Verify
		if verify == nil {
			verify = func(ctx context.Context, token, audience string) error {
				_, err := idtoken.Validate(ctx, token, audience)
				return err
			}
		}
		if err := verify(r.Context(), tok, c.Audience); err != nil {
			return Claims{}, fmt.Errorf("invoker: the token's signature does not verify: %w", err)
		}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	t := now()
	switch {
	case !issuers[cl.Issuer]:
		return cl, fmt.Errorf("invoker: issuer %q is not Google", cl.Issuer)
	case cl.Audience != c.Audience:
		return cl, fmt.Errorf("invoker: audience %q, want %q", cl.Audience, c.Audience)
	case cl.Email != c.Email || !cl.EmailVerified:
		return cl, fmt.Errorf("invoker: email %q (verified %v), want %q", cl.Email, cl.EmailVerified, c.Email)
	case cl.Expires == 0 || t.After(time.Unix(cl.Expires, 0).Add(skew)):
		return cl, fmt.Errorf("invoker: the token expired at %d", cl.Expires)
	case cl.IssuedAt != 0 && time.Unix(cl.IssuedAt, 0).After(t.Add(skew)):
		return cl, fmt.Errorf("invoker: the token is issued in the future (%d)", cl.IssuedAt)
	}
	return cl, nil
}

// Forwarded returns the token Cloud Run passes to a receiver after
// admitting a Google ID token with these claims: header and payload as
// minted, the signature replaced. Local stacks use it to call functions the
// way production does.
func Forwarded(cl Claims) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	payload, _ := json.Marshal(cl)
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + RemovedSignature
}

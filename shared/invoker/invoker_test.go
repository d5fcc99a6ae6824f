package invoker

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	aud   = "https://us-central1-acme-prod.cloudfunctions.net/imgpipe-deliverwebhook"
	email = "imgpipe-tasks@acme-prod.iam.gserviceaccount.com"
)

var now = time.Unix(1_800_000_000, 0)

func claims() Claims {
	return Claims{Issuer: "https://accounts.google.com", Audience: aud, Email: email, EmailVerified: true,
		Subject: "1234", IssuedAt: now.Add(-time.Minute).Unix(), Expires: now.Add(59 * time.Minute).Unix()}
}

// signed returns a token with these claims signed by a key Google never
// issued: the signature is well formed and does not verify.
func signed(t *testing.T, cl Claims) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "not-a-google-key"})
	p, _ := json.Marshal(cl)
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + enc.EncodeToString(sig)
}

func TestCheck(t *testing.T) {
	c := Checker{Audience: aud, Email: email, Now: func() time.Time { return now }}
	with := func(f func(*Claims)) string {
		cl := claims()
		f(&cl)
		return "Bearer " + Forwarded(cl)
	}
	cases := []struct {
		name, header string
		ok           bool
	}{
		{"forwarded by Cloud Run with the right claims", "Bearer " + Forwarded(claims()), true},
		{"expiry within the tolerated skew", with(func(c *Claims) { c.Expires = now.Add(-10 * time.Second).Unix() }), true},
		{"wrong audience", with(func(c *Claims) { c.Audience = "https://evil.example/deliver" }), false},
		{"audience of another function", with(func(c *Claims) { c.Audience = strings.Replace(aud, "deliverwebhook", "api", 1) }), false},
		{"wrong email", with(func(c *Claims) { c.Email = "someone@acme-prod.iam.gserviceaccount.com" }), false},
		{"email not verified", with(func(c *Claims) { c.EmailVerified = false }), false},
		{"expired", with(func(c *Claims) { c.Expires = now.Add(-time.Hour).Unix() }), false},
		{"no expiry", with(func(c *Claims) { c.Expires = 0 }), false},
		{"issued in the future", with(func(c *Claims) { c.IssuedAt = now.Add(time.Hour).Unix() }), false},
		{"not issued by Google", with(func(c *Claims) { c.Issuer = "https://evil.example" }), false},
		{"no token", "", false},
		{"not a bearer token", "Basic dXNlcjpwYXNz", false},
		{"not a JWT", "Bearer abc.def", false},
		{"payload not JSON", "Bearer eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24." + RemovedSignature, false},
		{"unsigned (alg none)", "Bearer " + strings.TrimSuffix(Forwarded(claims()), RemovedSignature), false},
		{"a signature that does not verify", "Bearer " + signed(t, claims()), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			_, err := c.Check(r)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("admitted")
			}
		})
	}
}

// A checker without an audience or an account refuses everything: the
// check cannot be switched off by leaving settings empty.
func TestCheckFailsClosed(t *testing.T) {
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Authorization", "Bearer "+Forwarded(claims()))
	for _, c := range []Checker{{Email: email}, {Audience: aud}, {}} {
		if _, err := c.Check(r); err == nil {
			t.Errorf("%+v admitted a token", c)
		}
	}
}

// A caller that passes Cloud Run's IAM check with its token in
// X-Serverless-Authorization gets its own Authorization header through
// untouched: the token checked is the X-Serverless-Authorization one
// whenever that header is present, and Authorization only without it.
func TestCheckReadsServerlessHeaderFirst(t *testing.T) {
	c := Checker{Audience: aud, Email: email, Now: func() time.Time { return now }}
	good := "Bearer " + Forwarded(claims())
	other := claims()
	other.Email = "someone-else@acme-prod.iam.gserviceaccount.com"
	wrong := "Bearer " + Forwarded(other)
	cases := []struct {
		name, serverless, authorization string
		ok                              bool
	}{
		{"serverless header with wrong claims, good Authorization", wrong, good, false},
		{"serverless header good, Authorization garbage", good, "Bearer garbage", true},
		{"serverless header good, no Authorization", good, "", true},
		{"only Authorization, good", "", good, true},
		{"only Authorization, wrong claims", "", wrong, false},
		{"serverless header empty, good Authorization", "present-but-empty", good, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			switch tc.serverless {
			case "":
			case "present-but-empty":
				r.Header["X-Serverless-Authorization"] = []string{""}
			default:
				r.Header.Set("X-Serverless-Authorization", tc.serverless)
			}
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			_, err := c.Check(r)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("admitted")
			}
		})
	}
}

package functions_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/imgpipe/imgpipe/shared/viewlink"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// uploadForView uploads one image as the tests' key and returns the
// request ID and its viewUrl.
func uploadForView(t *testing.T, key string) (id, viewURL string) {
	t.Helper()
	body := "Serial Number,Product Name,Input Image URLs\nV1,Vase," + imageURL + "/images/coffee.jpg\n"
	req, _ := http.NewRequest("POST", apiURL+"/api/upload", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/csv")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var up struct{ RequestID, ViewURL string }
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || up.ViewURL == "" {
		t.Fatalf("upload: %s %v", resp.Status, err)
	}
	return up.RequestID, up.ViewURL
}

func get(t *testing.T, c *http.Client, u string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// A webhook receiver holds the webhook secret: no token it can make from
// it opens a status page, in the query or as the cookie.
func TestViewLinkFromWebhookSecretRefused(t *testing.T) {
	needStack(t)
	t.Parallel()
	id, _ := uploadForView(t, "")
	exp := time.Now().Add(100 * 365 * 24 * time.Hour)
	var forged []string
	for _, sec := range cfg.WebhookSecrets {
		// The links' former scheme: a key derived from the webhook secret.
		m := hmac.New(sha256.New, []byte(sec))
		m.Write([]byte("imgpipe view link v1"))
		derived := m.Sum(nil)
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(exp.Unix()))
		tm := hmac.New(sha256.New, derived)
		tm.Write(b[:])
		tm.Write([]byte(id))
		forged = append(forged, base64.RawURLEncoding.EncodeToString(append(b[:], tm.Sum(nil)...)))
		// Today's scheme, keyed with the secret itself or the derived key.
		for _, k := range [][]byte{[]byte(sec), derived} {
			s, err := viewlink.NewSigner([][]byte{k})
			if err != nil {
				t.Fatal(err)
			}
			forged = append(forged, s.Token(id, apiKeyID, exp))
		}
	}
	for _, tok := range forged {
		for _, path := range []string{"", "/progress", "/report.csv", "/thumb/0-0/out"} {
			u := apiURL + "/api/view/" + id + path
			if resp, body := get(t, noRedirect, u+"?t="+tok); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "Vase") {
				t.Errorf("%s?t=forged: %s", path, resp.Status)
			}
			if resp, _ := get(t, noRedirect, u, &http.Cookie{Name: "imgpipe_view", Value: tok}); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s with a forged cookie: %s", path, resp.Status)
			}
		}
	}
}

// The first visit trades the token for a cookie scoped to the request's
// path and redirects to the URL without it; the page then works from the
// cookie alone, carries a CSP with no inline script and no framing, links
// nothing with the token, and the cookie opens no other request.
func TestViewLinkBecomesACookie(t *testing.T) {
	needStack(t)
	t.Parallel()
	id, link := uploadForView(t, "")
	other, _ := uploadForView(t, "")
	resp, _ := get(t, noRedirect, link+"&page=1")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/api/view/"+id+"?page=1" {
		t.Fatalf("first visit: %s to %q, want 303 to the page without the token", resp.Status, loc)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "imgpipe_view" {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.Path != "/api/view/"+id || ck.SameSite != http.SameSiteLaxMode || ck.Expires.Before(time.Now().Add(24*time.Hour)) {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Lax, path /api/view/%s, the link's expiry", ck, id)
	}
	tok := ck.Value
	resp, page := get(t, noRedirect, apiURL+loc, ck)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Vase") {
		t.Fatalf("the page from the cookie: %s", resp.Status)
	}
	if strings.Contains(page, tok) || strings.Contains(page, "?t=") {
		t.Error("the page carries the token")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'nonce-") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q: want script by nonce only, no unsafe-inline, frame-ancestors 'none'", csp)
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "<style>") {
		t.Error("the page has a script or style without its nonce")
	}
	resp, _ = get(t, noRedirect, apiURL+"/api/view/"+id+"/report.csv", ck)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "private, no-store" {
		t.Errorf("report from the page: %s, Cache-Control %q", resp.Status, resp.Header.Get("Cache-Control"))
	}
	if resp, _ := get(t, noRedirect, apiURL+"/api/view/"+other, &http.Cookie{Name: "imgpipe_view", Value: tok}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the cookie opened another request: %s", resp.Status)
	}
	// A browser-like client follows the whole exchange.
	jar, _ := cookiejar.New(nil)
	resp, page = get(t, &http.Client{Jar: jar}, link)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Vase") || resp.Request.URL.RawQuery != "" {
		t.Errorf("following the link: %s at %s", resp.Status, resp.Request.URL)
	}
	u, _ := url.Parse(apiURL + "/api/view/" + other)
	if len(jar.Cookies(u)) != 0 {
		t.Error("the jar sends the cookie to another request's page")
	}
}

// Revoking an API key revokes the status links of its requests.
func TestViewLinkRevokedWithItsKey(t *testing.T) {
	needStack(t)
	t.Parallel()
	ctx := context.Background()
	secret, key, err := keys.Create(ctx, "revoked-links", 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	_, link := uploadForView(t, secret)
	if err := keys.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, noRedirect, link); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "Vase") {
		t.Errorf("a revoked key's link: %s", resp.Status)
	}
}

// One token may make a page of requests at once, then about two a second:
// a loop on one link gets 429s with Retry-After.
func TestViewTokenRateLimited(t *testing.T) {
	needStack(t)
	t.Parallel()
	id, link := uploadForView(t, "")
	tok := link[strings.Index(link, "?t=")+3:]
	ck := &http.Cookie{Name: "imgpipe_view", Value: tok}
	limited := 0
	for range 100 {
		resp, _ := get(t, noRedirect, apiURL+"/api/view/"+id+"/thumb/0-0/out", ck)
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("a 429 without Retry-After")
			}
		}
	}
	if limited < 30 {
		t.Errorf("%d of 100 rapid requests on one token were limited, want most past the first 60", limited)
	}
}

// A finished request's report is built once and kept in the private
// bucket; the next call answers the kept copy.
func TestFinishedReportIsKept(t *testing.T) {
	needStack(t)
	t.Parallel()
	id, _ := uploadForView(t, "")
	awaitFinal(t, id, 60*time.Second)
	resp, first := get(t, http.DefaultClient, apiURL+"/api/report/"+id)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "private, no-store" || !strings.Contains(first, "Vase") {
		t.Fatalf("report: %s, Cache-Control %q", resp.Status, resp.Header.Get("Cache-Control"))
	}
	ctx := context.Background()
	gcs, err := storage.NewClient(ctx, storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Close()
	obj := gcs.Bucket(cfg.PrivateBucket).Object("reports/" + id + "/report.csv")
	r, err := obj.NewReader(ctx)
	if err != nil {
		t.Fatalf("the kept report: %v", err)
	}
	kept, _ := io.ReadAll(r)
	r.Close()
	if string(kept) != first {
		t.Errorf("the kept report differs from the answer")
	}
	// Mark the kept copy: the next answer is it, not a new build.
	w := obj.NewWriter(ctx)
	w.Write([]byte(first + "KEPT\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, again := get(t, http.DefaultClient, apiURL+"/api/report/"+id); again != first+"KEPT\n" {
		t.Errorf("the second report was built again: %q", again)
	}
	if _, err := gcs.Bucket(cfg.Bucket).Object("reports/" + id + "/report.csv").Attrs(ctx); !errors.Is(err, storage.ErrObjectNotExist) {
		t.Errorf("a report in the output bucket: %v", err)
	}
}

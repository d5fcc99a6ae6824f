package functions_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func call(t *testing.T, method, path, key, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, apiURL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	} else {
		req.Header.Set("Authorization", "none") // keep the tests' key off
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestAPIKeys(t *testing.T) {
	needStack(t)
	t.Parallel()
	ctx := context.Background()
	oneImage := "Serial Number,Product Name,Input Image URLs\n1,Cup," + imageURL + "/images/coffee.jpg\n"

	resp, body := call(t, "GET", "/api/status/x", "", "", "")
	if resp.StatusCode != 401 || !strings.Contains(body, "an API key is required") || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no key: %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", "/api/status/x", "imgpipe_unknown", "", "")
	if resp.StatusCode != 401 || !strings.Contains(body, "unknown API key") {
		t.Errorf("unknown key: %d %s", resp.StatusCode, body)
	}

	// A request is visible to its key only: another key gets 404.
	mine, _, _ := keys.Create(ctx, "mine", 100, 1000)
	theirs, _, _ := keys.Create(ctx, "theirs", 100, 1000)
	resp, body = call(t, "POST", "/api/upload", mine, "text/csv", oneImage)
	if resp.StatusCode != 202 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	id := body[strings.Index(body, `"requestId": "`)+14:][:26]
	for _, path := range []string{"/api/status/" + id, "/api/report/" + id} {
		if resp, _ := call(t, "GET", path, mine, "", ""); resp.StatusCode != 200 {
			t.Errorf("own %s: %d", path, resp.StatusCode)
		}
		if resp, body := call(t, "GET", path, theirs, "", ""); resp.StatusCode != 404 {
			t.Errorf("other key's %s: %d %s, want 404", path, resp.StatusCode, body)
		}
	}
	if resp, _ := call(t, "POST", "/api/requests/"+id+"/webhook/redeliver", theirs, "", ""); resp.StatusCode != 404 {
		t.Errorf("other key's redeliver: %d, want 404", resp.StatusCode)
	}

	// Revoked keys stop working.
	all, _ := keys.List(ctx)
	for _, k := range all {
		if k.Name == "theirs" {
			if err := keys.Revoke(ctx, k.ID[:12]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp, body := call(t, "GET", "/api/status/"+id, theirs, "", ""); resp.StatusCode != 401 || !strings.Contains(body, "revoked") {
		t.Errorf("revoked key: %d %s", resp.StatusCode, body)
	}
}

func TestRateLimitPerKey(t *testing.T) {
	needStack(t)
	t.Parallel()
	slow, _, _ := keys.Create(context.Background(), "slow", 3, 1000)
	var codes []int
	var last *http.Response
	for i := 0; i < 5; i++ {
		resp, _ := call(t, "GET", "/api/status/none", slow, "", "")
		codes = append(codes, resp.StatusCode)
		last = resp
	}
	if intsString(codes) != "404 404 404 429 429" {
		t.Errorf("codes %v, want 3 answers then 429s", codes)
	}
	if ra, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", last.Header.Get("Retry-After"))
	}
}

func intsString(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " ")
}

func TestImagesInFlightCap(t *testing.T) {
	needStack(t)
	t.Parallel()
	small, _, _ := keys.Create(context.Background(), "small", 100, 2)
	three := "Serial Number,Product Name,Input Image URLs\n1,Cup,\"" + imageURL + "/images/coffee.jpg," + imageURL + "/images/chelsea.png," + imageURL + "/images/rocket-progressive.jpg\"\n"
	resp, body := call(t, "POST", "/api/upload", small, "text/csv", three)
	if resp.StatusCode != 429 || !strings.Contains(body, "would pass its cap of 2") || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("3 images on a cap of 2: %d %s", resp.StatusCode, body)
	}
}

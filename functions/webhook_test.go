package functions_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/config"
	"github.com/imgpipe/imgpipe/shared/tasks"
	"github.com/imgpipe/imgpipe/shared/webhook"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// awaitTaskGone waits until the webhook queue no longer holds task id:
// it succeeded, or the queue gave up on it.
func awaitTaskGone(t *testing.T, id string, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	tc, err := tasks.NewClient(ctx, cfg.TasksEmulatorHost)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	name := cfg.QueueName() + "/tasks/" + id
	for deadline := time.Now().Add(within); ; {
		_, err := tc.GetTask(ctx, &cloudtaskspb.GetTaskRequest{Name: name})
		if status.Code(err) == codes.NotFound {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still queued after %v (%v)", id, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// receiver is a user's webhook endpoint that answers delivery n with code(n).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	code func(n int) int
}

type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, code func(n int) int) *receiver {
	rc := &receiver{code: code}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if webhookCheck != nil {
			if p := webhookCheck(b); p != "" {
				t.Error(p)
			}
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{at: time.Now(), header: r.Header.Clone(), body: b})
		n := len(rc.got)
		rc.mu.Unlock()
		w.WriteHeader(rc.code(n))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) await(t *testing.T, n int, within time.Duration) []received {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(rc.deliveries()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d webhook deliveries within %v, want %d", len(rc.deliveries()), within, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return rc.deliveries()
}

// smallRequest uploads 2 products / 3 images (one broken) with a webhook.
func smallRequest(t *testing.T, webhookURL string) string {
	t.Helper()
	body := "Serial Number,Product Name,Input Image URLs\n" +
		`1,Cup,"` + imageURL + `/images/coffee.jpg, ` + imageURL + `/images/missing.jpg"` + "\n" +
		"2,Cat," + imageURL + "/images/chelsea.png\n"
	resp, err := http.Post(apiURL+"/api/upload?webhookUrl="+webhookURL, "text/csv", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		RequestID string `json:"requestId"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("upload: %d %s", resp.StatusCode, raw)
	}
	return out.RequestID
}

func awaitWebhook(t *testing.T, id, status string, attempts int, within time.Duration) wire.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := getStatus(t, id)
		if v.Webhook != nil && v.Webhook.Status == status && v.Webhook.Attempts == attempts {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook of %s: %+v, want %s after %d attempts", id, v.Webhook, status, attempts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWebhookRetriedThenDelivered(t *testing.T) {
	needStack(t)
	t.Parallel()
	rc := newReceiver(t, func(n int) int {
		if n <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	id := smallRequest(t, rc.URL+"/hooks/imgpipe?token=secret")
	ds := rc.await(t, 4, 180*time.Second)

	verifier, err := webhook.NewVerifier(config.DevWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	var gaps []time.Duration
	for i, d := range ds {
		p, err := verifier.Verify(d.body, d.header)
		if err != nil {
			t.Fatalf("delivery %d does not verify: %v", i+1, err)
		}
		if p.RequestID != id || p.Status != string(batch.Completed) || p.TotalImages != 3 || p.ProcessedImages != 2 || p.FailedImages != 1 ||
			len(p.Products) != 2 || p.Products[0].OutputImageURLs[1] != "" || p.Products[1].OutputImageURLs[0] == "" ||
			p.Event != webhook.EventCompleted || p.ReportURL != apiURL+"/api/report/"+id {
			t.Errorf("delivery %d payload %+v", i+1, p)
		}
		if d.header.Get(webhook.HeaderID) != ds[0].header.Get(webhook.HeaderID) || d.header.Get(webhook.HeaderID) != webhook.MessageID(id, webhook.EventCompleted) {
			t.Errorf("delivery %d webhook-id %q, first %q", i+1, d.header.Get(webhook.HeaderID), ds[0].header.Get(webhook.HeaderID))
		}
		if i > 0 {
			gaps = append(gaps, d.at.Sub(ds[i-1].at))
		}
	}
	// min backoff 1s, doubling: 1s, 2s, 4s.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if gaps[i] < want-100*time.Millisecond || gaps[i] > want+time.Second {
			t.Errorf("gap %d = %v, want %v (−0.1s/+1s)", i+1, gaps[i], want)
		}
	}
	t.Logf("webhook attempts at +0s, gaps %v", gaps)
	v := awaitWebhook(t, id, "DELIVERED", 4, 5*time.Second)
	if strings.Contains(v.Webhook.URL, "secret") || v.Webhook.LastAttemptAt == nil {
		t.Errorf("webhook view %+v: query not redacted or no last attempt", v.Webhook)
	}

	// A redelivery: one more delivery, same webhook-id, counted.
	resp, err := http.Post(apiURL+"/api/requests/"+id+"/webhook/redeliver", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("redeliver: %d", resp.StatusCode)
	}
	ds = rc.await(t, 5, 10*time.Second)
	if ds[4].header.Get(webhook.HeaderID) != ds[0].header.Get(webhook.HeaderID) {
		t.Errorf("redelivery has webhook-id %q", ds[4].header.Get(webhook.HeaderID))
	}
	awaitWebhook(t, id, "DELIVERED", 5, 5*time.Second)
}

func TestWebhookAlwaysFailingEndsFailed(t *testing.T) {
	needStack(t)
	t.Parallel()
	rc := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	id := smallRequest(t, rc.URL)
	start := time.Now()
	rc.await(t, 5, 180*time.Second)
	v := awaitWebhook(t, id, "FAILED", 5, 5*time.Second)
	awaitTaskGone(t, tasks.TaskID(id, "completed"), 10*time.Second) // the queue gave up: no 6th attempt can come
	if n := len(rc.deliveries()); n != 5 {
		t.Errorf("%d deliveries, want exactly 5 (max attempts)", n)
	}
	if !strings.Contains(v.Webhook.LastError, "503") {
		t.Errorf("lastError %q", v.Webhook.LastError)
	}
	t.Logf("5 failed attempts over %v", time.Since(start))
	// A redelivery of a failed webhook is refused for unknown requests only.
	resp, _ := http.Post(apiURL+"/api/requests/nosuch/webhook/redeliver", "application/json", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("redeliver of an unknown request: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestWebhookToBlockedAddressFails(t *testing.T) {
	needStack(t)
	t.Parallel()
	id := smallRequest(t, "http://169.254.169.254/computeMetadata/v1/")
	v := awaitWebhook(t, id, "FAILED", 5, 180*time.Second)
	if !strings.Contains(v.Webhook.LastError, "blocked_address") {
		t.Errorf("lastError %q, want blocked_address", v.Webhook.LastError)
	}
}

func TestNoWebhookNoState(t *testing.T) {
	needStack(t)
	t.Parallel()
	body := "Serial Number,Product Name,Input Image URLs\n1,Cup," + imageURL + "/images/coffee.jpg\n"
	resp, err := http.Post(apiURL+"/api/upload", "text/csv", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ RequestID string }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	v := awaitFinal(t, out.RequestID, 180*time.Second)
	if v.Webhook != nil {
		t.Errorf("webhook %+v for a request without webhookUrl", v.Webhook)
	}
	resp, _ = http.Post(apiURL+"/api/requests/"+out.RequestID+"/webhook/redeliver", "application/json", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "has no webhookUrl") {
		t.Errorf("redeliver without webhook: %d %s", resp.StatusCode, b)
	}
}

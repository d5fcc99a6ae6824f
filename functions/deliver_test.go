package functions

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/store"
)

// The completion hook signalled twice (and twice at once) enqueues one
// task: one delivery.
func TestCompletionSignalledTwiceDeliversOnce(t *testing.T) {
	t.Parallel()
	var got atomic.Int32
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer rc.Close()
	d, err := loadDeps()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	products := []batch.Product{{SerialNumber: "1", ProductName: "p", InputURLs: []string{"https://img.example/a.jpg"}}}
	r, err := d.svc.Store.CreateRequest(ctx, store.Request{ID: pipeline.NewRequestID(), TotalImages: 1, Quality: 50, WebhookURL: rc.URL}, products)
	if err != nil {
		t.Fatal(err)
	}
	c := batch.Counts{Total: 1, Failed: 1}
	if _, _, err := d.svc.Store.Complete(ctx, r, c); err != nil {
		t.Fatal(err)
	}
	hook := pipeline.WebhookHook{S: d.svc}
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hook.RequestFinished(ctx, r, c); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := hook.RequestFinished(ctx, r, c); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if n := got.Load(); n != 1 {
		t.Errorf("%d deliveries for a completion signalled 4 times, want 1", n)
	}
}

func TestDeliverWebhookIsForCloudTasks(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	deliverWebhook(rec, httptest.NewRequest(http.MethodPost, "/deliverWebhook", strings.NewReader(`{"requestId":"x"}`)))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "this endpoint is for Cloud Tasks") {
		t.Errorf("without Cloud Tasks headers: %d %s", rec.Code, rec.Body)
	}
	if err := checkCaller(httptest.NewRequest(http.MethodPost, "/", nil), "https://deliver.example", "sa@x.iam.gserviceaccount.com"); err == nil {
		t.Error("no token accepted with an audience configured")
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJhdWQiOiJodHRwczovL2RlbGl2ZXIuZXhhbXBsZSJ9.")
	if err := checkCaller(req, "https://deliver.example", ""); err == nil {
		t.Error("an unsigned token accepted")
	}
}

package functions

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/invoker"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/tasks"
)

// NoStackVar carries why the emulators cannot be used from this binary's
// TestMain (package functions_test) to the tests of package functions.
const NoStackVar = "IMGPIPE_TEST_NO_STACK"

// needStack skips (or, under make test, fails) a test when the emulators
// are not running.
func needStack(t testing.TB) {
	t.Helper()
	emulatortest.Need(t, os.Getenv(NoStackVar))
}

// The completion hook signalled twice (and twice at once) enqueues one
// task: one delivery.
func TestCompletionSignalledTwiceDeliversOnce(t *testing.T) {
	needStack(t)
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
	r, err := d.store.CreateRequest(ctx, batch.Request{ID: pipeline.NewRequestID(), TotalImages: 1, Quality: 50, WebhookURL: rc.URL}, products)
	if err != nil {
		t.Fatal(err)
	}
	c := batch.Counts{Total: 1, Failed: 1}
	if _, _, err := d.store.Complete(ctx, r, c); err != nil {
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
	// Wait until the queue holds the task no more (it ran): any second task
	// would have been created by now, under the same name, and refused.
	enq := d.svc.Webhooks.Enqueuer.(*tasks.Enqueuer)
	name := enq.Queue + "/tasks/" + tasks.TaskID(r.ID, "completed")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := enq.Client.GetTask(ctx, &cloudtaskspb.GetTaskRequest{Name: name}); grpcstatus.Code(err) == codes.NotFound {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("task %s still queued after 10s (%v)", name, err)
		}
	}
	if n := got.Load(); n != 1 {
		t.Errorf("%d deliveries for a completion signalled 4 times, want 1", n)
	}
}

func TestDeliverWebhookIsForCloudTasks(t *testing.T) {
	t.Parallel()
	d, err := loadDeps()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	deliverWebhook(rec, httptest.NewRequest(http.MethodPost, "/deliverWebhook", strings.NewReader(`{"requestId":"x"}`)))
	if rec.Code != http.StatusNotFound {
		t.Errorf("without a token: %d %s, want 404", rec.Code, rec.Body)
	}
	good := "Bearer " + invoker.Forwarded(invoker.Claims{Issuer: "https://accounts.google.com",
		Audience: d.cfg.TasksOIDCAudience, Email: d.cfg.TasksServiceAccount, EmailVerified: true, Expires: time.Now().Add(time.Hour).Unix()})
	req := httptest.NewRequest(http.MethodPost, "/deliverWebhook", strings.NewReader(`{"requestId":"x"}`))
	req.Header.Set("Authorization", good)
	rec = httptest.NewRecorder()
	deliverWebhook(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "this endpoint is for Cloud Tasks") {
		t.Errorf("a forwarded token without Cloud Tasks headers: %d %s", rec.Code, rec.Body)
	}
	// A caller admitted by IAM through X-Serverless-Authorization keeps its
	// own Authorization header: that one is not the token to check.
	req = httptest.NewRequest(http.MethodPost, "/deliverWebhook", strings.NewReader(`{"requestId":"x"}`))
	req.Header.Set("X-Serverless-Authorization", "Bearer "+invoker.Forwarded(invoker.Claims{Issuer: "https://accounts.google.com",
		Audience: d.cfg.TasksOIDCAudience, Email: "another-invoker@example.iam.gserviceaccount.com", EmailVerified: true, Expires: time.Now().Add(time.Hour).Unix()}))
	req.Header.Set("Authorization", good)
	rec = httptest.NewRecorder()
	deliverWebhook(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Errorf("another account's token in X-Serverless-Authorization, a copied good one in Authorization: %d %s, want 404", rec.Code, rec.Body)
	}
}

//go:build faults

package functions_test

// The fault-injection suite (make test runs it with -tags faults): the cloud
// and the Internet misbehave, and every accepted image still ends in a
// terminal state with exact counts. Duplicate and concurrent deliveries are
// TestPipelineEndToEnd's delivery=twice and delivery=concurrent.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
)

func uploadText(t *testing.T, csvBody string) string {
	t.Helper()
	id, _ := uploadCSV(t, csvBody)
	return id
}

func reasons(v []string) string {
	sort.Strings(v)
	return strings.Join(v, ",")
}

func failedReasons(t *testing.T, id string) []string {
	var out []string
	for _, p := range getStatus(t, id).Products {
		for _, e := range p.Errors {
			out = append(out, e.Reason)
		}
	}
	return out
}

// Not parallel: it runs alone, before the parallel tests, because it takes
// Firestore and Cloud Storage away from the whole host.
func TestFaultFirestoreAndStorageOutages(t *testing.T) {
	needStack(t)
	start := time.Now()
	var rows []string
	for i := 0; i < 20; i++ {
		name := []string{"coffee.jpg", "chelsea.png", "astronaut.webp", "rocket-progressive.jpg"}[i%4]
		rows = append(rows, fmt.Sprintf("O%d,Outage %d,%s/slow/%s?o=%d", i, i, imageURL, name, i))
	}
	id := uploadText(t, "Serial Number,Product Name,Input Image URLs\n"+strings.Join(rows, "\n")+"\n")
	time.Sleep(300 * time.Millisecond)
	gcsProxy.SetDown(true)
	time.Sleep(3 * time.Second)
	gcsProxy.SetDown(false)
	firestoreProxy.SetDown(true)
	time.Sleep(3 * time.Second)
	firestoreProxy.SetDown(false)
	v := awaitFinal(t, id, 120*time.Second)
	if v.Status != batch.Completed || v.ProcessedImages != 20 || v.FailedImages != 0 {
		t.Errorf("after a 3 s storage and a 3 s Firestore outage: %s processed %d failed %d %v", v.Status, v.ProcessedImages, v.FailedImages, failedReasons(t, id))
	}
	comp, _, _ := st.GetCompletion(context.Background(), id)
	if comp.HookCalls != 1 {
		t.Errorf("hook calls %d, want 1", comp.HookCalls)
	}
	t.Logf("outages: 20/20 images stored, exact counts, one completion, in %v", time.Since(start))
}

// Not parallel either: its transient failures need redeliveries, which the
// Pub/Sub emulator serves a few at a time per subscription; under the load
// test they would queue for minutes.
func TestFaultHostileImageServers(t *testing.T) {
	needStack(t)
	start := time.Now()
	q := "?f=" + fmt.Sprint(time.Now().UnixNano())
	rows := []string{
		"1,Good JPEG," + imageURL + "/images/coffee.jpg" + q,
		"2,Good PNG," + imageURL + "/images/chelsea.png" + q,
		"3,Good WebP," + imageURL + "/images/astronaut.webp" + q,
		"4,503 twice then 200," + imageURL + "/flaky2.jpg" + q,
		"5,Hangs past the timeout," + imageURL + "/hang.jpg" + q,
		"6,Drips a byte per 500 ms," + imageURL + "/drip.jpg" + q,
		"7,HTML labelled image/jpeg," + imageURL + "/text.jpg" + q,
		"8,100000x100000 PNG header," + imageURL + "/bomb.png" + q,
		"9,Truncated JPEG," + imageURL + "/truncated.jpg" + q,
	}
	id := uploadText(t, "Serial Number,Product Name,Input Image URLs\n"+strings.Join(rows, "\n")+"\n")
	v := awaitFinal(t, id, 150*time.Second)
	got := reasons(failedReasons(t, id))
	want := "corrupt_image,not_an_image,timeout,timeout,too_large_dimension"
	if v.Status != batch.Completed || v.ProcessedImages != 4 || v.FailedImages != 5 || got != want {
		t.Errorf("hostile servers: %s processed %d failed %d reasons %s; want COMPLETED 4/5 %s", v.Status, v.ProcessedImages, v.FailedImages, got, want)
	}
	t.Logf("hostile image servers: 4 stored, 5 failed (%s), in %v", got, time.Since(start))
}

func TestFaultWebhookReceiverHangs(t *testing.T) {
	needStack(t)
	t.Parallel()
	start := time.Now()
	hang := make(chan struct{})
	var mu sync.Mutex
	n := 0
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer func() { close(hang); rc.Close() }() // release the hung handlers first
	id := smallRequest(t, rc.URL)
	// The request may wait behind the parallel load test's images; the
	// webhook's five attempts take about 25 s once it finishes.
	awaitFinal(t, id, 180*time.Second)
	v := awaitWebhook(t, id, "FAILED", 5, 90*time.Second)
	if !strings.Contains(v.Webhook.LastError, "timeout") {
		t.Errorf("lastError %q, want a timeout", v.Webhook.LastError)
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 5 {
		t.Errorf("%d attempts reached the receiver, want 5", n)
	}
	t.Logf("hanging receiver: 5 attempts timed out, webhook FAILED, in %v", time.Since(start))
}

func TestFaultManyConcurrentUploads(t *testing.T) {
	needStack(t)
	t.Parallel()
	start := time.Now()
	const uploads, images = 50, 100
	ids := make([]string, uploads)
	var wg sync.WaitGroup
	for u := 0; u < uploads; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rows []string
			for p := 0; p < images/4; p++ {
				var urls []string
				for k := 0; k < 4; k++ {
					urls = append(urls, fmt.Sprintf("%s/tiny/%d-%d-%d.jpg", imageURL, u, p, k))
				}
				rows = append(rows, fmt.Sprintf("%d,Load %d,\"%s\"", p, p, strings.Join(urls, ",")))
			}
			ids[u] = uploadText(t, "Serial Number,Product Name,Input Image URLs\n"+strings.Join(rows, "\n")+"\n")
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	for _, id := range ids {
		v := awaitFinal(t, id, 240*time.Second)
		if v.Status != batch.Completed || v.ProcessedImages != images || v.FailedImages != 0 {
			t.Errorf("%s: %s processed %d failed %d", id, v.Status, v.ProcessedImages, v.FailedImages)
		}
		comp, _, _ := st.GetCompletion(context.Background(), id)
		if comp.HookCalls != 1 {
			t.Errorf("%s: hook calls %d", id, comp.HookCalls)
		}
	}
	t.Logf("%d concurrent uploads × %d images: accepted in %v, all %d images finished exactly in %v", uploads, images, accepted, uploads*images, time.Since(start))
}

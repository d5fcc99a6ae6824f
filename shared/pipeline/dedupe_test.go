package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
)

// 300 product variants share 10 photos, some listed twice in one product
// and in other spellings of the same URL: each photo is fetched,
// compressed and stored once, every occurrence is counted and gets the
// photo's output, and duplicate deliveries change nothing.
func TestEachURLFetchedOncePerRequest(t *testing.T) {
	h := newHarness(t)
	var fetches atomic.Int32
	photo := newHarnessPhoto(t)
	h.svc.Fetcher = &fetcher{FetchFn: func(context.Context, string, int64) ([]byte, error) {
		fetches.Add(1)
		return photo, nil
	}}
	var puts atomic.Int32
	h.svc.Bucket = &bucket{PutFn: func(_ context.Context, name string, data []byte) error {
		puts.Add(1)
		h.objects.Store(name, len(data))
		return nil
	}}
	spellings := []string{"https://img.example/photo-%d.jpg", "HTTPS://IMG.EXAMPLE:443/photo-%d.jpg", "https://img.example/photo-%d.jpg#front"}
	ps := make([]batch.Product, 300)
	images := 0
	for i := range ps {
		ps[i] = batch.Product{SerialNumber: fmt.Sprint("V", i), ProductName: fmt.Sprint("Variant ", i)}
		ps[i].InputURLs = []string{fmt.Sprintf(spellings[i%3], i%10)}
		if i%7 == 0 { // the same photo twice in one product
			ps[i].InputURLs = append(ps[i].InputURLs, fmt.Sprintf(spellings[0], i%10))
		}
		images += len(ps[i].InputURLs)
	}
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, h.svc.NewUpload(ctx), batch.Submission{Products: ps, Quality: 50}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.msgs) != 10 {
		t.Fatalf("%d messages for 10 distinct photos", len(h.msgs))
	}
	h.deliverAllAtOnce(1)
	var wg sync.WaitGroup
	f, p := fetches.Load(), puts.Load()
	if f != 10 || p != 10 {
		t.Errorf("%d fetches and %d stores for 10 photos", f, p)
	}
	for _, m := range h.msgs { // a redelivery of each, and a concurrent pair
		for range 2 {
			wg.Go(func() {
				if err := h.deliver(m, 2); err != nil {
					t.Errorf("%s: %v", m.Image.ID(), err)
				}
			})
		}
	}
	wg.Wait()
	h.checkFinished(r, images, 0, batch.Completed)
	if fetches.Load() != f {
		t.Errorf("redeliveries after the results fetched %d more times", fetches.Load()-f)
	}
	objects := map[string]bool{}
	for i, p := range ps {
		for u := range p.InputURLs {
			res, ok := h.st.result(r.ID, batch.ImageRef{Product: i, URL: u})
			if !ok || res.State != batch.ImageDone {
				t.Fatalf("image %d-%d: %+v", i, u, res)
			}
			objects[res.Object] = true
		}
	}
	if len(objects) != 10 {
		t.Errorf("%d distinct outputs for 10 photos", len(objects))
	}
	t.Logf("%d images of 300 products sharing 10 photos: %d messages, %d fetches, %d compressions, %d storage writes; without deduplication %d of each",
		images, len(h.msgs), f, f, p, images)
}

// A URL listed more often than one message records is split into messages
// of at most 100 images, each fetched once; counts stay exact.
func TestURLListedManyTimes(t *testing.T) {
	h := newHarness(t)
	ps := products(250, 1)
	for i := range ps {
		ps[i].InputURLs[0] = "https://img.example/placeholder.jpg"
	}
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, h.svc.NewUpload(ctx), batch.Submission{Products: ps, Quality: 50}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.msgs) != 3 {
		t.Fatalf("%d messages for 250 occurrences, want 3", len(h.msgs))
	}
	for _, m := range h.msgs {
		if err := h.deliver(m, 1); err != nil {
			t.Fatal(err)
		}
	}
	h.checkFinished(r, 250, 0, batch.Completed)
}

// A message whose image fails for good records the failure on every copy.
func TestCopiesShareAFailure(t *testing.T) {
	h := newHarness(t)
	h.svc.Fetcher = &fetcher{FetchFn: func(context.Context, string, int64) ([]byte, error) {
		return []byte("<html>not an image</html>"), nil
	}}
	ps := products(5, 1)
	for i := range ps {
		ps[i].InputURLs[0] = "https://img.example/page.html"
	}
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, h.svc.NewUpload(ctx), batch.Submission{Products: ps, Quality: 50}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.msgs) != 1 {
		t.Fatalf("%d messages", len(h.msgs))
	}
	if err := h.deliver(h.msgs[0], 1); err != nil {
		t.Fatal(err)
	}
	h.checkFinished(r, 0, 5, batch.Failed)
	res, _ := h.st.result(r.ID, batch.ImageRef{Product: 4})
	if res.Reason != batch.ReasonNotAnImage || res.SameAs != "0-0" {
		t.Errorf("copy 4-0: %+v", res)
	}
}

package store_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/store"
)

// open connects to the Firestore emulator; a test that calls it needs one.
func open(t *testing.T) *store.Store {
	t.Helper()
	emulatortest.Need(t, emulatortest.Missing("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST"))
	st, err := store.Open(context.Background(), os.Getenv("GOOGLE_CLOUD_PROJECT"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func products(n, urls int) []batch.Product {
	out := make([]batch.Product, n)
	for i := range out {
		out[i] = batch.Product{SerialNumber: fmt.Sprint("S", i), ProductName: fmt.Sprint("Product ", i)}
		for u := 0; u < urls; u++ {
			out[i].InputURLs = append(out[i].InputURLs, fmt.Sprintf("https://img.example/%d/%d.jpg", i, u))
		}
	}
	return out
}

func TestCreateAndReadBackInOrder(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	ps := products(2500, 2) // three chunks of at most 1000
	r, err := st.CreateRequest(ctx, batch.Request{ID: "create-" + emulatortest.Suffix(), TotalImages: 5000, Quality: 50}, ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ChunkStarts) != 3 || r.Shards != 50 {
		t.Errorf("chunks %v shards %d, want 3 chunks and 50 shards", r.ChunkStarts, r.Shards)
	}
	got, err := st.GetRequest(ctx, r.ID)
	if err != nil || got.TotalImages != 5000 || got.Status != batch.Pending || got.ProductCount != 2500 {
		t.Fatalf("GetRequest: %+v, %v", got, err)
	}
	for _, rg := range [][2]int{{0, 10}, {995, 1005}, {1990, 2500}, {2490, 3000}} {
		page, err := st.Products(ctx, got, rg[0], rg[1])
		if err != nil {
			t.Fatal(err)
		}
		want := ps[rg[0]:min(rg[1], len(ps))]
		if len(page) != len(want) {
			t.Fatalf("Products%v: %d products, want %d", rg, len(page), len(want))
		}
		for i := range want {
			if page[i].SerialNumber != want[i].SerialNumber || page[i].InputURLs[1] != want[i].InputURLs[1] {
				t.Errorf("Products%v[%d] = %+v, want %+v", rg, i, page[i], want[i])
				break
			}
		}
	}
	if _, err := st.GetRequest(ctx, "absent-"+emulatortest.Suffix()); fault.KindOf(err) != fault.NotFound {
		t.Errorf("absent request: %v", err)
	}
}

// Every image finished three times over, concurrently: each counts once.
func TestFinishImageCountsOnceUnderDuplicates(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	ps := products(100, 2)
	r, err := st.CreateRequest(ctx, batch.Request{ID: "dups-" + emulatortest.Suffix(), TotalImages: 200, Quality: 50}, ps)
	if err != nil {
		t.Fatal(err)
	}
	first := batch.FirstImageIndex(ps)
	var firsts atomic.Int32
	var wg sync.WaitGroup
	sem := make(chan struct{}, 60)
	for p := range ps {
		for u := 0; u < 2; u++ {
			ref := batch.ImageRef{Product: p, URL: u}
			res := batch.ImageResult{State: batch.ImageDone, Object: batch.ObjectName(r.ID, ref), FinishedAt: time.Now()}
			if p%10 == 0 {
				res = batch.ImageResult{State: batch.ImageFailed, Reason: "http_404", FinishedAt: time.Now()}
			}
			for d := 0; d < 3; d++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					ok, err := st.FinishImage(ctx, r.ID, ref, batch.ShardOf(ref, first, r.Shards), res)
					if err != nil {
						t.Error(err)
					}
					if ok {
						firsts.Add(1)
					}
				}()
			}
		}
	}
	wg.Wait()
	c, _, err := st.Counts(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if firsts.Load() != 200 || c.Processed != 180 || c.Failed != 20 || !c.Finished() {
		t.Errorf("first=%d counts %+v, want 200 firsts, 180 processed, 20 failed", firsts.Load(), c)
	}
	for s := 0; s < r.Shards; s++ {
		if done, err := st.ShardFinished(ctx, r.ID, s); err != nil || !done {
			t.Errorf("shard %d finished=%v err=%v", s, done, err)
		}
	}
	res, err := st.Results(ctx, r.ID, 0, ps[:2])
	if err != nil || len(res) != 4 || res[batch.ImageRef{Product: 0}].Reason != "http_404" {
		t.Errorf("Results: %v, %v", res, err)
	}

	// Completion: five racers, one winner.
	var won atomic.Int32
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, comp, err := st.Complete(ctx, r, c)
			if err != nil {
				t.Error(err)
			}
			if w {
				won.Add(1)
			}
			if comp.HookFired || comp.Status != batch.Completed {
				t.Errorf("completion %+v before the hook fired", comp)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d winners of the completion, want 1", won.Load())
	}
	if err := st.HookFired(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if won, comp, _ := st.Complete(ctx, r, c); won || !comp.HookFired || comp.HookCalls != 1 {
		t.Errorf("after HookFired: won %v completion %+v", won, comp)
	}
	got, _ := st.GetRequest(ctx, r.ID)
	if got.Status != batch.Completed || got.Processed != 180 || got.Failed != 20 || got.CompletedAt.IsZero() {
		t.Errorf("completed request %+v", got)
	}
}

// An upload refused after its products began to be staged leaves nothing:
// no request document and none of the chunks already written.
func TestStageDiscardLeavesNothing(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	stg := st.Stage(ctx, "discard-"+emulatortest.Suffix())
	for _, p := range products(2500, 1) { // two chunks go out while adding
		if err := stg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(stg.URLCounts()) != 2500 || stg.Images() != 2500 {
		t.Fatalf("staged %d products, %d images", len(stg.URLCounts()), stg.Images())
	}
	stg.Discard(ctx)
	req := st.Firestore().Collection("requests").Doc(stg.ID())
	left, err := req.Collection("chunks").Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d chunks left after Discard", len(left))
	}
	if _, err := st.GetRequest(ctx, stg.ID()); fault.KindOf(err) != fault.NotFound {
		t.Errorf("request after Discard: %v", err)
	}
}

// Staged chunks carry expireAt (the TTL policy's field) until their request
// is committed; a committed request's chunks never expire, an abandoned
// upload's do.
func TestStagedChunksExpireUntilCommitted(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	expiring := func(id string) (n, total int) {
		t.Helper()
		docs, err := st.Firestore().Collection("requests").Doc(id).Collection("chunks").Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			if at, err := d.DataAt("expireAt"); err == nil {
				if exp, ok := at.(time.Time); !ok || exp.Before(time.Now().Add(store.StagedChunkTTL-time.Hour)) {
					t.Errorf("chunk %s expires at %v, want about %v from now", d.Ref.ID, at, store.StagedChunkTTL)
				}
				n++
			}
		}
		return n, len(docs)
	}

	abandoned := st.Stage(ctx, "abandoned-"+emulatortest.Suffix())
	for _, p := range products(2500, 1) {
		if err := abandoned.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	abandoned.(*store.Staging).Wait()
	if n, total := expiring(abandoned.ID()); total == 0 || n != total {
		t.Errorf("an uncommitted upload: %d of %d chunks expiring, want all", n, total)
	}

	r, err := st.CreateRequest(ctx, batch.Request{ID: "committed-" + emulatortest.Suffix(), Quality: 50}, products(2500, 1))
	if err != nil {
		t.Fatal(err)
	}
	if n, total := expiring(r.ID); total != 3 || n != 0 {
		t.Errorf("a committed request: %d of %d chunks expiring, want 0 of 3", n, total)
	}
}

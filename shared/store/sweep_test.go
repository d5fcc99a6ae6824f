package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
)

// FinishCopies records each copy once and counts it in its shard, whatever
// races it: concurrent calls over overlapping copies, and FinishImage on
// some of the same images.
func TestFinishCopiesCountsEachImageOnce(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	ps := products(250, 1)
	r, err := st.CreateRequest(ctx, batch.Request{ID: "copies-" + emulatortest.Suffix(), TotalImages: 250, Quality: 50}, ps)
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]batch.ShardedRef, len(ps))
	for i := range refs {
		refs[i] = batch.ShardedRef{ImageRef: batch.ImageRef{Product: i}, Shard: batch.ImageShard(i, r.Shards)}
	}
	res := batch.ImageResult{State: batch.ImageDone, Object: batch.ObjectName(r.ID, refs[0].ImageRef), SameAs: "0-0", FinishedAt: time.Now()}
	var recorded atomic.Int32
	var wg sync.WaitGroup
	for _, part := range [][]batch.ShardedRef{refs[1:], refs[1:120], refs[100:]} {
		wg.Go(func() {
			n, err := st.FinishCopies(ctx, r.ID, part, res)
			if err != nil {
				t.Error(err)
			}
			recorded.Add(int32(n))
		})
	}
	for i := 0; i < 250; i += 25 {
		wg.Go(func() {
			ok, err := st.FinishImage(ctx, r.ID, refs[i].ImageRef, refs[i].Shard, batch.ImageResult{State: batch.ImageDone, FinishedAt: time.Now()})
			if err != nil {
				t.Error(err)
			}
			if ok {
				recorded.Add(1)
			}
		})
	}
	wg.Wait()
	c, _, err := st.Counts(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if recorded.Load() != 250 || c.Processed != 250 || c.Failed != 0 {
		t.Errorf("recorded %d, counts %+v; want 250 and 250 processed", recorded.Load(), c)
	}
	got, ok, err := st.ImageResult(ctx, r.ID, batch.ImageRef{Product: 249})
	if err != nil || !ok || got.SameAs != "0-0" {
		t.Errorf("copy 249-0: %+v %v %v", got, ok, err)
	}
}

// The sweep's records: unfinished requests are listed, a republishing is
// counted and dates the image, a counted failure or a throttled delivery
// dates it too, and a throttled delivery's waits add up.
func TestSweepRecords(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	r, err := st.CreateRequest(ctx, batch.Request{ID: "sweep-" + emulatortest.Suffix(), TotalImages: 3, Quality: 50}, products(3, 1))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := st.PendingRequests(ctx, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pending {
		found = found || p.ID == r.ID
		if p.Status != batch.Pending {
			t.Errorf("listed request %s is %s", p.ID, p.Status)
		}
	}
	if !found {
		t.Errorf("the new request is not among %d unfinished ones", len(pending))
	}
	a, b, c := batch.ImageRef{Product: 0}, batch.ImageRef{Product: 1}, batch.ImageRef{Product: 2}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for range 2 {
		if err := st.NoteRepublished(ctx, r.ID, []batch.ImageRef{a}, at); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().Add(-time.Minute)
	if _, err := st.CountAttempt(ctx, r.ID, b); err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{1500 * time.Millisecond, 4 * time.Second} {
		total, err := st.NoteHostWait(ctx, r.ID, c, []time.Duration{1500 * time.Millisecond, 2500 * time.Millisecond}[i])
		if err != nil {
			t.Fatal(err)
		}
		if total != want {
			t.Errorf("waits for the host after wait %d: %s, want %s", i+1, total, want)
		}
	}
	stalls, err := st.ImageStalls(ctx, r.ID, []batch.ImageRef{a, b, c, {Product: 9}})
	if err != nil {
		t.Fatal(err)
	}
	if len(stalls) != 4 || stalls[0].Republished != 2 || !stalls[0].SeenAt.Equal(at) ||
		stalls[1].Republished != 0 || !stalls[1].SeenAt.After(before) || !stalls[2].SeenAt.After(before) || !stalls[3].SeenAt.IsZero() {
		t.Errorf("stalls %+v", stalls)
	}
	// Finished requests are not listed.
	ps := products(3, 1)
	for i := range ps {
		if _, err := st.FinishImage(ctx, r.ID, batch.ImageRef{Product: i}, batch.ImageShard(i, r.Shards), batch.ImageResult{State: batch.ImageDone}); err != nil {
			t.Fatal(err)
		}
	}
	cnt, _, _ := st.Counts(ctx, r)
	if _, _, err := st.Complete(ctx, r, cnt); err != nil {
		t.Fatal(err)
	}
	pending, _ = st.PendingRequests(ctx, 10_000)
	for _, p := range pending {
		if p.ID == r.ID {
			t.Errorf("the completed request is still listed as unfinished")
		}
	}
}

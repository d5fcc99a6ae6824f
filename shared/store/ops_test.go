package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
)

// The client counts operations as Firestore bills them: one write per
// document committed, one read per document looked up (found or not).
func TestOpsCountedAtTheClient(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	r, err := st.CreateRequest(ctx, batch.Request{ID: "ops-" + emulatortest.Suffix(), TotalImages: 2, Quality: 50}, products(2, 1))
	if err != nil {
		t.Fatal(err)
	}
	before := st.Ops()
	// One result and its counter: a commit of two writes.
	if _, err := st.FinishImage(ctx, r.ID, batch.ImageRef{Product: 0}, batch.ImageShard(0, r.Shards), batch.ImageResult{State: batch.ImageDone, FinishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Two lookups, one of a missing document.
	if _, _, err := st.ImageResult(ctx, r.ID, batch.ImageRef{Product: 0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ImageResult(ctx, r.ID, batch.ImageRef{Product: 1}); err != nil {
		t.Fatal(err)
	}
	got := st.Ops()
	if d := (got.Writes - before.Writes); d != 2 {
		t.Errorf("%d writes counted for one result and its counter, want 2", d)
	}
	if d := (got.Reads - before.Reads); d != 2 {
		t.Errorf("%d reads counted for two lookups, want 2", d)
	}
}

package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// clock is a replaceable clock for the store and the sweep.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lossyHarness is a harness whose publisher loses the messages lose
// picks: it reports them sent, and they never arrive.
func lossyHarness(t *testing.T, lose func(m queue.ImageMessage) bool) (*harness, *clock, *[]queue.ImageMessage) {
	h := newHarness(t)
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	h.st.now = clk.Now
	var delivered []queue.ImageMessage
	h.svc.Publisher = &publisher{PublishAllFn: func(_ context.Context, msgs []queue.ImageMessage) ([]int, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, m := range msgs {
			h.msgs = append(h.msgs, m)
			if !lose(m) {
				delivered = append(delivered, m)
			}
		}
		return nil, nil
	}}
	return h, clk, &delivered
}

// drain delivers every message that arrived and forgets them.
func drain(t *testing.T, h *harness, delivered *[]queue.ImageMessage) {
	t.Helper()
	h.mu.Lock()
	msgs := *delivered
	*delivered = nil
	h.mu.Unlock()
	for _, m := range msgs {
		if err := h.deliver(m, 1); err != nil {
			t.Fatalf("%s: %v", m.Image.ID(), err)
		}
	}
}

// A publisher loses every third message. The sweep does nothing before
// the stall window has passed; after it, it republishes exactly the lost
// images, and the request finishes with exact counts and one hook.
func TestSweepRepublishesLostMessages(t *testing.T) {
	n := 0
	h, clk, delivered := lossyHarness(t, func(m queue.ImageMessage) bool {
		n++
		return m.Republished == 0 && n%3 == 0
	})
	r := h.submit(12, 1)
	drain(t, h, delivered)
	ctx := context.Background()

	clk.Advance(10 * time.Minute)
	rep, err := h.svc.Sweep(ctx, clk.Now())
	if err != nil || rep.Stalled != 0 || rep.Republished != 0 {
		t.Fatalf("a sweep inside the window: %+v, %v", rep, err)
	}
	clk.Advance(6 * time.Minute)
	rep, err = h.svc.Sweep(ctx, clk.Now())
	if err != nil || rep.Stalled != 1 || rep.Republished != 4 || rep.GaveUp != 0 {
		t.Fatalf("a sweep after 16 quiet minutes: %+v, %v (want the 4 lost images republished)", rep, err)
	}
	// A second sweep right after leaves them to their new deliveries.
	if rep, _ := h.svc.Sweep(ctx, clk.Now().Add(time.Minute)); rep.Republished != 0 || rep.InFlight != 4 {
		t.Errorf("a sweep a minute later: %+v", rep)
	}
	drain(t, h, delivered)
	h.checkFinished(r, 12, 0, batch.Completed)
	if rep, _ := h.svc.Sweep(ctx, clk.Now().Add(time.Hour)); rep.Pending != 0 {
		t.Errorf("a finished request is still swept: %+v", rep)
	}
}

// Two images' messages never get through (lost every time, republished
// or not) and the dead-letter handler always fails: after MaxRepublish
// republishings each is recorded failed (stalled), and the request
// finishes once. An image whose delivery is alive (a failed attempt was
// counted within the window) is left alone.
func TestSweepGivesUpOnImagesThatNeverFinish(t *testing.T) {
	cursed := func(m queue.ImageMessage) bool {
		return strings.HasSuffix(m.URL, "/3/0.jpg") || strings.HasSuffix(m.URL, "/7/0.jpg")
	}
	h, clk, delivered := lossyHarness(t, cursed)
	r := h.submit(10, 1)
	ctx := context.Background()
	// The dead-letter handler's store call always fails.
	h.st.BeforeFinishImage = func(_ string, ref batch.ImageRef) error {
		if ref.Product == 3 || ref.Product == 7 {
			return errors.New("dead-letter handler crashed")
		}
		return nil
	}
	for _, m := range h.msgs {
		if cursed(m) {
			if err := h.svc.DeadLetter(ctx, m, 5); err == nil {
				t.Fatal("the failing dead-letter handler succeeded")
			}
		}
	}
	// Image 5 is slow: a failed attempt is counted each minute.
	h.st.BeforeFinishImage = nil
	var slow queue.ImageMessage
	var rest []queue.ImageMessage
	for _, m := range *delivered {
		if m.Image.Product == 5 {
			slow = m
		} else {
			rest = append(rest, m)
		}
	}
	*delivered = rest
	drain(t, h, delivered)

	var reports []string
	for sweep := 1; sweep <= 4; sweep++ {
		clk.Advance(16 * time.Minute)
		if _, err := h.st.CountAttempt(ctx, r.ID, slow.Image); err != nil {
			t.Fatal(err)
		}
		rep, err := h.svc.Sweep(ctx, clk.Now())
		if err != nil {
			t.Fatalf("sweep %d: %v", sweep, err)
		}
		reports = append(reports, fmt.Sprintf("%d/%d/%d", rep.Republished, rep.GaveUp, rep.InFlight))
		drain(t, h, delivered)
	}
	// republished/gave up/in flight: two republishings, then stalled; the
	// slow image is in flight each time.
	if got := strings.Join(reports, " "); got != "2/0/1 2/0/1 0/2/1 0/0/1" {
		t.Errorf("sweeps (republished/stalled/in flight): %s", got)
	}
	if err := h.deliver(slow, 3); err != nil {
		t.Fatal(err)
	}
	h.checkFinished(r, 8, 2, batch.Completed)
	res, _ := h.st.result(r.ID, batch.ImageRef{Product: 3})
	if res.Reason != batch.ReasonStalled {
		t.Errorf("image 3-0: %+v", res)
	}
}

// Every image has its result but the completion was never recorded (the
// last instance died before checking): a sweep of that request completes it.
func TestSweepCompletesAFinishedRequest(t *testing.T) {
	h, clk, delivered := lossyHarness(t, func(queue.ImageMessage) bool { return false })
	r := h.submit(3, 1)
	h.st.BeforeShardFinished = func(string, int) error { return errors.New("instance died") }
	for _, m := range *delivered {
		_ = h.deliver(m, 1)
	}
	h.st.BeforeShardFinished = nil
	if _, ok := h.st.completion(r.ID); ok {
		t.Fatal("completed although every completion check failed")
	}
	clk.Advance(20 * time.Minute)
	rep, err := h.svc.SweepRequest(context.Background(), r.ID, clk.Now())
	if err != nil || rep.Completed != 1 || rep.Republished != 0 {
		t.Fatalf("sweep: %+v, %v", rep, err)
	}
	h.checkFinished(r, 3, 0, batch.Completed)
}

// Six products share two photos. One photo's message is lost: the sweep
// republishes it as one message carrying its copies. The other's delivery
// is alive (its image counted a failure within the window): neither it nor
// its copies, which no delivery touches, are republished.
func TestSweepDecidesPerURL(t *testing.T) {
	h, clk, delivered := lossyHarness(t, func(m queue.ImageMessage) bool {
		return m.Republished == 0 && strings.HasSuffix(m.URL, "/lost.jpg")
	})
	ps := products(6, 1)
	for i := range ps {
		ps[i].InputURLs[0] = []string{"https://img.example/lost.jpg", "https://img.example/slow.jpg"}[i%2]
	}
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, h.svc.NewUpload(ctx), batch.Submission{Products: ps, Quality: 50}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	slow := (*delivered)[0]
	*delivered = nil
	clk.Advance(20 * time.Minute)
	if _, err := h.st.CountAttempt(ctx, r.ID, slow.Image); err != nil {
		t.Fatal(err)
	}
	before := len(h.msgs)
	rep, err := h.svc.Sweep(ctx, clk.Now())
	if err != nil || rep.Republished != 3 || rep.InFlight != 3 {
		t.Fatalf("sweep: %+v, %v; want the lost photo's 3 images republished, the slow one's 3 in flight", rep, err)
	}
	if n := len(h.msgs) - before; n != 1 || len(h.msgs[before].Copies) != 2 {
		t.Fatalf("%d messages republished, want 1 with 2 copies", n)
	}
	drain(t, h, delivered)
	if err := h.deliver(slow, 2); err != nil {
		t.Fatal(err)
	}
	h.checkFinished(r, 6, 0, batch.Completed)
}

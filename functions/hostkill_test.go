//go:build faults

package functions_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
)

// The function host is killed (SIGKILL) while a batch is in flight and
// started again: every image still ends stored exactly once, the request
// completes with exact counts and one completion. The host comes back at
// once and the test runs alone: the Pub/Sub emulator retries a dead
// endpoint without backoff (~34 pushes/s) and, after a burst of some
// dozens of failures, stops pushing that subscription for minutes
// (measured: 5 s down never recovered in 3 min; 2 s down failed once in
// six runs).
func TestFaultHostKilledMidBatch(t *testing.T) {
	needStack(t)
	start := time.Now()
	s := emulatortest.Suffix()
	h := newDevhost(t, "kill-"+s)
	h.start()

	const images = 40
	names := []string{"coffee.jpg", "chelsea.png", "astronaut.webp", "rocket-progressive.jpg"}
	var rows []string
	for i := 0; i < images/2; i++ {
		u := func(k int) string {
			return fmt.Sprintf("%s/slow/%s?delay=300ms&k=%d-%d-%s", imageURL, names[(i+k)%4], i, k, s)
		}
		rows = append(rows, fmt.Sprintf("K%d,Killed %d,\"%s,%s\"", i, i, u(0), u(1)))
	}
	id, _ := uploadCSVTo(t, "http://"+h.addr, "Serial Number,Product Name,Input Image URLs\n"+strings.Join(rows, "\n")+"\n")

	// Kill it once some images are done and others are in flight.
	for deadline := time.Now().Add(60 * time.Second); ; {
		v := getStatus(t, id)
		if v.ProcessedImages >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("devhost processed %d images in 60 s (log %s)", v.ProcessedImages, h.log.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.kill()
	atKill := getStatus(t, id)
	h.start()
	v := awaitFinal(t, id, 180*time.Second)
	if v.Status != batch.Completed || v.ProcessedImages != images || v.FailedImages != 0 {
		t.Errorf("after a kill mid-batch: %s processed %d failed %d %v", v.Status, v.ProcessedImages, v.FailedImages, failedReasons(t, id))
	}
	comp, _, _ := st.GetCompletion(context.Background(), id)
	if comp.HookCalls != 1 {
		t.Errorf("hook calls %d, want 1", comp.HookCalls)
	}
	t.Logf("host killed with %d/%d images done, restarted at once: %d processed, %d failed, one completion, in %v",
		atKill.ProcessedImages, images, v.ProcessedImages, v.FailedImages, time.Since(start))
}

//go:build faults

package functions_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions/localstack"
	"github.com/imgpipe/imgpipe/shared/batch"
)

// Two images' messages are lost after delivery (acknowledged, never
// processed) and one image's deliveries all crash, its dead letters too.
// The sweep, called as Cloud Scheduler calls it, republishes the lost two
// (which then finish), republishes the crashing one twice and then records
// it failed (stalled): the request finishes with exact counts and one
// completion. The test sweeps its own request only (the other tests leave
// unfinished requests behind on purpose), through the same function.
func TestFaultSweepFinishesLostAndDeadLetteredImages(t *testing.T) {
	needStack(t)
	q := fmt.Sprint(time.Now().UnixNano())
	id := uploadText(t, "Serial Number,Product Name,Input Image URLs\n"+
		"W1,Kept,"+imageURL+"/images/coffee.jpg?sweep="+q+"\n"+
		"W2,Kept,"+imageURL+"/images/chelsea.png?sweep="+q+"\n"+
		"W3,Lost once,"+imageURL+"/images/coffee.jpg?push=lose-first&sweep="+q+"\n"+
		"W4,Lost once,"+imageURL+"/images/rocket-progressive.jpg?push=lose-first&sweep="+q+"\n"+
		"W5,Crashes,"+imageURL+"/images/astronaut.webp?push=crash&sweep="+q+"\n")
	ctx := context.Background()
	start := time.Now()
	// Pub/Sub gives the crashing image up (the tests' FastRetries: 5
	// deliveries, 1–8 s apart) and its dead letter fails before any sweep.
	for forwards.Get("dead letter crashed") == 0 {
		if time.Since(start) > 90*time.Second {
			t.Fatal("no dead letter reached the dead-letter function within 90 s")
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("the first dead letter failed after %v", time.Since(start).Round(time.Second))
	var sweeps []string
	deadline := time.Now().Add(120 * time.Second)
	for {
		v := getStatus(t, id)
		if v.Status == batch.Completed || v.Status == batch.Failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request still %s after 120 s: %d processed, %d failed; sweeps: %s", v.Status, v.ProcessedImages, v.FailedImages, strings.Join(sweeps, " "))
		}
		time.Sleep(time.Second)
		rep, err := localstack.SweepOnce(ctx, cfg, id)
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		if rep.Republished+rep.GaveUp > 0 {
			sweeps = append(sweeps, fmt.Sprintf("%.0fs:+%d/stalled %d", time.Since(start).Seconds(), rep.Republished, rep.GaveUp))
		}
	}
	v := getStatus(t, id)
	if v.Status != batch.Completed || v.ProcessedImages != 4 || v.FailedImages != 1 {
		t.Errorf("%s processed %d failed %d %v, want 4 processed and 1 stalled", v.Status, v.ProcessedImages, v.FailedImages, failedReasons(t, id))
	}
	if r := failedReasons(t, id); reasons(r) != batch.ReasonStalled {
		t.Errorf("failure reasons %v, want stalled", r)
	}
	comp, _, _ := st.GetCompletion(ctx, id)
	if comp.HookCalls != 1 {
		t.Errorf("hook calls %d, want 1", comp.HookCalls)
	}
	t.Logf("lost and crashing images finished in %v; sweeps that acted (republished/stalled): %s; the proxy lost %d deliveries, crashed %d and failed %d dead letters",
		time.Since(start).Round(time.Second), strings.Join(sweeps, " "), forwards.Get("lost"), forwards.Get("crashed"), forwards.Get("dead letter crashed"))
}

package deploy

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/imgpipe/imgpipe/functions"
)

// The delivery rules of terraform/README.md, "Sizing and platform limits".
const (
	// burst is the longest run of failed pushes (Cloud Run's 429 "no
	// available instance", slow cold starts) a good image must outlive
	// without being dead-lettered.
	burst = 10 * time.Minute
	// coldStart is what an ack deadline adds to its function's timeout:
	// Cloud Run holds a push while an instance starts, up to 3.5 × the
	// service's average start-up time, at least 10 s.
	coldStart = 60 * time.Second
	// Pub/Sub's limits: backoffs 0 to 600 s, ack deadlines 10 to 600 s,
	// dead-letter policies 5 to 100 delivery attempts.
	maxBackoff, maxAckDeadline     = 600 * time.Second, 600 * time.Second
	minDeadLetters, maxDeadLetters = 5, 100
	// Cloud Run's largest instance.
	maxInstanceMiB = 32768
)

// deliveredAt is the least time from a message's first delivery to its
// n-th (n ≥ 1) under a retry policy of minB..maxB: Pub/Sub waits
// min(maxB, minB × 2^(k−1)) before delivery k+1.
func deliveredAt(n int, minB, maxB time.Duration) time.Duration {
	var t time.Duration
	for k := 1; k < n; k++ {
		t += time.Duration(math.Min(float64(maxB), float64(minB)*math.Pow(2, float64(k-1))))
	}
	return t
}

// preconditionFailures evaluates every precondition of b, for each of its
// instances, and returns the error messages of those that fail. A
// precondition that does not evaluate fails the test.
func preconditionFailures(t *testing.T, e *evaluator, b tfBlock) []string {
	t.Helper()
	keys, ctxs, err := e.instanceContexts(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, lc := range childBlocks(b.Body, "lifecycle") {
		for _, pc := range childBlocks(lc.Body, "precondition") {
			for i, ctx := range ctxs {
				v, diags := pc.Body.Attributes["condition"].Expr.Value(ctx)
				if diags.HasErrors() || !v.IsKnown() || v.Type() != cty.Bool {
					t.Fatalf("%s: a precondition does not evaluate: %s", keys[i], diags.Error())
				}
				if v.True() {
					continue
				}
				msg, diags := pc.Body.Attributes["error_message"].Expr.Value(ctx)
				if diags.HasErrors() {
					t.Fatalf("%s: a precondition's message does not evaluate: %s", keys[i], diags.Error())
				}
				out = append(out, keys[i]+": plan fails: "+msg.AsString())
			}
		}
	}
	return out
}

// seconds evaluates a duration argument such as "10s".
func seconds(t *testing.T, e *evaluator, body *hclsyntax.Body, attr string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(e.str(t, body, attr))
	if err != nil {
		t.Fatalf("%s: %v", attr, err)
	}
	return d
}

// deliveryProblems checks the push subscriptions of a Terraform copy:
// every ack deadline covers its function's timeout and a cold start
// within Pub/Sub's limit, and the image subscription's retry and
// dead-letter policies (with the functions' own failure count) outlive a
// burst. Broken rules are reported twice when the plan catches them too:
// once as computed here, once as the precondition's message.
func deliveryProblems(t *testing.T, blocks []tfBlock, overrides map[string]cty.Value) []string {
	t.Helper()
	e := newEvaluator(t, blocks, overrides)
	fns, _ := e.local("functions")
	env, _ := e.local("env")
	var problems []string
	deadLettered := 0
	for _, s := range ofType(blocks, "resource", "google_pubsub_subscription") {
		name := e.str(t, s.Body, "name")
		endpoint := e.str(t, childBlocks(s.Body, "push_config")[0].Body, "push_endpoint")
		fn := ""
		for k := range fns.AsValueMap() {
			if strings.HasPrefix(endpoint, functionURI(k)+"/") {
				fn = k
			}
		}
		if fn == "" {
			problems = append(problems, fmt.Sprintf("subscription %s pushes to %s, not a function", name, endpoint))
			continue
		}
		timeoutS, _ := fns.GetAttr(fn).GetAttr("timeout").AsBigFloat().Int64()
		ackS, err := strconv.Atoi(e.str(t, s.Body, "ack_deadline_seconds"))
		if err != nil {
			t.Fatalf("subscription %s: ack deadline: %v", name, err)
		}
		timeout, ack := time.Duration(timeoutS)*time.Second, time.Duration(ackS)*time.Second
		if ack < timeout+coldStart || ack > maxAckDeadline {
			problems = append(problems, fmt.Sprintf("subscription %s: ack deadline %v for %s, whose timeout is %v: want %v + %v of cold start, at most %v",
				name, ack, fn, timeout, timeout, coldStart, maxAckDeadline))
		}

		dl := childBlocks(s.Body, "dead_letter_policy")
		if len(dl) == 0 {
			continue
		}
		deadLettered++
		if fn != functions.FnCompress {
			problems = append(problems, fmt.Sprintf("subscription %s dead-letters messages for %s", name, fn))
		}
		rp := childBlocks(s.Body, "retry_policy")
		if len(rp) != 1 {
			problems = append(problems, fmt.Sprintf("subscription %s: no retry policy (Pub/Sub then redelivers at once)", name))
			continue
		}
		minB := seconds(t, e, rp[0].Body, "minimum_backoff")
		maxB := seconds(t, e, rp[0].Body, "maximum_backoff")
		attempts, err := strconv.Atoi(e.str(t, dl[0].Body, "max_delivery_attempts"))
		if err != nil {
			t.Fatalf("subscription %s: max_delivery_attempts: %v", name, err)
		}
		own, err := strconv.Atoi(env.GetAttr("IMGPIPE_MAX_DELIVERY_ATTEMPTS").AsString())
		if err != nil {
			t.Fatalf("IMGPIPE_MAX_DELIVERY_ATTEMPTS: %v", err)
		}
		if minB < 0 || maxB > maxBackoff || minB > maxB || attempts < minDeadLetters || attempts > maxDeadLetters {
			problems = append(problems, fmt.Sprintf("subscription %s: retry policy %v..%v, %d delivery attempts: Pub/Sub takes backoffs of 0 to %v and %d to %d attempts",
				name, minB, maxB, attempts, maxBackoff, minDeadLetters, maxDeadLetters))
		}
		last := deliveredAt(attempts, minB, maxB)
		if last < 2*burst {
			problems = append(problems, fmt.Sprintf("subscription %s dead-letters an image %v after its first delivery (%d attempts, %v..%v): want at least twice a %v burst",
				name, last, attempts, minB, maxB, burst))
		}
		if left := last - deliveredAt(min(own, attempts), minB, maxB); left < burst {
			problems = append(problems, fmt.Sprintf("subscription %s dead-letters an image that failed %d times on its own %v later: want at least a %v burst",
				name, own, left, burst))
		}
		// The sweep republishes a request's pending images after
		// stall_after without progress: a message Pub/Sub is still
		// retrying would be fetched twice.
		if stall, err := time.ParseDuration(env.GetAttr("IMGPIPE_STALL_AFTER").AsString()); err != nil || stall < last {
			problems = append(problems, fmt.Sprintf("stall_after %s: the sweep republishes images whose messages Pub/Sub still retries for %v", env.GetAttr("IMGPIPE_STALL_AFTER").AsString(), last))
		}
		problems = append(problems, preconditionFailures(t, e, s)...)
	}
	if deadLettered != 1 {
		problems = append(problems, fmt.Sprintf("%d subscriptions dead-letter, want the image subscription alone", deadLettered))
	}
	return problems
}

// Pub/Sub counts every failed push, Cloud Run's 429s included, toward the
// dead-letter policy: the image subscription's delays add up to twice a
// 10-minute burst before its last delivery, and to a burst after the
// functions' own failure count; each ack deadline is its function's
// timeout plus a cold start. The plan fails where these do not hold.
func TestDeliveryOutlivesBursts(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	for _, p := range deliveryProblems(t, blocks, nil) {
		t.Error(p)
	}
	// The two counts are separate inputs, and the functions are told theirs.
	e := newEvaluator(t, blocks, map[string]cty.Value{"max_failed_attempts": cty.NumberIntVal(3), "max_delivery_attempts": cty.NumberIntVal(12)})
	env, _ := e.local("env")
	if got := env.GetAttr("IMGPIPE_MAX_DELIVERY_ATTEMPTS").AsString(); got != "3" {
		t.Errorf("max_failed_attempts = 3: the functions are told IMGPIPE_MAX_DELIVERY_ATTEMPTS=%s", got)
	}
	dl := childBlocks(mustFind(t, blocks, "resource", "google_pubsub_subscription", "compress").Body, "dead_letter_policy")
	if len(dl) != 1 || e.str(t, dl[0].Body, "max_delivery_attempts") != "12" {
		t.Error("max_delivery_attempts = 12 is not the dead-letter policy's")
	}
}

// The checks fail on copies that break the rules: the policy of 5
// deliveries 1 s to 60 s apart (dead-lettered 15 s into a burst), too few
// deliveries for the backoff, an own failure count that leaves no room for
// a burst, and an ack deadline equal to the function's timeout.
func TestDeliveryCheckFindsMistakes(t *testing.T) {
	cases := []struct {
		name      string
		edits     []tfEdit
		overrides map[string]cty.Value
		want      []string
	}{
		{
			name:      "5 deliveries 1 s to 60 s apart",
			edits:     []tfEdit{{File: "pubsub.tf", Old: `compress_backoff               = { min = 10, max = 300 }`, New: `compress_backoff               = { min = 1, max = 60 }`}},
			overrides: map[string]cty.Value{"max_delivery_attempts": cty.NumberIntVal(5), "max_failed_attempts": cty.NumberIntVal(5)},
			want: []string{
				"subscription imgpipe-images-compress dead-letters an image 15s after its first delivery (5 attempts, 1s..1m0s): want at least twice a 10m0s burst",
				"subscription imgpipe-images-compress dead-letters an image that failed 5 times on its own 0s later",
				"google_pubsub_subscription.compress: plan fails: max_delivery_attempts = 5 dead-letters an image 15 s after its first delivery",
				"google_pubsub_subscription.compress: plan fails: An image that failed max_failed_attempts = 5 times on its own would be dead-lettered 0 s later",
			},
		},
		{
			name:      "8 deliveries",
			overrides: map[string]cty.Value{"max_delivery_attempts": cty.NumberIntVal(8)},
			want: []string{
				"subscription imgpipe-images-compress dead-letters an image 15m10s after its first delivery (8 attempts, 10s..5m0s)",
				"plan fails: max_delivery_attempts = 8 dead-letters an image 910 s after its first delivery",
			},
		},
		{
			name:      "the functions fail an image only after 8 failures of their own",
			overrides: map[string]cty.Value{"max_failed_attempts": cty.NumberIntVal(8)},
			want: []string{
				"subscription imgpipe-images-compress dead-letters an image that failed 8 times on its own 5m0s later",
				"plan fails: An image that failed max_failed_attempts = 8 times on its own would be dead-lettered 300 s later",
			},
		},
		{
			name:  "the ack deadline is the function's timeout",
			edits: []tfEdit{{File: "pubsub.tf", Old: `ack_deadline_seconds = local.functions["compressImage"].timeout + local.cold_start_seconds`, New: `ack_deadline_seconds = 120`}},
			want:  []string{"subscription imgpipe-images-compress: ack deadline 2m0s for compressImage, whose timeout is 2m0s"},
		},
		{
			name:  "the dead letters' ack deadline is their function's timeout",
			edits: []tfEdit{{File: "pubsub.tf", Old: `ack_deadline_seconds = local.functions["deadLetter"].timeout + local.cold_start_seconds`, New: `ack_deadline_seconds = 60`}},
			want:  []string{"subscription imgpipe-images-dead-record: ack deadline 1m0s for deadLetter, whose timeout is 1m0s"},
		},
		{
			name:  "the ack deadline past Pub/Sub's 600 s",
			edits: []tfEdit{{File: "pubsub.tf", Old: `cold_start_seconds             = 60`, New: `cold_start_seconds             = 500`}},
			want:  []string{"subscription imgpipe-images-compress: ack deadline 10m20s for compressImage"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(deliveryProblems(t, terraformWith(t, c.edits...), c.overrides), "\n")
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("the check missed: %s\nit found:\n%s", w, got)
				}
			}
		})
	}
}

// The sweep runs one at a time; the others may scale to max_instances.
// compressImage's memory, which grows with max_pixels, max_image_bytes and
// compress_concurrency, stays within Cloud Run's 32 GiB, or the plan fails.
func TestInstancesAndMemoryWithinCloudRun(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	fn := mustFind(t, blocks, "resource", "google_cloudfunctions2_function", "fn")
	sc := childBlocks(fn.Body, "service_config")[0].Body
	if a, ok := sc.Attributes["max_instance_count"]; !ok || exprText(a.Expr) != "each.value.max_instances" {
		t.Errorf("service_config.max_instance_count is not each.value.max_instances")
	}
	e := newEvaluator(t, blocks, map[string]cty.Value{"max_instances": cty.NumberIntVal(37)})
	fns, _ := e.local("functions")
	for name, f := range fns.AsValueMap() {
		n, _ := f.GetAttr("max_instances").AsBigFloat().Int64()
		want := int64(37)
		if name == functions.FnSweep {
			want = 1
		}
		if n != want {
			t.Errorf("%s: at most %d instances with max_instances = 37, want %d", name, n, want)
		}
	}
	if p := preconditionFailures(t, e, fn); len(p) > 0 {
		t.Errorf("the defaults fail the plan: %v", p)
	}

	for _, c := range []struct {
		overrides map[string]cty.Value
		fails     bool
	}{
		{map[string]cty.Value{"compress_concurrency": cty.NumberIntVal(16)}, false},
		{map[string]cty.Value{"max_pixels": cty.NumberIntVal(1_000_000_000)}, false},
		{map[string]cty.Value{"max_pixels": cty.NumberIntVal(2_000_000_000)}, true},
		{map[string]cty.Value{"max_pixels": cty.NumberIntVal(300_000_000), "compress_concurrency": cty.NumberIntVal(16)}, true},
		{map[string]cty.Value{"max_image_bytes": cty.NumberIntVal(1 << 30), "compress_concurrency": cty.NumberIntVal(16)}, true},
	} {
		e := newEvaluator(t, blocks, c.overrides)
		var set []string
		for k, v := range c.overrides {
			n, _ := v.AsBigFloat().Int64()
			set = append(set, fmt.Sprintf("%s = %d", k, n))
		}
		sort.Strings(set)
		with := strings.Join(set, ", ")
		fns, _ := e.local("functions")
		memory := mib(t, fns.GetAttr(functions.FnCompress).GetAttr("memory").AsString())
		failures := preconditionFailures(t, e, fn)
		if over := memory > maxInstanceMiB; over != c.fails {
			t.Fatalf("%s: compressImage gets %d MiB; the case expects it %s Cloud Run's %d", with, memory, map[bool]string{true: "above", false: "within"}[c.fails], maxInstanceMiB)
		}
		switch {
		case c.fails && (len(failures) != 1 || !strings.Contains(failures[0], `google_cloudfunctions2_function.fn["compressImage"]: plan fails: compressImage would need `+strconv.FormatInt(memory, 10)+" MiB")):
			t.Errorf("%s: compressImage needs %d MiB, above Cloud Run's %d, and the plan says %v", with, memory, maxInstanceMiB, failures)
		case !c.fails && len(failures) > 0:
			t.Errorf("%s: compressImage needs %d MiB, and the plan fails: %v", with, memory, failures)
		}
	}
}

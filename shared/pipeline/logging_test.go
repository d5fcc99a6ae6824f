package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Every log line about an image names its request and image and carries
// the upload's trace; the "image compressed" line carries what the
// monitoring metrics read.
func TestImageLogLinesCarryIDsAndTrace(t *testing.T) {
	h := newHarness(t)
	var sink lockedBuffer
	h.svc.Log = slog.New(slog.NewJSONHandler(&sink, nil))
	h.svc.ProcessTimeout = 10 * time.Second
	fails := 0
	h.svc.Fetcher = &fetcher{FetchFn: func(_ context.Context, url string, _ int64) ([]byte, error) {
		if strings.HasSuffix(url, "/1.jpg") && fails == 0 {
			fails++
			return nil, fault.New(fault.Transient, "http_503", "the image host answered 503")
		}
		if strings.HasSuffix(url, "/1.jpg") {
			return nil, fault.New(fault.Permanent, "http_404", "the image host answered 404")
		}
		return newHarnessPhoto(t), nil
	}}
	const trace = "projects/p1/traces/105445aa7843bc8bf206b12000100000"
	ctx := context.Background()
	st := h.svc.NewUpload(ctx)
	r, err := h.svc.Submit(ctx, st, batch.Submission{Products: products(1, 2), Quality: 50, Trace: trace}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h.msgs {
		if m.Trace != trace {
			t.Fatalf("message %s carries trace %q", m.Image.ID(), m.Trace)
		}
		if err := h.deliver(m, 1); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, l := range sink.lines() {
		msg, _ := l["msg"].(string)
		seen[msg] = true
		if l[pipeline.TraceKey] != trace {
			t.Errorf("%q has no trace: %v", msg, l)
		}
		if msg == "request accepted" || msg == "request finished" {
			continue
		}
		if l["requestId"] != r.ID || l["image"] == nil {
			t.Errorf("%q does not name its request and image: %v", msg, l)
		}
		if msg == "image compressed" {
			for _, k := range []string{"inputBytes", "outBytes", "savedBytes", "durationMs"} {
				if _, ok := l[k].(float64); !ok {
					t.Errorf("image compressed lacks %s: %v", k, l)
				}
			}
		}
	}
	for _, want := range []string{"request accepted", "fetch failed, retrying", "image failed", "image compressed"} {
		if !seen[want] {
			t.Errorf("no %q line (saw %v)", want, seen)
		}
	}
}

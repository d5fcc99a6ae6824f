package functions_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions"
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/imagework"
)

// benchImage is what /bench/ serves: $IMGPIPE_BENCH_IMAGE (make bench
// passes a photograph of its corpus), else testdata's coffee.jpg.
var benchImage = func() []byte {
	p := os.Getenv("IMGPIPE_BENCH_IMAGE")
	if p == "" {
		p = filepath.Join("..", "testdata", "images", "coffee.jpg")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		panic(err)
	}
	return b
}()

// BenchmarkPipeline1000: 1,000 images through the local stack (upload,
// Pub/Sub push, fetch, compress, store, count) against compressing the
// same image 1,000 times in-process with as many goroutines as cores, and
// the Firestore reads and writes per image the function host made, counted
// at its client, the upload and the completion included.
func BenchmarkPipeline1000(b *testing.B) {
	needStack(b)
	const n = 1000
	raw := func() float64 {
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan struct{}, n)
		for i := 0; i < n; i++ {
			next <- struct{}{}
		}
		close(next)
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range next {
					if _, err := imagework.Compress(benchImage, 50, imagework.DefaultLimits); err != nil {
						panic(err)
					}
				}
			}()
		}
		wg.Wait()
		return n / time.Since(start).Seconds()
	}()
	for b.Loop() {
		s := emulatortest.Suffix()
		var rows []string
		for p := 0; p < n/4; p++ {
			var urls []string
			for k := 0; k < 4; k++ {
				urls = append(urls, fmt.Sprintf("%s/bench/%s-%d-%d.jpg", imageURL, s, p, k))
			}
			rows = append(rows, fmt.Sprintf("%d,Bench %d,\"%s\"", p, p, strings.Join(urls, ",")))
		}
		ops0, err := functions.HostStoreOps()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		id, _ := uploadCSV(b, "Serial Number,Product Name,Input Image URLs\n"+strings.Join(rows, "\n")+"\n")
		// Waited for on the test's own client, so that status reads do not
		// count among the host's operations.
		for {
			if _, done, err := st.GetCompletion(context.Background(), id); err == nil && done {
				break
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("request %s not finished after 10 minutes", id)
			}
			time.Sleep(250 * time.Millisecond)
		}
		rate := n / time.Since(start).Seconds()
		ops, err := functions.HostStoreOps()
		if err != nil {
			b.Fatal(err)
		}
		v := getStatus(b, id)
		if v.Status != batch.Completed || v.ProcessedImages != n {
			b.Fatalf("%s: %d processed, %d failed", v.Status, v.ProcessedImages, v.FailedImages)
		}
		b.ReportMetric(float64(ops.Reads-ops0.Reads)/n, "firestore-reads/image")
		b.ReportMetric(float64(ops.Writes-ops0.Writes)/n, "firestore-writes/image")
		b.ReportMetric(rate, "pipeline-images/s")
		b.ReportMetric(raw, "raw-images/s")
		b.ReportMetric(rate/raw, "ratio")
	}
}

// BenchmarkUpload: accepting 1k, 10k and 100k rows (one image each) on a
// fresh function host process each; its peak RSS says whether memory stays
// flat. The host's subscriptions are removed first, so the messages are
// only published, not processed.
func BenchmarkUpload(b *testing.B) {
	needStack(b)
	for _, rows := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(rows), func(b *testing.B) {
			var csv strings.Builder
			csv.WriteString("Serial Number,Product Name,Input Image URLs\n")
			for i := 0; i < rows; i++ {
				fmt.Fprintf(&csv, "%d,Product %d,%s/images/missing-%d.jpg\n", i, i, imageURL, i)
			}
			body := csv.String()
			for b.Loop() {
				h := newDevhost(b, "upload-"+emulatortest.Suffix())
				h.start()
				h.unwire()
				before := h.peakRSS()
				start := time.Now()
				uploadCSVTo(b, "http://"+h.addr, body)
				b.ReportMetric(time.Since(start).Seconds(), "s/upload")
				b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
				b.ReportMetric(float64(before)/(1<<20), "MB-peak-RSS-before")
				b.ReportMetric(float64(h.peakRSS())/(1<<20), "MB-peak-RSS")
				h.kill()
			}
		})
	}
}

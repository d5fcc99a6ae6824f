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

	"github.com/google/pprof/profile"

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
// Pub/Sub push, fetch, compress, store, count) on a function host process
// of its own, and what of it is the pipeline's own cost:
//   - the host's CPU per image, split by the host's own CPU profile into
//     compression (samples under imagework.Compress) and the rest:
//     fetching, storing, counting, completion, the upload's share, the
//     HTTP and gRPC plumbing of all of them, and the runtime's background
//     work (garbage collection, whoever made the garbage);
//   - what the host asked of the cloud per image, counted at its clients:
//     Firestore reads and writes (as billed), messages published, objects
//     written; the upload and the completion included;
//   - images/s end to end, against compressing in-process with as many
//     goroutines as cores: bound by the Pub/Sub emulator's two push
//     threads, which production does not have.
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
		h := newDevhost(b, "pipeline-"+s)
		prof := os.Getenv("IMGPIPE_HOST_CPUPROFILE") // kept there, for pprof
		if prof == "" {
			prof = filepath.Join(b.TempDir(), "host.pprof")
		}
		h.cpuprofile = prof
		h.start()
		var rows []string
		for p := 0; p < n/4; p++ {
			var urls []string
			for k := 0; k < 4; k++ {
				urls = append(urls, fmt.Sprintf("%s/bench/%s-%d-%d.jpg", imageURL, s, p, k))
			}
			rows = append(rows, fmt.Sprintf("%d,Bench %d,\"%s\"", p, p, strings.Join(urls, ",")))
		}
		cpu0 := h.cpuSeconds()
		start := time.Now()
		id, _ := uploadCSVTo(b, "http://"+h.addr, "Serial Number,Product Name,Input Image URLs\n"+strings.Join(rows, "\n")+"\n")
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
		hostCPU := (h.cpuSeconds() - cpu0) / n
		u := h.stop()
		share, err := profileShare(prof, "github.com/imgpipe/imgpipe/shared/imagework.Compress")
		if err != nil {
			b.Fatal(err)
		}
		compressCPU := hostCPU * share
		v := getStatus(b, id)
		if v.Status != batch.Completed || v.ProcessedImages != n {
			b.Fatalf("%s: %d processed, %d failed", v.Status, v.ProcessedImages, v.FailedImages)
		}
		b.ReportMetric(hostCPU*1000, "host-cpu-ms/image")
		b.ReportMetric(compressCPU*1000, "compress-cpu-ms/image")
		b.ReportMetric(100*(hostCPU-compressCPU)/compressCPU, "overhead-%")
		b.ReportMetric(float64(u.FirestoreReads)/n, "firestore-reads/image")
		b.ReportMetric(float64(u.FirestoreWrites)/n, "firestore-writes/image")
		b.ReportMetric(float64(u.FirestoreReads+u.FirestoreWrites)/n, "firestore-ops/image")
		b.ReportMetric(float64(u.Messages)/n, "messages/image")
		b.ReportMetric(float64(u.ObjectWrites)/n, "object-writes/image")
		b.ReportMetric(rate, "emulator-bound-images/s")
		b.ReportMetric(raw, "in-process-images/s")
		b.ReportMetric(rate/raw, "ratio")
	}
}

// profileShare is the share of a CPU profile's samples that have fn on
// their stack.
func profileShare(file, fn string) (float64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return 0, fmt.Errorf("profile.Parse: %w", err)
	}
	var in, all int64
	for _, s := range p.Sample {
		v := s.Value[len(s.Value)-1] // cpu nanoseconds
		all += v
	stack:
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && l.Function.Name == fn {
					in += v
					break stack
				}
			}
		}
	}
	if all == 0 || in == 0 {
		return 0, fmt.Errorf("%s: %d of %d ns of samples in %s", file, in, all, fn)
	}
	return float64(in) / float64(all), nil
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

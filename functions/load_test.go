package functions_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// loadImages are the mixed inputs of the load test, served by imageServer:
// JPEG (baseline, progressive, EXIF-rotated), PNG and WebP from 17 to
// 118 kB, and /bench/ (make load passes a corpus photograph).
var loadImages = []string{"images/coffee.jpg", "images/chelsea.png", "images/astronaut.webp",
	"images/rocket-progressive.jpg", "images/coffee-exif-rotated.jpg", "bench/photo.jpg"}

// BenchmarkLoad (make load): IMGPIPE_LOAD_IMAGES images (20,000 unless
// set) of mixed kinds and sizes, 4 to a product, all distinct URLs,
// through a function host process on the local stack, as one request.
// It reports wall time and images/s, the host's CPU per image, and where
// each image's time went, from the host's own "image compressed" lines:
// waiting in Pub/Sub (upload accepted → delivery started), waiting for a
// compression slot, fetch, compress, store, record.
func BenchmarkLoad(b *testing.B) {
	needStack(b)
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("IMGPIPE_LOAD_IMAGES")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		s := emulatortest.Suffix()
		h := newDevhost(b, "load-"+s)
		h.start()
		base := "http://" + h.addr
		var csv strings.Builder
		csv.WriteString("Serial Number,Product Name,Input Image URLs\n")
		for p := 0; p < (n+3)/4; p++ {
			var urls []string
			for k := 0; k < 4 && p*4+k < n; k++ {
				i := p*4 + k
				urls = append(urls, fmt.Sprintf("%s/%s?load=%s-%d", imageURL, loadImages[i%len(loadImages)], s, i))
			}
			fmt.Fprintf(&csv, "L%d,Load %d,\"%s\"\n", p, p, strings.Join(urls, ","))
		}
		cpu0, sys0 := h.cpuSeconds(), machineCPUSeconds()
		start := time.Now()
		id, _ := uploadCSVTo(b, base, csv.String())
		uploaded := time.Since(start)
		var v wire.Status
		for {
			resp, err := http.Get(base + "/api/status/" + id + "?limit=1")
			if err != nil {
				b.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			if v.Status == batch.Completed || v.Status == batch.Failed {
				break
			}
			if time.Since(start) > 60*time.Minute {
				b.Fatalf("still %s after an hour: %d processed of %d", v.Status, v.ProcessedImages, n)
			}
			time.Sleep(time.Second)
		}
		wall := time.Since(start)
		hostCPU, machineCPU := h.cpuSeconds()-cpu0, machineCPUSeconds()-sys0
		if v.ProcessedImages != n {
			b.Errorf("%s: %d processed, %d failed of %d", v.Status, v.ProcessedImages, v.FailedImages, n)
		}
		ph := hostPhases(b, h.log.Name(), id, start.Add(uploaded))
		b.ReportMetric(float64(n)/wall.Seconds(), "images/s")
		b.ReportMetric(wall.Seconds(), "s-wall")
		b.ReportMetric(hostCPU/float64(n)*1000, "host-cpu-ms/image")
		fmt.Printf("\nload: %d images (%d kinds, 4 a product) in %.1f s = %.1f images/s; upload accepted in %.2f s\n",
			n, len(loadImages), wall.Seconds(), float64(n)/wall.Seconds(), uploaded.Seconds())
		fmt.Printf("CPU: function host %.1f s (%.2f ms an image), whole machine %.1f s of %.1f available (%d cores): emulators and image server %.1f s\n",
			hostCPU, hostCPU/float64(n)*1000, machineCPU, wall.Seconds()*float64(runtime.NumCPU()), runtime.NumCPU(), machineCPU-hostCPU)
		fmt.Printf("mean deliveries in flight at the host: %.2f (sum of delivery times / wall)\n", ph.inFlight(wall))
		fmt.Println("\n| where an image's time went | median ms | p95 ms | total s |")
		fmt.Println("|---|---|---|---|")
		for _, k := range []string{"queued", "slotMs", "fetchMs", "compressMs", "storeMs", "recordMs", "durationMs"} {
			v := ph[k]
			slices.Sort(v)
			total := 0.0
			for _, x := range v {
				total += x
			}
			fmt.Printf("| %s | %.0f | %.0f | %.1f |\n", phaseNames[k], quantile(v, 0.5), quantile(v, 0.95), total/1000)
		}
	}
}

var phaseNames = map[string]string{
	"queued": "queued in Pub/Sub (accepted → delivered)", "slotMs": "waiting for a compression slot",
	"fetchMs": "fetch", "compressMs": "compress", "storeMs": "store in the bucket",
	"recordMs": "record and count (Firestore)", "durationMs": "delivery, all of it",
}

// phases are per-image samples, in ms, by field of the log line.
type phases map[string][]float64

func (p phases) inFlight(wall time.Duration) float64 {
	total := 0.0
	for _, x := range p["durationMs"] {
		total += x
	}
	return total / float64(wall.Milliseconds())
}

// hostPhases reads the host's "image compressed" lines of request id.
// queued is the time from the upload's acceptance to the delivery's start.
func hostPhases(tb testing.TB, logPath, id string, accepted time.Time) phases {
	f, err := os.Open(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	out := phases{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["message"] != "image compressed" || line["requestId"] != id {
			continue
		}
		for _, k := range []string{"slotMs", "fetchMs", "compressMs", "storeMs", "recordMs", "durationMs"} {
			v, _ := line[k].(float64)
			out[k] = append(out[k], v)
		}
		if ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(line["time"])); err == nil {
			d, _ := line["durationMs"].(float64)
			out["queued"] = append(out["queued"], float64(ts.Sub(accepted).Milliseconds())-d)
		}
	}
	if len(out["durationMs"]) == 0 {
		tb.Fatalf("no \"image compressed\" line of %s in %s", id, logPath)
	}
	return out
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// cpuSeconds is the host process's user and system CPU time so far.
func (h *devhost) cpuSeconds() float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(h.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 12th, stime the 13th, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// machineCPUSeconds is the CPU time every core has spent busy so far.
func machineCPUSeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:]
	busy := 0.0
	for i, x := range f {
		v, _ := strconv.ParseFloat(x, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy / 100
}

package functions_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions"
	"github.com/imgpipe/imgpipe/functions/localstack"
	"github.com/imgpipe/imgpipe/shared/access"
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/config"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/store"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// End-to-end on the local stack: upload through the API, Pub/Sub pushes to
// the compress function (through a proxy that can deliver every message
// twice), outputs in fake-gcs-server, counts in the Firestore emulator.

// forwards counts the deliveries the proxy made, by dup mode.
var forwards = &counter{m: map[string]int{}}

// fetchCounts counts the image server's fetches by URL (path and query).
var fetchCounts = &counter{m: map[string]int{}}

type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) Add(k string, n int) {
	c.mu.Lock()
	c.m[k] += n
	c.mu.Unlock()
}

func (c *counter) Get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// withKey adds the tests' API key to calls to the API that carry none.
type withKey struct {
	key  func() string
	next http.RoundTripper
}

func (t withKey) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, "/api/") && r.Header.Get("X-API-Key") == "" && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-API-Key", t.key())
	}
	return t.next.RoundTrip(r)
}

var (
	// contractCheck, when the contract check is built in (contract_test.go,
	// in the faults build make test runs), wraps the transport of every
	// API call the tests make, and contractVerdict reports at the end.
	contractCheck   func(next http.RoundTripper) (http.RoundTripper, error)
	contractVerdict func() (failed bool)
	// webhookCheck validates a webhook delivery's body ("" when it is as
	// documented); nil without the contract check.
	webhookCheck func(body []byte) string

	firestoreProxy, gcsProxy *tcpProxy
	keys                     *access.Keys
	apiKey                   string
	apiKeyID                 string
	cfg                      config.Config
	apiURL                   string // the function host
	imageURL                 string // the test image server
	st                       *store.Store
)

// stackMissing says why the emulators cannot be used; "" when they can.
var stackMissing string

// needStack skips (or, under make test, fails) a test or benchmark when
// the emulators are not running.
func needStack(t testing.TB) {
	t.Helper()
	emulatortest.Need(t, stackMissing)
}

func TestMain(m *testing.M) {
	if stackMissing = emulatortest.Missing(emulatortest.All...); stackMissing != "" {
		// The tests that need no emulator still run: the functions get a
		// configuration whose clients are created but never reached.
		for k, v := range map[string]string{
			"GOOGLE_CLOUD_PROJECT": "imgpipe-unit", "IMGPIPE_BUCKET": "imgpipe-unit-images",
			"FIRESTORE_EMULATOR_HOST": "127.0.0.1:1", "PUBSUB_EMULATOR_HOST": "127.0.0.1:1",
			"STORAGE_EMULATOR_HOST": "http://127.0.0.1:1", "CLOUDTASKS_EMULATOR_HOST": "127.0.0.1:1",
		} {
			os.Setenv(k, v)
		}
		localstack.LocalDefaults("http://127.0.0.1:1")
		os.Setenv(functions.NoStackVar, stackMissing) // for this binary's in-package tests
		os.Exit(m.Run())
	}
	s := emulatortest.Suffix()
	for k, v := range map[string]string{
		"IMGPIPE_BUCKET": "imgpipe-e2e-" + s, "IMGPIPE_IMAGES_TOPIC": "images-" + s, "IMGPIPE_DEADLETTER_TOPIC": "dead-" + s,
		"IMGPIPE_WEBHOOK_QUEUE": "webhooks-" + s, "IMGPIPE_ALLOW_LOOPBACK": "true", "IMGPIPE_FETCH_TIMEOUT": "3s",
		// Fewer failed pushes per hopeless image: the Pub/Sub emulator throttles a
		// subscription after bursts of them.
		"IMGPIPE_MAX_DELIVERY_ATTEMPTS": "3",
		// The sweep test's stall window; sweeps run only when a test asks.
		"IMGPIPE_STALL_AFTER": "2s",
		// Reports past 4 KiB take the path a large production report takes:
		// stored in the bucket, answered with a link.
		"IMGPIPE_REPORT_INLINE_MAX_BYTES": "4096",
	} {
		os.Setenv(k, v)
	}
	// Firestore and GCS through proxies the fault tests can take down.
	var err error
	if firestoreProxy, err = newTCPProxy(os.Getenv("FIRESTORE_EMULATOR_HOST")); err != nil {
		fail(err)
	}
	os.Setenv("FIRESTORE_EMULATOR_HOST", firestoreProxy.Addr())
	if gcsProxy, err = newTCPProxy(strings.TrimPrefix(os.Getenv("STORAGE_EMULATOR_HOST"), "http://")); err != nil {
		fail(err)
	}
	os.Setenv("STORAGE_EMULATOR_HOST", "http://"+gcsProxy.Addr())
	os.Setenv("IMGPIPE_WEBHOOK_TIMEOUT", "2s")
	ctx := context.Background()
	if apiURL, err = localstack.StartHost(ctx, "127.0.0.1:0"); err != nil {
		fail(err)
	}
	localstack.LocalDefaults(apiURL)
	if cfg, err = config.Load(); err != nil {
		fail(err)
	}
	proxy := httptest.NewServer(duplicatingProxy(apiURL))
	// Dead letters within seconds, not production's 20 minutes: the sweep
	// test waits for one, and hopeless images finish sooner.
	wiring := localstack.FastRetries(localstack.ProductionWiring(cfg, proxy.URL))
	if err := localstack.Wire(ctx, wiring); err != nil {
		fail(err)
	}
	images := httptest.NewServer(imageServer())
	imageURL = images.URL
	if st, err = store.Open(ctx, cfg.Project); err != nil {
		fail(err)
	}
	keys = &access.Keys{FS: st.Firestore()}
	var key access.Key
	if apiKey, key, err = keys.Create(ctx, "tests", 100_000, 1_000_000); err != nil {
		fail(err)
	}
	apiKeyID = key.ID
	transport := http.DefaultTransport
	if contractCheck != nil {
		if transport, err = contractCheck(transport); err != nil {
			fail(err)
		}
	}
	http.DefaultTransport = withKey{key: func() string { return apiKey }, next: transport}
	code := m.Run()
	if contractVerdict != nil && contractVerdict() && code == 0 {
		code = 1
	}
	if err := localstack.Unwire(ctx, wiring); err != nil {
		fmt.Fprintln(os.Stderr, "Unwire:", err)
	}
	proxy.Close()
	images.Close()
	os.Exit(code)
}

// tinyJPEG is a 48×32 photo-like JPEG for load tests.
var tinyJPEG = func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 48, 32))
	for y := 0; y < 32; y++ {
		for x := 0; x < 48; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 5), uint8(y * 7), uint8(x * y), 255})
		}
	}
	var b bytes.Buffer
	jpeg.Encode(&b, img, &jpeg.Options{Quality: 95})
	return b.Bytes()
}()

// pngHeader is a PNG signature and IHDR claiming w×h, and nothing else.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.Write([]byte("\x89PNG\r\n\x1a\n"))
	chunk := []byte("IHDR\x00\x00\x00\x00\x00\x00\x00\x00\x08\x02\x00\x00\x00")
	binary.BigEndian.PutUint32(chunk[4:], w)
	binary.BigEndian.PutUint32(chunk[8:], h)
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// duplicatingProxy forwards Pub/Sub pushes to the host. An image whose URL
// carries dup=twice is delivered twice in a row; dup=concurrent, twice at
// once. It answers 2xx only when every forwarded delivery did. Messages go
// missing too: push=lose-first is acknowledged without being forwarded
// unless the sweep republished it (a message lost after its retries);
// push=crash answers 500 to every delivery, the dead-letter function's
// included (a function that crashes on it, and a dead-letter handler that
// always fails).
func duplicatingProxy(host string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct {
			Message struct {
				Data []byte `json:"data"`
			} `json:"message"`
		}
		_ = json.Unmarshal(body, &env)
		var m struct {
			URL         string `json:"url"`
			Republished int    `json:"republished"`
		}
		_ = json.Unmarshal(env.Message.Data, &m)
		mode := ""
		if u, err := url.Parse(m.URL); err == nil {
			mode = u.Query().Get("dup")
			switch push := u.Query().Get("push"); {
			case push == "lose-first" && m.Republished == 0:
				forwards.Add("lost", 1)
				w.WriteHeader(http.StatusNoContent)
				return
			case push == "crash" && strings.HasPrefix(r.URL.Path, functions.PushPath(functions.FnDeadLetter)):
				forwards.Add("dead letter crashed", 1)
				w.WriteHeader(http.StatusInternalServerError)
				return
			case push == "crash":
				forwards.Add("crashed", 1)
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
		forwards.Add(mode, 1)
		forward := func() int {
			resp, err := http.Post(host+r.URL.Path, r.Header.Get("Content-Type"), bytes.NewReader(body))
			if err != nil {
				return 502
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		codes := []int{}
		if mode == "twice" || mode == "concurrent" {
			forwards.Add(mode, 1)
		}
		switch mode {
		case "twice":
			codes = append(codes, forward(), forward())
		case "concurrent":
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := 0; i < 2; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := forward()
					mu.Lock()
					codes = append(codes, c)
					mu.Unlock()
				}()
			}
			wg.Wait()
		default:
			codes = append(codes, forward())
		}
		for _, c := range codes {
			if c < 200 || c > 299 {
				w.WriteHeader(c)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// imageServer serves testdata/images, plus hostile and broken answers.
func imageServer() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/images/", http.StripPrefix("/images/", http.FileServer(http.Dir(filepath.Join("..", "testdata", "images")))))
	mux.HandleFunc("/text.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg") // a lie
		w.Write([]byte("<html><body>not an image</body></html>"))
	})
	var mu sync.Mutex
	seen := map[string]int{}
	mux.HandleFunc("/flaky.jpg", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.RawQuery]++
		n := seen[r.URL.RawQuery]
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		http.ServeFile(w, r, filepath.Join("..", "testdata", "images", "coffee.jpg"))
	})
	mux.HandleFunc("/always-503.jpg", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/flaky2.jpg", func(w http.ResponseWriter, r *http.Request) { // 503 twice, then the photo
		mu.Lock()
		seen["2:"+r.URL.RawQuery]++
		n := seen["2:"+r.URL.RawQuery]
		mu.Unlock()
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		http.ServeFile(w, r, filepath.Join("..", "testdata", "images", "rocket-progressive.jpg"))
	})
	mux.HandleFunc("/hang.jpg", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/drip.jpg", func(w http.ResponseWriter, r *http.Request) { // a byte every 500 ms
		w.Header().Set("Content-Type", "image/jpeg")
		for i := 0; i < 1000; i++ {
			if _, err := w.Write([]byte{0xFF}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
	mux.HandleFunc("/bomb.png", func(w http.ResponseWriter, r *http.Request) { w.Write(pngHeader(100000, 100000)) })
	mux.HandleFunc("/truncated.jpg", func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile(filepath.Join("..", "testdata", "images", "coffee.jpg"))
		w.Write(b[:len(b)/2])
	})
	mux.HandleFunc("/tiny/", func(w http.ResponseWriter, r *http.Request) { w.Write(tinyJPEG) })
	mux.HandleFunc("/large/", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "large.jpg", time.Time{}, bytes.NewReader(largePhoto()))
	})
	// /bench/ answers as a static file server does, with Content-Length.
	mux.HandleFunc("/bench/", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "bench.jpg", time.Time{}, bytes.NewReader(benchImage))
	})
	// /counted/NAME serves testdata/images/NAME and counts the fetches of
	// each URL.
	mux.HandleFunc("/counted/", func(w http.ResponseWriter, r *http.Request) {
		fetchCounts.Add(r.URL.String(), 1)
		http.ServeFile(w, r, filepath.Join("..", "testdata", "images", filepath.Base(r.URL.Path)))
	})
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("delay"))
		if err != nil {
			d = 100 * time.Millisecond
		}
		time.Sleep(d)
		http.ServeFile(w, r, filepath.Join("..", "testdata", "images", strings.TrimPrefix(r.URL.Path, "/slow/")))
	})
	return mux
}

// fixtureProducts builds 22 products, 55 images: JPEG (baseline,
// progressive, EXIF-rotated), PNG, GIF, WebP, and 5 that must fail.
func fixtureProducts(dup string) (products []batch.Product, wantFailed map[string]string) {
	good := []string{"coffee.jpg", "rocket-progressive.jpg", "chelsea.png", "astronaut.webp", "coffee-exif-rotated.jpg", "chelsea-animated.gif"}
	q := "?dup=" + dup
	wantFailed = map[string]string{
		imageURL + "/images/missing.jpg" + q: "http_404",
		imageURL + "/text.jpg" + q:           "not_an_image",
		"http://127.0.0.1:1/refused.jpg" + q: "", // transient: retried, then dead-lettered
	}
	k := 0
	for i := 0; i < 22; i++ {
		p := batch.Product{SerialNumber: fmt.Sprintf("SKU-%03d", i+1), ProductName: fmt.Sprintf("Product %d", i+1)}
		n := 2 + i%2 // 2 or 3 URLs
		if i == 21 {
			n = 4
		}
		for j := 0; j < n; j++ {
			p.InputURLs = append(p.InputURLs, fmt.Sprintf("%s/images/%s%s&k=%d", imageURL, good[k%len(good)], q, k))
			k++
		}
		products = append(products, p)
	}
	products[3].InputURLs[1] = imageURL + "/images/missing.jpg" + q
	products[7].InputURLs[0] = imageURL + "/text.jpg" + q
	products[12].InputURLs[1] = imageURL + "/flaky.jpg" + q // 503 once, then fine
	return products, wantFailed
}

func csvOf(products []batch.Product) string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write([]string{"Serial Number", "Product Name", "Input Image URLs"})
	for _, p := range products {
		w.Write([]string{p.SerialNumber, p.ProductName, strings.Join(p.InputURLs, ", ")})
	}
	w.Flush()
	return b.String()
}

func uploadCSV(t testing.TB, body string) (string, int) {
	t.Helper()
	return uploadCSVTo(t, apiURL, body)
}

// uploadCSVTo uploads body to the function host at base.
func uploadCSVTo(t testing.TB, base, body string) (string, int) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("csv", "products.csv")
	fw.Write([]byte(body))
	mw.WriteField("quality", "50")
	mw.Close()
	resp, err := http.Post(base+"/api/upload", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		RequestID   string `json:"requestId"`
		Status      string `json:"status"`
		TotalImages int    `json:"totalImages"`
		StatusURL   string `json:"statusUrl"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Status != "PENDING" || out.StatusURL != base+"/api/status/"+out.RequestID || len(out.RequestID) != 26 {
		t.Fatalf("upload response %s (%v)", raw, err)
	}
	return out.RequestID, out.TotalImages
}

func getStatus(t testing.TB, id string) wire.Status {
	t.Helper()
	resp, err := http.Get(apiURL + "/api/status/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v wire.Status
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func awaitFinal(t testing.TB, id string, within time.Duration) wire.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := getStatus(t, id)
		if v.Status == batch.Completed || v.Status == batch.Failed {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s still %s after %v: %d processed, %d failed of %d", id, v.Status, within, v.ProcessedImages, v.FailedImages, v.TotalImages)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestPipelineEndToEnd(t *testing.T) {
	needStack(t)
	for _, dup := range []string{"none", "twice", "concurrent"} {
		t.Run("delivery="+dup, func(t *testing.T) {
			t.Parallel()
			runPipeline(t, dup)
		})
	}
}

func runPipeline(t *testing.T, dup string) {
	products, wantFailed := fixtureProducts(dup)
	// The unreachable URL goes to the last product, so dead-lettering is covered too.
	products[21].InputURLs[3] = "http://127.0.0.1:1/refused.jpg?dup=" + dup
	total := 0
	for _, p := range products {
		total += len(p.InputURLs)
	}
	start := time.Now()
	id, gotTotal := uploadCSV(t, csvOf(products))
	if gotTotal != total || total < 50 || len(products) < 20 {
		t.Fatalf("totalImages %d, want %d (≥50, %d products)", gotTotal, total, len(products))
	}
	v := awaitFinal(t, id, 120*time.Second)
	t.Logf("delivery=%s: %d images finished in %v", dup, total, time.Since(start))

	if v.Status != batch.Completed || v.ProcessedImages != total-3 || v.FailedImages != 3 || v.TotalImages != total {
		t.Errorf("final status %s processed %d failed %d total %d; want COMPLETED %d/3/%d", v.Status, v.ProcessedImages, v.FailedImages, v.TotalImages, total-3, total)
	}
	if len(v.Products) != len(products) {
		t.Fatalf("%d products in status, want %d", len(v.Products), len(products))
	}
	inputs := map[string][]byte{}
	for i, p := range v.Products {
		if p.SerialNumber != products[i].SerialNumber || strings.Join(p.InputImageURLs, " ") != strings.Join(products[i].InputURLs, " ") {
			t.Errorf("product %d out of order or altered: %+v", i, p)
		}
		if len(p.OutputImageURLs) != len(p.InputImageURLs) {
			t.Errorf("product %d: %d outputs for %d inputs", i, len(p.OutputImageURLs), len(p.InputImageURLs))
			continue
		}
		failedAt := map[int]wire.ImageError{}
		for _, e := range p.Errors {
			failedAt[e.Index] = e
		}
		for u, in := range p.InputImageURLs {
			reason, mustFail := wantFailed[in]
			if e, failed := failedAt[u]; failed {
				if !mustFail {
					t.Errorf("%s failed unexpectedly: %+v", in, e)
				} else if reason != "" && e.Reason != reason {
					t.Errorf("%s failed with %q, want %q", in, e.Reason, reason)
				} else if reason == "" && e.Reason != "dead_lettered" && e.Reason != "connection_failed" {
					t.Errorf("%s failed with %q, want dead_lettered", in, e.Reason)
				}
				if p.OutputImageURLs[u] != "" || e.Message == "" {
					t.Errorf("%s: failed image with output %q message %q", in, p.OutputImageURLs[u], e.Message)
				}
				continue
			}
			if mustFail {
				t.Errorf("%s did not fail", in)
				continue
			}
			out := fetch(t, p.OutputImageURLs[u])
			if _, err := jpeg.DecodeConfig(bytes.NewReader(out)); err != nil {
				t.Errorf("output of %s is not a JPEG: %v", in, err)
			}
			if inputs[in] == nil {
				inputs[in] = fetch(t, strings.Replace(in, "/flaky.jpg", "/images/coffee.jpg", 1))
			}
			if len(out) > len(inputs[in]) {
				t.Errorf("output of %s is %d bytes, input %d", in, len(out), len(inputs[in]))
			}
		}
	}

	// The report says what the status says.
	resp, err := http.Get(apiURL + "/api/report/" + id)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("report: %v (%s)", err, resp.Header.Get("Content-Type"))
	}
	if strings.Join(rows[0], "|") != "Serial Number|Product Name|Input Image URLs|Output Image URLs" || len(rows) != len(products)+1 {
		t.Fatalf("report header %v, %d rows", rows[0], len(rows))
	}
	for i, p := range v.Products {
		want := []string{p.SerialNumber, p.ProductName, strings.Join(p.InputImageURLs, ", "), strings.Join(p.OutputImageURLs, ", ")}
		if strings.Join(rows[i+1], "|") != strings.Join(want, "|") {
			t.Errorf("report row %d = %q, want %q", i+1, rows[i+1], want)
		}
	}

	if n := forwards.Get(dup); dup != "none" && n < 2*total {
		t.Errorf("the proxy made %d deliveries for %d images: duplicates did not happen", n, total)
	}
	t.Logf("delivery=%s: %d pushes forwarded for %d images", dup, forwards.Get(dup), total)

	// One completion, one hook call, however often messages came.
	comp, found, err := st.GetCompletion(context.Background(), id)
	if err != nil || !found || comp.HookCalls != 1 || !comp.HookFired {
		t.Errorf("completion %+v found %v err %v, want exactly one hook call", comp, found, err)
	}
}

func fetch(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	return b
}

func TestAPIErrors(t *testing.T) {
	needStack(t)
	t.Parallel()
	// A problem after 2,500 good rows: two chunks are stored by then, and
	// the upload is still refused whole.
	var late strings.Builder
	late.WriteString("Serial Number,Product Name,Input Image URLs\n")
	for i := range 2500 {
		fmt.Fprintf(&late, "S%d,Product %d,http://x.example/%d.jpg\n", i, i, i)
	}
	late.WriteString("S7,Again,http://x.example/again.jpg\n")
	tests := []struct {
		name, ctype, body string
		status            int
		want              string
	}{
		{"csv problems", "text/csv", "Serial Number,Product Name,Input Image URLs\n1,,ftp://x\n", 400, `line 2, column \"Product Name\": is empty`},
		{"late problem", "text/csv", late.String(), 400, `line 2502, column \"Serial Number\": \"S7\" is a duplicate of line 9`},
		{"json problems", "application/json", `{"products":[]}`, 400, `\"products\" is missing or empty`},
		{"wrong type", "image/png", "x", 415, `is not accepted`},
		{"bad quality", "text/csv", "Serial Number,Product Name,Input Image URLs\n1,a,http://x.example/a.jpg\n", 400, `quality: \"abc\" is not a whole number`},
	}
	for _, tt := range tests {
		u := apiURL + "/api/upload"
		if tt.name == "bad quality" {
			u += "?quality=abc"
		}
		resp, err := http.Post(u, tt.ctype, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: %d %s; want %d containing %s", tt.name, resp.StatusCode, b, tt.status, tt.want)
		}
	}
	for _, path := range []string{"/api/status/nosuchrequest", "/api/report/nosuchrequest", "/api/nothing"} {
		resp, err := http.Get(apiURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !strings.Contains(string(b), `"code": "not_found"`) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
}

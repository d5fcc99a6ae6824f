//go:build faults

package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/viewlink"
)

// The browser tests are built with the end-to-end suite (-tags faults, as
// make test runs it): chromedp is too heavy for this package's fuzz builds.

// chromium starts a headless Chromium (Debian's; make test installs it)
// and returns a browser context.
func chromium(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("no Chromium on PATH: make test installs Debian's chromium (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1600), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// evalUntil evaluates js every 200 ms until it returns true.
func evalUntil(ctx context.Context, t *testing.T, within time.Duration, what, js string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + document.title + " | " +
				Array.from(document.querySelectorAll("img")).map(i => i.alt + ":" + i.complete + ":" + i.naturalWidth).join(" ")`))
			t.Fatalf("%s: not within %v (the page: %s)", what, within, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The status page in a real browser: progress moves from running to
// 100 %, the thumbnails load, a failed image says why in words, the page
// holds no key or secret, and a tampered link gets 404. A screenshot is
// saved under .stack/screenshots.
func TestStatusPageInChromium(t *testing.T) {
	needStack(t)
	ctx := chromium(t)
	q := emulatortest.Suffix()
	var rows []string
	names := []string{"coffee.jpg", "chelsea.png", "astronaut.webp", "rocket-progressive.jpg"}
	for i := 0; i < 8; i++ {
		rows = append(rows, fmt.Sprintf("P%d,Product %d,%s/slow/%s?delay=%dms&view=%s", i, i, imageURL, names[i%4], 600+300*i, q))
	}
	rows = append(rows, fmt.Sprintf("P8,Missing lamp,%s/images/no-such-lamp.jpg?view=%s", imageURL, q))
	body := "Serial Number,Product Name,Input Image URLs\n" + strings.Join(rows, "\n") + "\n"
	resp, err := http.Post(apiURL+"/api/upload", "text/csv", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ RequestID, ViewURL string }
	json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if up.ViewURL == "" {
		t.Fatalf("the upload answered no viewUrl (%s)", resp.Status)
	}

	// Progress, read as the page shows it, until the request is done.
	var seen []int
	if err := chromedp.Do(ctx, chromedp.Navigate(up.ViewURL)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		pct, err := chromedp.Run(ctx, chromedp.Evaluate[int](`parseInt(document.getElementById("percent").textContent, 10)`))
		if err == nil && (len(seen) == 0 || seen[len(seen)-1] != pct) {
			seen = append(seen, pct)
		}
		if err == nil && pct == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page's progress went %v and stopped", seen)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if len(seen) < 3 || seen[0] >= 100 {
		t.Errorf("progress seen %v: want it to move from running to 100 %%", seen)
	}
	// Finished: the page reloads itself with every picture.
	evalUntil(ctx, t, 30*time.Second, "the finished page with 8 loaded thumbnails",
		`(window.scrollTo(0, document.body.scrollHeight), true) &&
		 document.getElementById("status").textContent === "COMPLETED" &&
		 document.querySelectorAll("img.thumb").length === 8 &&
		 Array.from(document.querySelectorAll("img.thumb")).every(i => i.complete && i.naturalWidth > 0)`)
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`Array.from(document.querySelectorAll("img.thumb")).map(i => i.naturalWidth)`))
	if err != nil {
		t.Fatal(err)
	}
	reason, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(".failed .reason").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range widths {
		if w <= 0 || w > 160 {
			t.Errorf("thumbnail widths %v: want each loaded and at most 160 px", widths)
			break
		}
	}
	if !strings.Contains(reason, "no image at this link") {
		t.Errorf("the failed image says %q, not why in words", reason)
	}
	for _, secret := range append([]string{apiKey, "whsec_", "X-API-Key"}, cfg.WebhookSecrets...) {
		if strings.Contains(html, secret) {
			t.Errorf("the page holds %q", secret)
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", ".stack", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		path := filepath.Join(dir, "status-page.png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("screenshot: %s (%d bytes); progress seen %v", path, len(shot), seen)
	}

	// A tampered token, another request's token, no token: 404, in the
	// browser as from any client.
	i := strings.Index(up.ViewURL, "?t=") + 5 // a character inside the token
	swap := byte('A')
	if up.ViewURL[i] == 'A' {
		swap = 'B'
	}
	tampered := up.ViewURL[:i] + string(swap) + up.ViewURL[i+1:]
	noToken := up.ViewURL[:strings.Index(up.ViewURL, "?")]
	for _, u := range []string{tampered, noToken, strings.Replace(up.ViewURL, up.RequestID, "x"+up.RequestID[1:], 1)} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(b), "P0") {
			t.Errorf("%s: %s %q, want 404 and nothing of the request", u, resp.Status, b)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(tampered)); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "Product 0") || !strings.Contains(text, "not found") {
		t.Errorf("a tampered link shows %q", text)
	}
}

// The status page of a 10,000-product request: the first page's HTML
// size and its time to first render in Chromium, on the local stack. The
// request is stored, not processed: the page reads 20 products, whatever
// the request's size.
func TestStatusPageOf10000Products(t *testing.T) {
	needStack(t)
	ctx := chromium(t)
	products := make([]batch.Product, 10_000)
	for i := range products {
		products[i] = batch.Product{SerialNumber: fmt.Sprint("S", i), ProductName: fmt.Sprint("Product ", i),
			InputURLs: []string{fmt.Sprintf("https://img.example/%d.jpg", i)}}
	}
	r, err := st.CreateRequest(context.Background(), batch.Request{ID: pipeline.NewRequestID(), Owner: apiKeyID, TotalImages: 10_000, Quality: 50}, products)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := viewlink.NewSigner(cfg.ViewLinkKeys)
	if err != nil {
		t.Fatal(err)
	}
	link := apiURL + "/api/view/" + r.ID + "?t=" + signer.Token(r.ID, apiKeyID, time.Now().Add(time.Hour))
	jar, _ := cookiejar.New(nil)
	start := time.Now()
	resp, err := (&http.Client{Jar: jar}).Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	served := time.Since(start)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Products 1–20 of 10000") || strings.Count(string(page), "data-image=") != 20 {
		t.Fatalf("%s: %d bytes, want the first 20 of 10000 products", resp.Status, len(page))
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	evalUntil(ctx, t, 10*time.Second, "a first contentful paint",
		`performance.getEntriesByName("first-contentful-paint").length > 0`)
	paint, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByName("first-contentful-paint")[0].startTime`))
	if err != nil {
		t.Fatal(err)
	}
	next, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("next").getAttribute("href")`))
	if err != nil || !strings.Contains(next, "page=2") {
		t.Errorf("no link to the next page: %q %v", next, err)
	}
	t.Logf("10,000-product request: first page %d bytes of HTML, served in %v, first contentful paint at %.0f ms in Chromium",
		len(page), served.Round(time.Millisecond), paint)
}

// A request with sizes: the page says how outputs are sized, and each
// image shows its main output's size and a link to every extra size, which
// serves a JPEG of that size.
func TestStatusPageShowsSizes(t *testing.T) {
	needStack(t)
	ctx := chromium(t)
	q := emulatortest.Suffix()
	body := fmt.Sprintf("Serial Number,Product Name,Input Image URLs\nZ1,Mug,\"%s/images/coffee.jpg?viewsizes=%s,%s/images/chelsea.png?viewsizes=%s\"\n", imageURL, q, imageURL, q)
	resp, err := http.Post(apiURL+"/api/upload?maxWidth=300&sizes=thumb:100,box:x50", "text/csv", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ RequestID, ViewURL string }
	json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if up.ViewURL == "" {
		t.Fatalf("the upload answered no viewUrl (%s)", resp.Status)
	}
	awaitFinal(t, up.RequestID, 60*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(up.ViewURL)); err != nil {
		t.Fatal(err)
	}
	evalUntil(ctx, t, 20*time.Second, "the finished page with its size links",
		`document.getElementById("status").textContent === "COMPLETED" && document.querySelectorAll("a.size").length === 4`)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
		Sizing string
		Dims   []string
		Links  [][2]string
	}](`({sizing: document.getElementById("sizing").textContent,
		dims: Array.from(document.querySelectorAll(".dims")).map(e => e.textContent),
		links: Array.from(document.querySelectorAll("a.size")).map(a => [a.textContent, a.href])})`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Sizing != "main fit in 300×any; thumb 100×any, box any×50" || strings.Join(got.Dims, " ") != "300×200 300×200" {
		t.Errorf("the page says sizing %q, dims %q", got.Sizing, got.Dims)
	}
	want := map[string]string{"thumb 100×67": "100×67", "box 75×50": "75×50"}
	for _, l := range got.Links {
		dims, ok := want[l[0]]
		if !ok {
			t.Errorf("size link %q", l[0])
			continue
		}
		resp, err := http.Get(l[1])
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(resp.Body)
		resp.Body.Close()
		if err != nil || fmt.Sprintf("%d×%d", cfg.Width, cfg.Height) != dims {
			t.Errorf("%s → %s: %d×%d (%v)", l[0], l[1], cfg.Width, cfg.Height, err)
		}
	}
}

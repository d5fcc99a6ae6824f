package functions_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
)

// largePhoto is a 4000×3000 photo-like JPEG (quality 90, 4:2:0), made once.
var largePhoto = sync.OnceValue(func() []byte {
	img := image.NewYCbCr(image.Rect(0, 0, 4000, 3000), image.YCbCrSubsampleRatio420)
	for y := 0; y < 3000; y++ {
		for x := 0; x < 4000; x++ {
			v := 128 + 60*math.Sin(float64(x)/37) + 40*math.Cos(float64(y)/23) + float64((x*7+y*13)%17)
			img.Y[y*img.YStride+x] = uint8(max(0, min(255, v)))
		}
	}
	for y := 0; y < 1500; y++ {
		for x := 0; x < 2000; x++ {
			img.Cb[y*img.CStride+x] = uint8(x * 255 / 2000)
			img.Cr[y*img.CStride+x] = uint8(y * 255 / 1500)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return b.Bytes()
})

// A CSV uploaded with maxWidth=1600&sizes=… runs end to end: every output
// is a JPEG fit inside its box (never enlarged, aspect ratio within a
// pixel), a URL listed twice shares its outputs, deliveries made twice and
// concurrently count once, and the report has a column per size.
func TestSizedRequestEndToEnd(t *testing.T) {
	needStack(t)
	t.Parallel()
	large := imageURL + "/large/photo.jpg"
	inputs := map[string]struct{ w, h int }{ // upright sizes
		large + "?dup=twice":                                       {4000, 3000},
		large + "?dup=concurrent&k=2":                              {4000, 3000},
		imageURL + "/images/coffee-exif-rotated.jpg?dup=twice":     {320, 213},
		imageURL + "/images/rocket-progressive.jpg?dup=concurrent": {640, 427},
		imageURL + "/images/chelsea.png":                           {320, 213},
		imageURL + "/images/astronaut.webp?dup=twice":              {384, 384},
	}
	products := []batch.Product{
		{SerialNumber: "A1", ProductName: "Large", InputURLs: []string{large + "?dup=twice", imageURL + "/images/chelsea.png"}},
		{SerialNumber: "A2", ProductName: "Large again", InputURLs: []string{large + "?dup=concurrent&k=2", imageURL + "/images/coffee-exif-rotated.jpg?dup=twice"}},
		{SerialNumber: "A3", ProductName: "Mixed", InputURLs: []string{imageURL + "/images/rocket-progressive.jpg?dup=concurrent", imageURL + "/images/astronaut.webp?dup=twice", large + "?dup=twice"}},
	}
	boxes := map[string][2]int{"": {1600, 0}, "thumb": {200, 0}, "medium": {800, 800}, "tall": {0, 300}}
	hook := newReceiver(t, func(int) int { return http.StatusNoContent })
	q := url.Values{"maxWidth": {"1600"}, "sizes": {`[{"name":"thumb","width":200},{"name":"medium","width":800,"height":800},{"name":"tall","height":300}]`},
		"webhookUrl": {hook.URL + "/hooks"}}
	resp, err := http.Post(apiURL+"/api/upload?"+q.Encode(), "text/csv", strings.NewReader(csvOf(products)))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var up struct {
		RequestID   string `json:"requestId"`
		TotalImages int    `json:"totalImages"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &up) != nil || up.TotalImages != 7 {
		t.Fatalf("upload: %d %s", resp.StatusCode, raw)
	}
	v := awaitFinal(t, up.RequestID, 120*time.Second)
	if v.Status != batch.Completed || v.ProcessedImages != 7 || v.FailedImages != 0 {
		t.Fatalf("status %s, %d processed, %d failed of %d", v.Status, v.ProcessedImages, v.FailedImages, v.TotalImages)
	}
	if v.Sizing == nil || v.Sizing.MaxWidth != 1600 || len(v.Sizing.Sizes) != 3 {
		t.Errorf("status sizing %+v", v.Sizing)
	}
	checkOut := func(in, name, link string, wantW, wantH int) {
		t.Helper()
		img, err := jpeg.Decode(bytes.NewReader(fetch(t, link)))
		if err != nil {
			t.Errorf("%s %s: not a JPEG: %v", in, name, err)
			return
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		src := inputs[in]
		box := boxes[name]
		if w != wantW || h != wantH {
			t.Errorf("%s %s: status says %d×%d, the object is %d×%d", in, name, wantW, wantH, w, h)
		}
		if w > src.w || h > src.h {
			t.Errorf("%s %s: %d×%d enlarged from %d×%d", in, name, w, h, src.w, src.h)
		}
		if box[0] > 0 && w > box[0] || box[1] > 0 && h > box[1] {
			t.Errorf("%s %s: %d×%d is not inside %v", in, name, w, h, box)
		}
		// It fills the box on one side, unless the input was smaller.
		fills := (box[0] > 0 && w == box[0]) || (box[1] > 0 && h == box[1]) || (w == src.w && h == src.h)
		if d := float64(w)*float64(src.h)/float64(src.w) - float64(h); !fills || math.Abs(d) > 1 {
			t.Errorf("%s %s: %d×%d from %d×%d in %v: off the aspect ratio by %.2f px, fills the box %v", in, name, w, h, src.w, src.h, box, d, fills)
		}
	}
	objects := map[string]bool{}
	for _, p := range v.Products {
		if len(p.Outputs) != len(p.InputImageURLs) {
			t.Fatalf("product %s: %d outputs for %d images", p.SerialNumber, len(p.Outputs), len(p.InputImageURLs))
		}
		for _, o := range p.Outputs {
			in := p.InputImageURLs[o.Index]
			checkOut(in, "", p.OutputImageURLs[o.Index], o.Width, o.Height)
			objects[p.OutputImageURLs[o.Index]] = true
			for name := range boxes {
				if name == "" {
					continue
				}
				sz, ok := o.Sizes[name]
				if !ok {
					t.Errorf("%s: no %q output in %+v", in, name, o.Sizes)
					continue
				}
				checkOut(in, name, sz.URL, sz.Width, sz.Height)
				objects[sz.URL] = true
			}
		}
	}
	// The large photo is listed three times under two URLs: two sets of
	// outputs, 6 distinct URLs × 4 outputs.
	if len(objects) != 6*4 {
		t.Errorf("%d distinct output objects, want 24", len(objects))
	}

	resp, err = http.Get(apiURL + "/api/report/" + up.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := "Serial Number|Product Name|Input Image URLs|Output Image URLs|Output Image URLs (thumb)|Output Image URLs (medium)|Output Image URLs (tall)"
	if strings.Join(rows[0], "|") != wantHeader || len(rows) != 4 {
		t.Fatalf("report header %q, %d rows", rows[0], len(rows))
	}
	for i, p := range v.Products {
		for c, name := range []string{"thumb", "medium", "tall"} {
			var want []string
			for _, o := range p.Outputs {
				want = append(want, o.Sizes[name].URL)
			}
			if rows[i+1][4+c] != strings.Join(want, ", ") {
				t.Errorf("report row %d, %s: %q, want %q", i+1, name, rows[i+1][4+c], strings.Join(want, ", "))
			}
		}
	}
	// The webhook lists each size's outputs too, aligned to the inputs.
	var payload struct {
		Products []struct {
			SerialNumber  string              `json:"serialNumber"`
			SizeImageURLs map[string][]string `json:"sizeImageUrls"`
		} `json:"products"`
	}
	if err := json.Unmarshal(hook.await(t, 1, 30*time.Second)[0].body, &payload); err != nil || len(payload.Products) != len(v.Products) {
		t.Fatalf("webhook payload: %v, %d products", err, len(payload.Products))
	}
	for i, p := range v.Products {
		for _, name := range []string{"thumb", "medium", "tall"} {
			var want []string
			for _, o := range p.Outputs {
				want = append(want, o.Sizes[name].URL)
			}
			if got := payload.Products[i].SizeImageURLs[name]; strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("webhook product %s, %s: %q, want %q", p.SerialNumber, name, got, want)
			}
		}
	}
	comp, found, err := st.GetCompletion(t.Context(), up.RequestID)
	if err != nil || !found || comp.HookCalls != 1 {
		t.Errorf("completion %+v (found %v, %v)", comp, found, err)
	}
}

// Sizing options are checked before anything is stored: each problem is
// a detail of one 400.
func TestSizingRefused(t *testing.T) {
	needStack(t)
	t.Parallel()
	body := csvOf([]batch.Product{{SerialNumber: "1", ProductName: "a", InputURLs: []string{imageURL + "/images/coffee.jpg"}}})
	for query, want := range map[string][]string{
		"maxWidth=0&sizes=thumb:200,thumb:300":                                 {`maxWidth: \"0\" is not a whole number from 1 to 20000`, `sizes[1].name: \"thumb\" is also the name of sizes[0]`},
		"sizes=" + url.QueryEscape(`[{"name":"t","width":200,"fit":"cover"}]`): {`sizes[0]: want {\"name\", \"width\", \"height\"}: json: unknown field \"fit\"`},
		"sizes=a:1,b:1,c:1,d:1,e:1,f:1":                                        {`sizes: 6 sizes, more than 5`},
	} {
		resp, err := http.Post(apiURL+"/api/upload?"+query, "text/csv", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if resp.StatusCode != 400 || !strings.Contains(string(b), w) {
				t.Errorf("%s: %d %s, want 400 saying %s", query, resp.StatusCode, b, w)
			}
		}
	}
}

// A request whose sizing could pass the pixel cap is refused at upload,
// saying why, and its image host is never asked for the image; the same
// upload within the cap, sent after it, is fetched and finishes.
func TestPixelCapRefusedBeforeFetch(t *testing.T) {
	needStack(t)
	t.Parallel()
	var mu sync.Mutex
	hits := map[string]int{}
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		http.ServeFile(w, r, filepath.Join("..", "testdata", "images", "coffee.jpg"))
	}))
	defer host.Close()
	upload := func(path, sizes string) (int, []byte) {
		products := []batch.Product{{SerialNumber: "C1", ProductName: "Capped", InputURLs: []string{host.URL + path}}}
		resp, err := http.Post(apiURL+"/api/upload?"+url.Values{"sizes": {sizes}}.Encode(), "text/csv", strings.NewReader(csvOf(products)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}
	code, raw := upload("/refused.jpg", "a:10000,b:10000")
	if code != http.StatusBadRequest || !strings.Contains(string(raw), "more than the cap of 100000000") {
		t.Fatalf("over the cap: %d %s, want a 400 naming the cap", code, raw)
	}
	code, raw = upload("/accepted.jpg", "a:10000")
	var up struct {
		RequestID string `json:"requestId"`
	}
	if code != http.StatusAccepted || json.Unmarshal(raw, &up) != nil {
		t.Fatalf("at the cap: %d %s", code, raw)
	}
	if v := awaitFinal(t, up.RequestID, time.Minute); v.Status != batch.Completed {
		t.Fatalf("accepted request %s", v.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits["/refused.jpg"] != 0 || hits["/accepted.jpg"] == 0 {
		t.Fatalf("image host asked %v, want the refused image never and the accepted one", hits)
	}
	// compressImage ran in this process (the local host): it set the soft
	// memory limit its memory rule gives it.
	if os.Getenv("GOMEMLIMIT") == "" && debug.SetMemoryLimit(-1) == math.MaxInt64 {
		t.Error("compressImage ran, and the soft memory limit is still unset")
	}
}

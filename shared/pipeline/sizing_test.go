package pipeline_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image/jpeg"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/imagework"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// keepObjects makes h's bucket keep every object's bytes.
func keepObjects(h *harness) *sync.Map {
	var objects sync.Map
	h.svc.Bucket = &bucket{PutFn: func(_ context.Context, name string, data []byte) error {
		objects.Store(name, bytes.Clone(data))
		return nil
	}}
	return &objects
}

// A request with sizing stores, per distinct URL, the main output fit
// inside maxWidth and one object per size, each a JPEG of its box's size;
// the copies of a repeated URL share them; counts stay exact under
// duplicate and concurrent deliveries; status and report list the sizes.
func TestSizedRequest(t *testing.T) {
	h := newHarness(t)
	objects := keepObjects(h)
	sizing := batch.Sizing{MaxWidth: 300, Sizes: []batch.Size{{Name: "thumb", Width: 100}, {Name: "square", Width: 150, Height: 150}, {Name: "big", Width: 5000}}}
	ps := products(3, 2)
	ps[2].InputURLs[1] = ps[0].InputURLs[0] // a repeat: a copy of image 0-0
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, h.svc.NewUpload(ctx), batch.Submission{Products: ps, Quality: 50, Sizing: sizing}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.msgs) != 5 {
		t.Fatalf("%d messages for 5 distinct URLs", len(h.msgs))
	}
	h.deliverAllAtOnce(1)
	var wg sync.WaitGroup
	for _, m := range h.msgs {
		for range 2 {
			wg.Go(func() {
				if err := h.deliver(m, 2); err != nil {
					t.Errorf("redelivery of %s: %v", m.Image.ID(), err)
				}
			})
		}
	}
	wg.Wait()
	h.checkFinished(r, 6, 0, batch.Completed)

	// coffee.jpg is 600×400.
	want := map[string][2]int{"": {300, 200}, "thumb": {100, 67}, "square": {150, 100}, "big": {600, 400}}
	n := 0
	objects.Range(func(k, v any) bool {
		n++
		name := k.(string)
		size := ""
		if base := strings.TrimSuffix(name[strings.LastIndex(name, "/")+1:], ".jpg"); strings.Count(base, "-") == 2 {
			size = base[strings.LastIndex(base, "-")+1:]
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(v.([]byte)))
		if w := want[size]; err != nil || cfg.Width != w[0] || cfg.Height != w[1] {
			t.Errorf("%s: %d×%d (%v), want %d×%d", name, cfg.Width, cfg.Height, err, w[0], w[1])
		}
		return true
	})
	if n != 5*4 {
		t.Errorf("%d objects, want 20 (5 distinct URLs × main and 3 sizes)", n)
	}
	copyRes, _ := h.st.result(r.ID, batch.ImageRef{Product: 2, URL: 1})
	if copyRes.SameAs != "0-0" || len(copyRes.Sizes) != 3 || copyRes.Sizes[0].Object != batch.SizeObjectName(r.ID, batch.ImageRef{}, "thumb") {
		t.Errorf("the copy's result %+v, want image 0-0's outputs", copyRes)
	}

	v, err := h.svc.Status(ctx, r.ID, "owner", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if v.Sizing == nil || len(v.Sizing.Sizes) != 3 {
		t.Errorf("status sizing %+v", v.Sizing)
	}
	for _, p := range v.Products {
		if len(p.Outputs) != len(p.InputImageURLs) {
			t.Fatalf("product %s: %d outputs for %d images", p.SerialNumber, len(p.Outputs), len(p.InputImageURLs))
		}
		for _, o := range p.Outputs {
			if o.Width != 300 || o.Height != 200 || len(o.Sizes) != 3 || o.Sizes["thumb"].Width != 100 || !strings.HasSuffix(o.Sizes["thumb"].URL, "-thumb.jpg") {
				t.Errorf("product %s image %d outputs %+v", p.SerialNumber, o.Index, o)
			}
		}
	}

	var report bytes.Buffer
	if err := h.svc.Report(ctx, r.ID, "owner", &report); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&report).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{"Serial Number", "Product Name", "Input Image URLs", "Output Image URLs", "Output Image URLs (thumb)", "Output Image URLs (square)", "Output Image URLs (big)"}
	if fmt.Sprint(rows[0]) != fmt.Sprint(wantHeader) {
		t.Errorf("report header %q, want %q", rows[0], wantHeader)
	}
	for _, row := range rows[1:] {
		for c, suffix := range map[int]string{3: ".jpg", 4: "-thumb.jpg", 5: "-square.jpg", 6: "-big.jpg"} {
			urls := strings.Split(row[c], ", ")
			if len(urls) != 2 || !strings.HasSuffix(urls[0], suffix) || !strings.HasSuffix(urls[1], suffix) {
				t.Errorf("report row %s column %d: %q", row[0], c, row[c])
			}
		}
	}
}

// A request without sizing stores exactly Compress's bytes, one object an
// image, and its message, status and report carry nothing of sizes.
func TestUnsizedRequestKeepsItsBytes(t *testing.T) {
	h := newHarness(t)
	objects := keepObjects(h)
	r := h.submit(2, 1)
	for _, m := range h.msgs {
		if m.Sizing != nil || bytes.Contains(m.Encode(), []byte("sizing")) {
			t.Errorf("message %s", m.Encode())
		}
	}
	h.deliverAllAtOnce(1)
	h.checkFinished(r, 2, 0, batch.Completed)
	want, err := imagework.Compress(newHarnessPhoto(t), 50, imagework.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	objects.Range(func(k, v any) bool {
		n++
		if !bytes.Equal(v.([]byte), want.JPEG) {
			t.Errorf("%s: %d bytes differ from Compress's %d", k, len(v.([]byte)), len(want.JPEG))
		}
		return true
	})
	if n != 2 {
		t.Errorf("%d objects for 2 images", n)
	}
	v, err := h.svc.Status(context.Background(), r.ID, "owner", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if v.Sizing != nil || len(v.Products[0].Outputs) != 0 {
		t.Errorf("status of an unsized request: sizing %+v, outputs %+v", v.Sizing, v.Products[0].Outputs)
	}
	var report bytes.Buffer
	if err := h.svc.Report(context.Background(), r.ID, "owner", &report); err != nil {
		t.Fatal(err)
	}
	if header, _, _ := strings.Cut(report.String(), "\n"); header != "Serial Number,Product Name,Input Image URLs,Output Image URLs" {
		t.Errorf("report header %q", header)
	}
}

// A lost message of a sized request is republished by the sweep with the
// request's sizing, so the image still gets every size.
func TestSweepKeepsSizing(t *testing.T) {
	h, clk, delivered := lossyHarness(t, func(m queue.ImageMessage) bool { return m.Republished == 0 && m.Image.Product == 1 })
	objects := keepObjects(h)
	ctx := context.Background()
	sizing := batch.Sizing{MaxWidth: 300, Sizes: []batch.Size{{Name: "thumb", Width: 100}}}
	r, err := h.svc.Submit(ctx, h.svc.NewUpload(ctx), batch.Submission{Products: products(2, 1), Quality: 50, Sizing: sizing}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	drain(t, h, delivered)
	clk.Advance(20 * time.Minute)
	if rep, err := h.svc.Sweep(ctx, clk.Now()); err != nil || rep.Republished != 1 {
		t.Fatalf("sweep: %+v, %v", rep, err)
	}
	for _, m := range *delivered {
		if m.Sizing == nil || len(m.Sizing.Sizes) != 1 {
			t.Errorf("republished message without the sizing: %s", m.Encode())
		}
	}
	drain(t, h, delivered)
	h.checkFinished(r, 2, 0, batch.Completed)
	res, _ := h.st.result(r.ID, batch.ImageRef{Product: 1})
	if res.Width != 300 || len(res.Sizes) != 1 {
		t.Errorf("republished image's result %+v", res)
	}
	if _, ok := objects.Load(batch.SizeObjectName(r.ID, batch.ImageRef{Product: 1}, "thumb")); !ok {
		t.Error("no thumb object for the republished image")
	}
}

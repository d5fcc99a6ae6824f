package pipeline_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// Compressing an image stores its thumbnail, a JPEG of at most 160 px a
// side, in the thumbnail store (never the output bucket), before the main
// output; the result names it, and the page shows it for the image and
// for the copies that share its output.
func TestCompressionStoresThumbnail(t *testing.T) {
	h := newHarness(t)
	var outOfOrder, inOutputBucket atomic.Int32
	h.svc.Bucket = &bucket{PutFn: func(_ context.Context, name string, data []byte) error {
		if strings.HasPrefix(name, "thumbs/") {
			inOutputBucket.Add(1)
		}
		// requests/{id}/{image}.jpg: the main output comes after its thumbnail.
		parts := strings.Split(name, "/")
		if ref, err := batch.ParseImageID(strings.TrimSuffix(parts[2], ".jpg")); err == nil {
			if _, ok := h.thumbs.get(batch.ThumbObjectName(parts[1], ref)); !ok {
				outOfOrder.Add(1)
			}
		}
		h.objects.Store(name, len(data))
		return nil
	}}
	ps := products(2, 2)
	ps[1].InputURLs[1] = ps[0].InputURLs[0] // a copy of image 0-0
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, h.svc.NewUpload(ctx), batch.Submission{Products: ps, Quality: 50}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	h.deliverAllAtOnce(1)
	h.checkFinished(r, 4, 0, batch.Completed)
	if n := outOfOrder.Load(); n > 0 {
		t.Errorf("%d main outputs stored before their thumbnails", n)
	}
	if n := inOutputBucket.Load(); n > 0 {
		t.Errorf("%d thumbnails stored in the output bucket", n)
	}
	for _, ref := range []batch.ImageRef{{Product: 0, URL: 0}, {Product: 0, URL: 1}, {Product: 1, URL: 0}} {
		name := batch.ThumbObjectName(r.ID, ref)
		b, ok := h.thumbs.get(name)
		if !ok {
			t.Errorf("no thumbnail %s", name)
			continue
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s is no JPEG: %v", name, err)
			continue
		}
		if cfg.Width > pipeline.ThumbSide || cfg.Height > pipeline.ThumbSide || max(cfg.Width, cfg.Height) != pipeline.ThumbSide {
			t.Errorf("%s is %d×%d, want its long side %d px", name, cfg.Width, cfg.Height, pipeline.ThumbSide)
		}
		if res, _ := h.st.result(r.ID, ref); res.Thumb != name {
			t.Errorf("result of %s names thumbnail %q, want %q", ref.ID(), res.Thumb, name)
		}
	}
	if _, ok := h.thumbs.get(batch.ThumbObjectName(r.ID, batch.ImageRef{Product: 1, URL: 1})); ok {
		t.Error("a thumbnail stored for a copy: copies share the first image's")
	}
	page, err := h.svc.PageProducts(ctx, r, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"0-0": "0-0", "0-1": "0-1", "1-0": "1-0", "1-1": "0-0"}
	for _, p := range page {
		for _, im := range p.Images {
			if im.ThumbImage != want[im.Ref.ID()] {
				t.Errorf("image %s shows the thumbnail of %q, want %q", im.Ref.ID(), im.ThumbImage, want[im.Ref.ID()])
			}
		}
	}
}

// The thumbnail is not the product: when it cannot be stored the image is
// stored and counted all the same, and its page shows no thumbnail; a
// short outage is ridden out.
func TestThumbnailStoreFailureKeepsImage(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	h.thumbs.Fail = func(name string) error {
		calls.Add(1)
		if strings.HasSuffix(name, "/0-0.jpg") {
			return fault.New(fault.Permanent, "", "refused")
		}
		if calls.Load() <= 2 {
			return fault.New(fault.Transient, batch.ReasonStorageUnavailable, "storage unavailable")
		}
		return nil
	}
	r := h.submit(2, 1)
	for _, m := range h.msgs { // one at a time: the outage hits 1-0's first tries
		if err := h.deliver(m, 1); err != nil {
			t.Fatalf("%s: %v", m.Image.ID(), err)
		}
	}
	h.checkFinished(r, 2, 0, batch.Completed)
	ctx := context.Background()
	page, err := h.svc.PageProducts(ctx, r, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range page {
		im := p.Images[0]
		res, _ := h.st.result(r.ID, im.Ref)
		if _, stored := h.objects.Load(res.Object); !stored || res.State != batch.ImageDone {
			t.Errorf("image %s: %+v, output stored %v", im.Ref.ID(), res, stored)
		}
		want := im.Ref.ID()
		if im.Ref.Product == 0 {
			want = ""
		}
		if im.ThumbImage != want || (res.Thumb != "") != (want != "") {
			t.Errorf("image %s shows thumbnail %q (result's %q), want %q", im.Ref.ID(), im.ThumbImage, res.Thumb, want)
		}
	}
}

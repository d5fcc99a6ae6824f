package imagework

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/disintegration/imaging"

	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/imagequality"
)

func TestBoxFit(t *testing.T) {
	for _, c := range []struct {
		b         Box
		w, h      int
		wantW, wH int
	}{
		{Box{1600, 0}, 6000, 4000, 1600, 1067},
		{Box{0, 200}, 6000, 4000, 300, 200},
		{Box{800, 800}, 4000, 6000, 533, 800},
		{Box{800, 800}, 640, 480, 640, 480}, // never upscaled
		{Box{0, 0}, 640, 480, 640, 480},
		{Box{1, 1}, 5000, 10, 1, 1}, // at least a pixel
	} {
		if w, h := c.b.Fit(c.w, c.h); w != c.wantW || h != c.wH {
			t.Errorf("%+v.Fit(%d, %d) = %d×%d, want %d×%d", c.b, c.w, c.h, w, h, c.wantW, c.wH)
		}
	}
}

// Every output decodes, at its box's size: upright (EXIF applied), the
// aspect ratio within a pixel, never upscaled; JPEG, PNG and a rotated JPEG.
func TestResize(t *testing.T) {
	boxes := []Box{{Width: 200}, {Width: 1600}, {Width: 64, Height: 64}, {Height: 100}}
	for _, name := range []string{"coffee.jpg", "coffee-exif-rotated.jpg", "rocket-progressive.jpg", "chelsea.png"} {
		in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		full, err := imaging.Decode(bytes.NewReader(in), imaging.AutoOrientation(true))
		if err != nil {
			t.Fatal(err)
		}
		w, h := full.Bounds().Dx(), full.Bounds().Dy()
		res, err := Resize(in, 50, DefaultLimits, boxes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, r := range res {
			got, err := jpeg.Decode(bytes.NewReader(r.JPEG))
			if err != nil {
				t.Fatalf("%s box %+v: %v", name, boxes[i], err)
			}
			gw, gh := got.Bounds().Dx(), got.Bounds().Dy()
			if ww, wh := boxes[i].Fit(w, h); gw != ww || gh != wh || r.Width != gw || r.Height != gh {
				t.Errorf("%s box %+v: %d×%d (result says %d×%d), want %d×%d", name, boxes[i], gw, gh, r.Width, r.Height, ww, wh)
			}
			if gw > w || gh > h {
				t.Errorf("%s box %+v: upscaled to %d×%d from %d×%d", name, boxes[i], gw, gh, w, h)
			}
			if d := float64(gw)*float64(h)/float64(w) - float64(gh); d > 1 || d < -1 {
				t.Errorf("%s box %+v: %d×%d is off the aspect ratio of %d×%d by %.2f px", name, boxes[i], gw, gh, w, h, d)
			}
			// The picture itself: upright and the same as a full decode
			// resized (a rotated or mirrored one scores far lower).
			ref := imaging.Resize(full, gw, gh, imaging.Lanczos)
			if s := imagequality.SSIM(ref, got); s < 0.8 {
				t.Errorf("%s box %+v: luma SSIM %.3f to the full decode resized", name, boxes[i], s)
			}
		}
	}
}

// Sized without boxes is Compress, byte for byte; a main output that keeps
// the image's size is Compress's, and an extra that would keep it too
// shares those bytes; a shrinking main output comes with its extras from
// one Resize, each at its box's size.
func TestSized(t *testing.T) {
	for _, name := range []string{"coffee.jpg", "coffee-exif-rotated.jpg", "chelsea.png"} {
		in := fixture(t, name)
		plain, err := Compress(in, 50, DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		w, h := plain.Width, plain.Height
		main, extra, err := Sized(in, 50, DefaultLimits, Box{}, nil)
		if err != nil || !bytes.Equal(main.JPEG, plain.JPEG) || extra != nil {
			t.Fatalf("%s without boxes: %d bytes, %d extras, %v; Compress gives %d bytes", name, len(main.JPEG), len(extra), err, len(plain.JPEG))
		}
		// The main output fits already: Compress's bytes, and so are those
		// of the extra box it fits in.
		boxes := []Box{{Width: 100}, {Width: 4000, Height: 4000}, {Height: 50}}
		main, extra, err = Sized(in, 50, DefaultLimits, Box{Width: w, Height: h}, boxes)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(main.JPEG, plain.JPEG) || main.Path != plain.Path || !bytes.Equal(extra[1].JPEG, plain.JPEG) {
			t.Errorf("%s: an output at the image's size is not Compress's (main path %s)", name, main.Path)
		}
		checkSizes(t, name, w, h, boxes, extra)
		// The main output shrinks.
		mainBox := Box{Width: w / 2}
		main, extra, err = Sized(in, 50, DefaultLimits, mainBox, boxes)
		if err != nil {
			t.Fatal(err)
		}
		if main.Path != "resize" {
			t.Errorf("%s: shrunk main output by path %q", name, main.Path)
		}
		checkSizes(t, name, w, h, append([]Box{mainBox}, boxes...), append([]Result{main}, extra...))
	}
}

// checkSizes checks that each result decodes at its box's fit of w×h.
func checkSizes(t *testing.T, name string, w, h int, boxes []Box, res []Result) {
	t.Helper()
	if len(res) != len(boxes) {
		t.Fatalf("%s: %d results for %d boxes", name, len(res), len(boxes))
	}
	for i, r := range res {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(r.JPEG))
		if err != nil {
			t.Fatalf("%s box %+v: %v", name, boxes[i], err)
		}
		if ww, wh := boxes[i].Fit(w, h); cfg.Width != ww || cfg.Height != wh || r.Width != ww || r.Height != wh {
			t.Errorf("%s box %+v: %d×%d (result says %d×%d), want %d×%d", name, boxes[i], cfg.Width, cfg.Height, r.Width, r.Height, ww, wh)
		}
	}
}

// BenchmarkCorpusSized fits every JPEG of $IMGPIPE_BENCH_CORPUS (make
// bench fetches one into .bench/corpus) in 1600×1600, and in 200×200, per
// iteration; for profiling.
func BenchmarkCorpusSized(b *testing.B) {
	ins := benchCorpus(b, "*.jpg")
	for _, side := range []int{1600, 200} {
		b.Run(fmt.Sprint(side), func(b *testing.B) {
			for b.Loop() {
				for _, in := range ins {
					if _, _, err := Sized(in, 50, DefaultLimits, Box{Width: side, Height: side}, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// FuzzSized: whatever the bytes, sizing ends within 5 s with a permanent
// error or with outputs that decode at the sizes the results give, never
// larger than the input (the main output shrunk, or kept at its size).
func FuzzSized(f *testing.F) {
	for _, name := range []string{"coffee.jpg", "rocket-progressive.jpg", "coffee-exif-rotated.jpg", "chelsea.png", "chelsea-animated.gif"} {
		f.Add(fixture(f, name))
	}
	lim := Limits{MaxPixels: 4_000_000, MaxDimension: 4000}
	f.Fuzz(func(t *testing.T, b []byte) {
		type out struct {
			main  Result
			extra []Result
			err   error
		}
		done := make(chan out, 1)
		go func() {
			// Half the inputs keep the main output at its size: the DCT
			// path's decode then serves the extra sizes too.
			main := Box{Width: 100}
			if len(b)%2 == 0 {
				main = Box{}
			}
			m, e, err := Sized(b, 50, lim, main, []Box{{Width: 37, Height: 23}, {Height: 8}})
			done <- out{m, e, err}
		}()
		var o out
		select {
		case o = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Sized took more than 5 s on %d bytes", len(b))
		}
		if o.err != nil {
			if k := fault.KindOf(o.err); k != fault.Permanent {
				t.Fatalf("error of kind %s: %v", k, o.err)
			}
			return
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("sized an input whose header does not read: %v", err)
		}
		side := max(cfg.Width, cfg.Height)
		for _, r := range append([]Result{o.main}, o.extra...) {
			got, err := jpeg.DecodeConfig(bytes.NewReader(r.JPEG))
			if err != nil {
				t.Fatalf("output does not decode: %v", err)
			}
			if got.Width != r.Width || got.Height != r.Height || max(got.Width, got.Height) > side {
				t.Fatalf("output %d×%d, result says %d×%d, input %d×%d", got.Width, got.Height, r.Width, r.Height, cfg.Width, cfg.Height)
			}
		}
	})
}

// Boxes whose outputs could pass the pixel cap are refused before the
// input is read: bytes that are no image give too_many_pixels, not a
// decoding error.
func TestSizedRefusesPastThePixelCap(t *testing.T) {
	_, _, err := Sized([]byte("not an image"), 50, DefaultLimits, Box{}, []Box{{Width: 10000}, {Height: 10000}})
	if fault.KindOf(err) != fault.Permanent || fault.ReasonOf(err) != ReasonTooManyPixels || !strings.Contains(err.Error(), "more than the cap") {
		t.Fatalf("%v, want a permanent too_many_pixels refusal naming the cap", err)
	}
	_, _, err = Sized([]byte("not an image"), 50, DefaultLimits, Box{}, []Box{{Width: 10000}})
	if fault.ReasonOf(err) == ReasonTooManyPixels {
		t.Fatalf("%v: boxes at the cap refused", err)
	}
	// The status page's thumbnail is not the user's output: boxes at the
	// cap still pass with it, and boxes past it are still refused.
	_, _, _, err = SizedWithThumbnail([]byte("not an image"), 50, DefaultLimits, Box{}, []Box{{Width: 10000}}, 160)
	if fault.ReasonOf(err) == ReasonTooManyPixels {
		t.Fatalf("%v: boxes at the cap refused with a thumbnail", err)
	}
	_, _, _, err = SizedWithThumbnail([]byte("not an image"), 50, DefaultLimits, Box{}, []Box{{Width: 10000}, {Height: 10000}}, 160)
	if fault.ReasonOf(err) != ReasonTooManyPixels {
		t.Fatalf("%v: boxes past the cap with a thumbnail, want too_many_pixels", err)
	}
}

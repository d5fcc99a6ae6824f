package imagework

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/disintegration/imaging"

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

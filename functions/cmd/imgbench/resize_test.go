package main

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/disintegration/imaging"
)

// The float Lanczos3 reference agrees with imaging's Lanczos, the same
// kernel computed another way: imaging rounds and clips to 8 bits between
// its passes (overshoot near edges clipped: a few levels at worst) and
// drops the taps past the image's border where the reference repeats the
// border pixel (which counts at a 7×5 output, where every pixel is near a
// border).
func TestLanczos3MatchesImaging(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "images", "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := referenceDecode(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range [][2]int{{600, 400}, {300, 200}, {200, 133}, {61, 41}, {7, 5}} {
		got := lanczos3(src, size[0], size[1])
		want := imaging.Resize(src, size[0], size[1], imaging.Lanczos)
		var sum, worst float64
		for i := range got.Pix {
			d := float64(got.Pix[i]) - float64(want.Pix[i])
			if d < 0 {
				d = -d
			}
			sum += d
			worst = max(worst, d)
		}
		mean := sum / float64(len(got.Pix))
		wantMean := 0.25
		if size[0] < 20 {
			wantMean = 1
		}
		if got.Rect != image.Rect(0, 0, size[0], size[1]) || mean > wantMean || worst > 8 {
			t.Errorf("%v: %v, mean |difference| %.3f, worst %.0f against imaging's Lanczos", size, got.Rect, mean, worst)
		}
		t.Logf("%v: mean |difference| %.3f, worst %.0f", size, mean, worst)
	}
}

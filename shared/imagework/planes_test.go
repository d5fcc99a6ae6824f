package imagework

import (
	"image"
	"image/color"
	"testing"

	"github.com/disintegration/imaging"
)

// testGray is a w×h plane with detail in both directions.
func testGray(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			g.SetGray(x, y, color.Gray{uint8((x*37 + y*11 + x*y) % 256)})
		}
	}
	return g
}

// orientImage turns a plane as upright (imaging's flips and rotations) does,
// for every EXIF orientation, at odd sizes.
func TestOrientImageMatchesImaging(t *testing.T) {
	src := testGray(7, 4)
	for o := 1; o <= 8; o++ {
		got := orientImage(src, o).(*image.Gray)
		want := upright(src, o)
		if got.Rect != want.Bounds() {
			t.Fatalf("orientation %d: %v, want %v", o, got.Rect, want.Bounds())
		}
		for y := 0; y < got.Rect.Dy(); y++ {
			for x := 0; x < got.Rect.Dx(); x++ {
				r, _, _, _ := want.At(x, y).RGBA()
				if got.GrayAt(x, y).Y != uint8(r>>8) {
					t.Fatalf("orientation %d: (%d, %d) is %d, want %d", o, x, y, got.GrayAt(x, y).Y, r>>8)
				}
			}
		}
	}
}

// resamplePlane is imaging's Lanczos resize, in fixed point: within a
// level or two of imaging.Resize (which keeps float weights), shrinking
// by little and by much, and stretching.
func TestResamplePlaneMatchesImaging(t *testing.T) {
	src := testGray(203, 157)
	for _, size := range [][2]int{{160, 120}, {101, 78}, {25, 19}, {203, 157}, {250, 170}} {
		out := image.NewGray(image.Rect(0, 0, size[0], size[1]))
		resamplePlane(src.Pix, src.Stride, 203, 157, out.Pix, out.Stride, size[0], size[1], imaging.Lanczos)
		want := imaging.Resize(src, size[0], size[1], imaging.Lanczos)
		sum, worst := 0, 0
		for y := 0; y < size[1]; y++ {
			for x := 0; x < size[0]; x++ {
				d := int(out.Pix[y*out.Stride+x]) - int(want.Pix[y*want.Stride+x*4])
				sum += max(d, -d)
				worst = max(worst, max(d, -d))
			}
		}
		if mean := float64(sum) / float64(size[0]*size[1]); mean > 0.5 || worst > 2 {
			t.Errorf("%v: mean |difference| %.3f, worst %d from imaging.Resize", size, mean, worst)
		}
	}
}

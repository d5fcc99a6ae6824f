package imagework

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
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

// resamplePlane is imaging's resize with the same kernel, in fixed point
// and columns first: on a photograph's luma, within a level or two of
// imaging.Resize (float weights, rows first), shrinking by little and by
// much, and stretching.
func TestResamplePlaneMatchesImaging(t *testing.T) {
	photo, err := jpeg.Decode(bytes.NewReader(fixture(t, "coffee.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	y := photo.(*image.YCbCr)
	src := &image.Gray{Pix: y.Y, Stride: y.YStride, Rect: y.Rect}
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	for _, size := range [][2]int{{480, 320}, {301, 201}, {75, 50}, {sw, sh}, {700, 450}} {
		out := image.NewGray(image.Rect(0, 0, size[0], size[1]))
		resamplePlane(src.Pix, src.Stride, sw, sh, out.Pix, out.Stride, size[0], size[1], imaging.Lanczos)
		want := imaging.Resize(src, size[0], size[1], imaging.Lanczos)
		sum, far := 0, 0
		for y := 0; y < size[1]; y++ {
			for x := 0; x < size[0]; x++ {
				d := int(out.Pix[y*out.Stride+x]) - int(want.Pix[y*want.Stride+x*4])
				sum += max(d, -d)
				if d > 2 || d < -2 {
					far++
				}
			}
		}
		// Where the kernel overshoots past black or white at a hard edge,
		// the pass that clips first differs: a few samples, far off.
		n := size[0] * size[1]
		if mean := float64(sum) / float64(n); mean > 0.3 || far > n/500 {
			t.Errorf("%v: mean |difference| %.3f, %d of %d samples more than 2 levels from imaging.Resize", size, mean, far, n)
		}
	}
}

// A PNG is resized on white: transparent pixels come out white, half
// transparent ones half way, in NRGBA and premultiplied RGBA alike.
func TestResizePutsTransparencyOnWhite(t *testing.T) {
	for _, alpha := range []uint8{0, 128, 255} {
		n := image.NewNRGBA(image.Rect(0, 0, 64, 48))
		for i := 0; i < len(n.Pix); i += 4 {
			n.Pix[i], n.Pix[i+1], n.Pix[i+2], n.Pix[i+3] = 0, 0, 200, alpha // blue
		}
		var b bytes.Buffer
		if err := png.Encode(&b, n); err != nil {
			t.Fatal(err)
		}
		res, err := Resize(b.Bytes(), 90, DefaultLimits, []Box{{Width: 32}})
		if err != nil {
			t.Fatal(err)
		}
		out, err := jpeg.Decode(bytes.NewReader(res[0].JPEG))
		if err != nil || out.Bounds().Dx() != 32 || out.Bounds().Dy() != 24 || res[0].Format != "png" {
			t.Fatalf("alpha %d: %v, %v, format %s", alpha, out.Bounds(), err, res[0].Format)
		}
		r, g, bl, _ := out.At(16, 12).RGBA()
		a := float64(alpha) / 255
		want := [3]float64{255 * (1 - a), 255 * (1 - a), 200*a + 255*(1-a)}
		for i, got := range []uint32{r >> 8, g >> 8, bl >> 8} {
			if d := float64(got) - want[i]; d > 6 || d < -6 {
				t.Errorf("alpha %d: channel %d is %d, want %.0f", alpha, i, got, want[i])
			}
		}
	}
}

// upright turns img by EXIF orientation o (1–8; others leave it) with
// imaging's flips and rotations: the oracle orientImage is checked against.
func upright(img image.Image, o int) image.Image {
	switch o {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img)
	case 7:
		return imaging.Transverse(img)
	case 8:
		return imaging.Rotate90(img)
	}
	return img
}

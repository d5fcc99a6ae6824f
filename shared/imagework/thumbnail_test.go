package imagework

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// SizedWithThumbnail gives Sized's outputs byte for byte, and a thumbnail
// of every test image, sized or not, that fits 160 px (its long side 160,
// or the largest output's that fits 160 px: that output is the thumbnail),
// keeps the aspect ratio within a pixel, is upright, and decodes as JPEG.
func TestSizedWithThumbnail(t *testing.T) {
	for _, name := range []string{"coffee.jpg", "rocket-progressive.jpg", "chelsea.png", "astronaut.webp", "chelsea-animated.gif", "coffee-exif-rotated.jpg"} {
		in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := CheckHeader(in, DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		w, h := cfg.Width, cfg.Height
		if name == "coffee-exif-rotated.jpg" {
			w, h = h, w // stored sideways, shown upright
		}
		for _, main := range []Box{{}, {Width: 300}, {Width: 100}} {
			for _, extra := range [][]Box{nil, {{Width: 120}, {Height: 500}}, {{Width: 200}}} {
				what := fmt.Sprintf("%s main %+v extra %+v", name, main, extra)
				wantRes, wantOut, err := Sized(in, 50, DefaultLimits, main, extra)
				if err != nil {
					t.Fatalf("%s: Sized: %v", what, err)
				}
				res, out, th, err := SizedWithThumbnail(in, 50, DefaultLimits, main, extra, 160)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if !bytes.Equal(res.JPEG, wantRes.JPEG) || len(out) != len(wantOut) {
					t.Fatalf("%s: main output %d bytes, %d extra; Sized's %d bytes, %d extra", what, len(res.JPEG), len(out), len(wantRes.JPEG), len(wantOut))
				}
				for i := range out {
					if !bytes.Equal(out[i].JPEG, wantOut[i].JPEG) {
						t.Errorf("%s: extra output %d differs from Sized's", what, i)
					}
				}
				got, err := jpeg.DecodeConfig(bytes.NewReader(th))
				if err != nil {
					t.Fatalf("%s: thumbnail is no JPEG: %v", what, err)
				}
				want, area := 160, 0
				for _, b := range append([]Box{main}, extra...) {
					if ow, oh := b.Fit(w, h); ow <= 160 && oh <= 160 && ow*oh > area {
						want, area = max(ow, oh), ow*oh
					}
				}
				if max(got.Width, got.Height) != want {
					t.Errorf("%s: thumbnail %d×%d, want its long side %d", what, got.Width, got.Height, want)
				}
				if r, want := float64(got.Width)/float64(got.Height), float64(w)/float64(h); r/want > 1.02 || want/r > 1.02 {
					t.Errorf("%s: aspect %.3f, the image's %.3f", what, r, want)
				}
			}
		}
	}
	if _, _, _, err := SizedWithThumbnail([]byte("<html>"), 50, DefaultLimits, Box{}, nil, 160); err == nil {
		t.Error("a thumbnail of HTML")
	}
}

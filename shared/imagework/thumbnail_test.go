package imagework

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// Thumbnails of every test image fit 160 px, keep the aspect ratio within
// a pixel, are upright, and decode as JPEG.
func TestThumbnail(t *testing.T) {
	for _, name := range []string{"coffee.jpg", "chelsea.png", "astronaut.webp", "chelsea-animated.gif", "coffee-exif-rotated.jpg"} {
		in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := CheckHeader(in, DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		th, err := Thumbnail(in, 160, DefaultLimits)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := jpeg.DecodeConfig(bytes.NewReader(th))
		if err != nil {
			t.Fatalf("%s: thumbnail is no JPEG: %v", name, err)
		}
		if max(out.Width, out.Height) != 160 {
			t.Errorf("%s: thumbnail %d×%d, want its long side 160", name, out.Width, out.Height)
		}
		w, h := cfg.Width, cfg.Height
		if name == "coffee-exif-rotated.jpg" {
			w, h = h, w // stored sideways, shown upright
		}
		if got, want := float64(out.Width)/float64(out.Height), float64(w)/float64(h); got/want > 1.02 || want/got > 1.02 {
			t.Errorf("%s: aspect %.3f, the image's %.3f", name, got, want)
		}
	}
	if _, err := Thumbnail([]byte("<html>"), 160, DefaultLimits); err == nil {
		t.Error("a thumbnail of HTML")
	}
}

package imagework

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/imagequality"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCompressFixtures(t *testing.T) {
	tests := []struct {
		file   string
		format string
		w, h   int
	}{
		{"coffee.jpg", "jpeg", 600, 400},
		{"rocket-progressive.jpg", "jpeg", 640, 427},
		{"coffee-exif-rotated.jpg", "jpeg", 320, 213}, // stored 213×320, Orientation 6
		{"chelsea.png", "png", 320, 213},
		{"chelsea-animated.gif", "gif", 160, 106},
		{"astronaut.webp", "webp", 384, 384},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in := fixture(t, tt.file)
			res, err := Compress(in, 50, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			out, err := jpeg.Decode(bytes.NewReader(res.JPEG))
			if err != nil {
				t.Fatalf("output is not a JPEG: %v", err)
			}
			if b := out.Bounds(); b.Dx() != tt.w || b.Dy() != tt.h || res.Width != tt.w || res.Height != tt.h {
				t.Errorf("output %v (result says %d×%d), want %d×%d", b, res.Width, res.Height, tt.w, tt.h)
			}
			if res.Format != tt.format {
				t.Errorf("format %q, want %q", res.Format, tt.format)
			}
			if len(res.JPEG) > len(in) {
				t.Errorf("output %d bytes > input %d bytes", len(res.JPEG), len(in))
			}
			if o := exifOrientation(res.JPEG); o != 0 {
				t.Errorf("output keeps EXIF orientation %d", o)
			}
			t.Logf("%s: %d → %d bytes (%.0f%%), kept input %v", tt.file, len(in), len(res.JPEG), 100*float64(len(res.JPEG))/float64(len(in)), res.KeptInput)
		})
	}
}

// The rotated fixture's top-left, once upright, is the original's top-left:
// compare against the unrotated coffee photo, downscaled the same way.
func TestOrientationIsApplied(t *testing.T) {
	if o := exifOrientation(fixture(t, "coffee-exif-rotated.jpg")); o != 6 {
		t.Fatalf("fixture orientation %d, want 6", o)
	}
	res, err := Compress(fixture(t, "coffee-exif-rotated.jpg"), 90, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	up, _ := jpeg.Decode(bytes.NewReader(res.JPEG))
	ref, _ := jpeg.Decode(bytes.NewReader(fixture(t, "coffee.jpg")))
	// Mean luma of the left and right thirds must match the reference's sides.
	side := func(img image.Image, left bool) float64 {
		b := img.Bounds()
		x0, x1 := b.Min.X, b.Min.X+b.Dx()/3
		if !left {
			x0, x1 = b.Max.X-b.Dx()/3, b.Max.X
		}
		var sum float64
		var n int
		for y := b.Min.Y; y < b.Max.Y; y += 2 {
			for x := x0; x < x1; x += 2 {
				r, g, bl, _ := img.At(x, y).RGBA()
				sum += 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)
				n++
			}
		}
		return sum / float64(n) / 257
	}
	refDiff := side(ref, true) - side(ref, false)
	gotDiff := side(up, true) - side(up, false)
	if (refDiff > 0) != (gotDiff > 0) || gotDiff*refDiff < 0 {
		t.Errorf("left−right luma: upright output %.1f, reference %.1f: not the same way up", gotDiff, refDiff)
	}
}

func TestTransparencyBecomesWhite(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 32; x++ {
			img.Set(x, y, color.NRGBA{R: 200, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	res, err := Compress(buf.Bytes(), 90, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jpeg.Decode(bytes.NewReader(res.JPEG))
	r, g, b, _ := out.At(48, 32).RGBA()
	if r>>8 < 245 || g>>8 < 245 || b>>8 < 245 {
		t.Errorf("transparent pixel became %d,%d,%d, want white", r>>8, g>>8, b>>8)
	}
	r, g, b, _ = out.At(16, 32).RGBA()
	if r>>8 < 180 || g>>8 > 40 || b>>8 > 40 {
		t.Errorf("opaque red pixel became %d,%d,%d", r>>8, g>>8, b>>8)
	}
}

// pngHeader is a PNG signature and IHDR claiming w×h: no pixel data at all.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.Write([]byte("\x89PNG\r\n\x1a\n"))
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	_ = binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestRefusals(t *testing.T) {
	coffee := fixture(t, "coffee.jpg")
	tests := []struct {
		name   string
		in     []byte
		reason string
	}{
		{"100000×100000 PNG header", pngHeader(100000, 100000), ReasonTooLarge},
		{"10000×10000 PNG header", pngHeader(10000, 10000), ReasonTooManyPixels},
		{"truncated JPEG", coffee[:len(coffee)/2], ReasonCorrupt},
		{"HTML", []byte("<!doctype html><html><body>404</body></html>"), ReasonNotAnImage},
		{"empty", nil, ReasonNotAnImage},
		{"BMP", append([]byte("BM"), make([]byte, 64)...), ReasonUnsupported},
		{"JPEG magic then garbage", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{7}, 100)...), ReasonCorrupt},
	}
	for _, tt := range tests {
		_, err := Compress(tt.in, 50, DefaultLimits)
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if fault.ReasonOf(err) != tt.reason || fault.KindOf(err) != fault.Permanent {
			t.Errorf("%s: %v (reason %s, kind %s), want permanent %s", tt.name, err, fault.ReasonOf(err), fault.KindOf(err), tt.reason)
		}
	}
}

// An input coarser than the target is not requantised to finer steps: its
// coefficients are kept, so the output decodes to its very pixels, and the
// tables built for the image make it smaller.
func TestCoarseJPEGKeepsItsCoefficients(t *testing.T) {
	src, _ := jpeg.Decode(bytes.NewReader(fixture(t, "coffee.jpg")))
	var low bytes.Buffer
	_ = jpeg.Encode(&low, src, &jpeg.Options{Quality: 5})
	res, err := Compress(low.Bytes(), 50, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != "dct" || res.KeptInput || len(res.JPEG) >= low.Len() {
		t.Fatalf("q5 input %d bytes: path %s kept %v output %d bytes", low.Len(), res.Path, res.KeptInput, len(res.JPEG))
	}
	a, _ := jpeg.Decode(bytes.NewReader(low.Bytes()))
	b, _ := jpeg.Decode(bytes.NewReader(res.JPEG))
	if !bytes.Equal(a.(*image.YCbCr).Y, b.(*image.YCbCr).Y) || !bytes.Equal(a.(*image.YCbCr).Cb, b.(*image.YCbCr).Cb) {
		t.Errorf("a q5 input was requantised")
	}
}

// When our output is not smaller (here an input that is already our own
// output), the input is kept, minus its metadata.
func TestKeepsSmallerJPEGInputWithoutMetadata(t *testing.T) {
	first, err := Compress(fixture(t, "coffee.jpg"), 50, DefaultLimits)
	if err != nil || first.Path != "dct" {
		t.Fatalf("coffee.jpg: %v path %q", err, first.Path)
	}
	prog := first.JPEG
	// Add an EXIF segment with Orientation 1 and a comment: both must go.
	exif := []byte("Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00")
	in := append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0, byte(len(exif) + 2)}, exif...)
	in = append(in, 0xFF, 0xFE, 0, 7, 'h', 'e', 'l', 'l', 'o')
	in = append(in, prog[2:]...)
	if o := exifOrientation(in); o != 1 {
		t.Fatalf("crafted orientation %d", o)
	}
	res, err := Compress(in, 50, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !res.KeptInput {
		t.Fatalf("input (%d bytes) not kept; output %d bytes", len(in), len(res.JPEG))
	}
	want, _ := StripJPEGMetadata(prog)
	if !bytes.Equal(res.JPEG, want) || bytes.Contains(res.JPEG, []byte("Exif")) || bytes.Contains(res.JPEG, []byte("hello")) {
		t.Errorf("kept input is not the input minus its metadata (%d vs %d bytes)", len(res.JPEG), len(want))
	}
}

func TestStripJPEGMetadataKeepsPixels(t *testing.T) {
	in := fixture(t, "coffee-exif-rotated.jpg")
	out, err := StripJPEGMetadata(in)
	if err != nil {
		t.Fatal(err)
	}
	if exifOrientation(out) != 0 || len(out) >= len(in) {
		t.Errorf("EXIF left in place: orientation %d, %d → %d bytes", exifOrientation(out), len(in), len(out))
	}
	a, _ := jpeg.Decode(bytes.NewReader(in))
	b, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.(*image.YCbCr).Y, b.(*image.YCbCr).Y) {
		t.Error("pixels changed")
	}
	if _, err := StripJPEGMetadata([]byte("not a jpeg")); err == nil {
		t.Error("accepted a non-JPEG")
	}
}

func FuzzCompress(f *testing.F) {
	for _, name := range []string{"coffee-exif-rotated.jpg", "chelsea-animated.gif"} {
		f.Add(fixture(f, name))
	}
	f.Add(pngHeader(1, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		type out struct {
			res Result
			err error
		}
		done := make(chan out, 1)
		go func() {
			r, e := Compress(b, 50, Limits{MaxPixels: 4_000_000, MaxDimension: 4000})
			done <- out{r, e}
		}()
		var o out
		select {
		case o = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Compress took more than 5 s on %d bytes", len(b))
		}
		res, err := o.res, o.err
		if err != nil {
			if k := fault.KindOf(err); k != fault.Permanent {
				t.Fatalf("error of kind %s: %v", k, err)
			}
			return
		}
		if _, err := jpeg.Decode(bytes.NewReader(res.JPEG)); err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
	})
}

// The DCT path against the pixel path on every test JPEG: the same luma
// SSIM to the source (within 0.003) in fewer bytes; the JPEGs it refuses go
// through the pixel path without error.
func TestDCTPathMatchesPixelPath(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "images", "*.jpg"))
	gos, _ := filepath.Glob(filepath.Join(goroot(t), "src", "image", "testdata", "*.jpeg"))
	files = append(files, gos...)
	dct := 0
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		res, err := Compress(in, 50, DefaultLimits)
		if err != nil {
			if _, stdErr := jpeg.Decode(bytes.NewReader(in)); stdErr == nil {
				t.Errorf("%s: %v, but image/jpeg reads it", name, err)
			}
			continue
		}
		if res.Path != "dct" {
			t.Logf("%s: pixel path (%s)", name, res.Fallback)
			continue
		}
		dct++
		pix, err := pixelPath(in, "jpeg", 50)
		if err != nil {
			t.Fatal(err)
		}
		src := decodeJPEG(t, in)
		ours, theirs := imagequality.SSIM(src, decodeJPEG(t, res.JPEG)), imagequality.SSIM(src, decodeJPEG(t, pix.JPEG))
		if ours < theirs-0.003 {
			t.Errorf("%s: SSIM %.4f, pixel path %.4f", name, ours, theirs)
		}
		if len(res.JPEG) > len(pix.JPEG) {
			t.Errorf("%s: %d bytes, pixel path %d", name, len(res.JPEG), len(pix.JPEG))
		}
	}
	if dct < 20 {
		t.Errorf("only %d files took the DCT path", dct)
	}
}

func decodeJPEG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// BenchmarkCompress: the product path (DCT for JPEGs, pixels otherwise)
// and the pixel path alone, on the test images.
func BenchmarkCompress(b *testing.B) {
	for _, name := range []string{"coffee.jpg", "rocket-progressive.jpg", "chelsea.png"} {
		in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Compress(in, 50, DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/pixel", func(b *testing.B) {
			for b.Loop() {
				if _, err := pixelPath(in, "jpeg", 50); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// goroot is the Go installation the tests run with (its image/testdata
// holds JPEGs of every kind).
func goroot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// BenchmarkCorpusPNG compresses every PNG of $IMGPIPE_BENCH_CORPUS (make
// bench fetches one into .bench/corpus) per iteration; for profiling.
func BenchmarkCorpusPNG(b *testing.B) {
	ins := benchCorpus(b, "*.png")
	for b.Loop() {
		for _, in := range ins {
			if _, err := Compress(in, 50, DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchCorpus reads the files of $IMGPIPE_BENCH_CORPUS (make bench fetches
// one into .bench/corpus) that match pattern; without it, b is skipped.
func benchCorpus(b *testing.B, pattern string) [][]byte {
	dir := os.Getenv("IMGPIPE_BENCH_CORPUS")
	if dir == "" {
		b.Skip("IMGPIPE_BENCH_CORPUS not set")
	}
	files, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(files) == 0 {
		b.Fatalf("no %s in %s", pattern, dir)
	}
	var ins [][]byte
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		ins = append(ins, in)
	}
	return ins
}

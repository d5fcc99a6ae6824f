package jpegdct

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif"
	"image/jpeg"
	_ "image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "golang.org/x/image/webp"

	"github.com/imgpipe/imgpipe/shared/imagequality"
)

// corpus lists the JPEGs the tests run on: ours and Go's own image/testdata.
func corpus(t testing.TB) []string {
	ours, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "images", "*.jpg"))
	gos, _ := filepath.Glob(filepath.Join(goroot(t), "src", "image", "testdata", "*.jpeg"))
	files := append(ours, gos...)
	if dir := os.Getenv("IMGPIPE_BENCH_CORPUS"); dir != "" {
		// make bench's photographs too, when asked: go test with it set
		// checks a decoder change on 74 more JPEGs.
		more, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		files = append(files, more...)
	}
	if len(files) < 20 {
		t.Fatalf("only %d test JPEGs found", len(files))
	}
	return files
}

func decodeStd(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("image/jpeg.Decode: %v", err)
	}
	return img
}

// samePixels compares two decoded images exactly.
func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	switch a := a.(type) {
	case *image.YCbCr:
		b, ok := b.(*image.YCbCr)
		if !ok || a.SubsampleRatio != b.SubsampleRatio {
			return false
		}
		r := a.Bounds()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if a.Y[a.YOffset(x, y)] != b.Y[b.YOffset(x, y)] || a.Cb[a.COffset(x, y)] != b.Cb[b.COffset(x, y)] || a.Cr[a.COffset(x, y)] != b.Cr[b.COffset(x, y)] {
					return false
				}
			}
		}
		return true
	case *image.Gray:
		b, ok := b.(*image.Gray)
		return ok && bytes.Equal(a.Pix, b.Pix)
	}
	return false
}

// The oracle: in lossless mode (input tables and sampling kept) the output
// decodes with image/jpeg to exactly the input's pixels, for every JPEG the
// fast path accepts; the rest are refused with a reason, never garbled.
func TestLosslessIsPixelIdentical(t *testing.T) {
	accepted := 0
	for _, f := range corpus(t) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Recompress(in, Options{Lossless: true})
			if err != nil {
				stdImg, stdErr := jpeg.Decode(bytes.NewReader(in))
				switch {
				case IsUnsupported(err):
					t.Logf("refused: %v", err)
				case stdErr != nil:
					t.Logf("corrupt, as image/jpeg agrees: %v / %v", err, stdErr)
				default:
					t.Errorf("Recompress: %v, but image/jpeg decodes it (%T)", err, stdImg)
				}
				return
			}
			accepted++
			want, got := decodeStd(t, in), decodeStd(t, out)
			if !samePixels(want, got) {
				t.Errorf("lossless output decodes to different pixels")
			}
		})
	}
	if accepted < 20 {
		t.Errorf("fast path accepted %d files, want ≥ 20", accepted)
	}
}

// Every JPEG the DCT path must hand to the pixel path is refused with its
// reason.
func TestRefusals(t *testing.T) {
	dir := filepath.Join(goroot(t), "src", "image", "testdata")
	for name, reason := range map[string]string{
		"video-001.cmyk.jpeg":    "components",
		"video-001.rgb.jpeg":     "rgb",
		"video-001.q50.410.jpeg": "sampling",
		"video-001.q50.411.jpeg": "sampling",
	} {
		in, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Recompress(in, Options{Quality: 50})
		if !IsUnsupported(err) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: %v, want unsupported %s", name, err, reason)
		}
	}
	rot, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "coffee-exif-rotated.jpg"))
	if _, err := Recompress(rot, Options{Quality: 50}); !IsUnsupported(err) || !strings.Contains(err.Error(), "orientation") {
		t.Errorf("EXIF-rotated: %v, want unsupported orientation", err)
	}
}

// FuzzRecompress: no panic on any input; whatever the fast path accepts in
// lossless mode and image/jpeg can read decodes to the same pixels, and its
// quality-50 output decodes at the input's size (each written baseline or
// progressive, whichever came out smaller).
func FuzzRecompress(f *testing.F) {
	for _, name := range corpus(f) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 64<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lim := Options{Lossless: true, Limits: Limits{MaxPixels: 1 << 20}}
		out, err := Recompress(in, lim)
		if err != nil {
			return
		}
		q50, err := Recompress(in, Options{Quality: 50, Limits: lim.Limits})
		if err != nil {
			t.Fatalf("lossless accepted, quality 50 refused: %v", err)
		}
		want, err := jpeg.Decode(bytes.NewReader(in))
		if err != nil {
			return // we are more lenient than image/jpeg here and there
		}
		if small, err := jpeg.Decode(bytes.NewReader(q50)); err != nil || small.Bounds() != want.Bounds() {
			t.Fatalf("the quality 50 output does not decode to the input's size: %v", err)
		}
		got, err := jpeg.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("our output does not decode: %v", err)
		}
		if !samePixels(want, got) {
			t.Fatalf("lossless output differs")
		}
	})
}

// BenchmarkRecompress: the DCT path on the test photographs, quality 50.
func BenchmarkRecompress(b *testing.B) {
	onPhotographs(b, func(in []byte) error {
		_, err := Recompress(in, Options{Quality: 50})
		return err
	})
}

// BenchmarkDecode: entropy decoding alone (the coefficients, no output).
func BenchmarkDecode(b *testing.B) {
	onPhotographs(b, func(in []byte) error {
		_, err := Decode(in, Limits{})
		return err
	})
}

// onPhotographs runs f as a sub-benchmark on each test photograph: an
// interleaved baseline one and a progressive one.
func onPhotographs(b *testing.B, f func(in []byte) error) {
	for _, name := range []string{"coffee.jpg", "rocket-progressive.jpg"} {
		in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if err := f(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCorpus recompresses every JPEG of $IMGPIPE_BENCH_CORPUS (make
// bench fetches one into .bench/corpus) per iteration, or those matching
// $IMGPIPE_BENCH_FILES (a glob, for profiling one class).
func BenchmarkCorpus(b *testing.B) {
	dir := os.Getenv("IMGPIPE_BENCH_CORPUS")
	if dir == "" {
		b.Skip("IMGPIPE_BENCH_CORPUS not set")
	}
	pattern := os.Getenv("IMGPIPE_BENCH_FILES")
	if pattern == "" {
		pattern = "*.jpg"
	}
	files, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(files) == 0 {
		b.Fatalf("no file matches %s in %s", pattern, dir)
	}
	var ins [][]byte
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		ins = append(ins, in)
	}
	for b.Loop() {
		for _, in := range ins {
			if _, err := Recompress(in, Options{Quality: 50}); err != nil && !IsUnsupported(err) {
				b.Fatal(err)
			}
		}
	}
}

// Streaming a baseline image row by row gives the very bytes that decoding
// it whole first gives, lossy and lossless.
func TestStreamingEqualsWhole(t *testing.T) {
	streamed := 0
	for _, f := range corpus(t) {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []Options{{Quality: 50}, {Lossless: true}} {
			d := &decoder{data: in, stream: &streamer{o: o}}
			if d.run() != nil || !d.stream.on {
				continue
			}
			streamed++
			got := d.stream.f.write(nil, d.stream.w)
			m, err := Decode(in, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			fr, err := m.toFrame(o)
			if err != nil {
				t.Fatal(err)
			}
			if want := fr.encode(nil); !bytes.Equal(got, want) {
				t.Errorf("%s %+v: streamed %d bytes, whole %d, not equal", filepath.Base(f), o, len(got), len(want))
			}
		}
	}
	if streamed < 10 {
		t.Errorf("only %d streamed runs", streamed)
	}
}

// The pixel encoder against image/jpeg on the same pixels: same or better
// SSIM (within 0.003) in fewer bytes, and image/jpeg reads the result.
func TestEncodeRGBAMatchesImageJPEG(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "images", "*"))
	n := 0
	for _, f := range files {
		in, _ := os.ReadFile(f)
		src, _, err := image.Decode(bytes.NewReader(in))
		if err != nil {
			continue
		}
		rgba := image.NewRGBA(src.Bounds())
		draw.Draw(rgba, rgba.Rect, src, src.Bounds().Min, draw.Src)
		for i := 3; i < len(rgba.Pix); i += 4 {
			rgba.Pix[i] = 255 // the encoders ignore alpha either way
		}
		ours := EncodeRGBA(rgba, 50)
		var std bytes.Buffer
		if err := jpeg.Encode(&std, rgba, &jpeg.Options{Quality: 50}); err != nil {
			t.Fatal(err)
		}
		a, b := decodeStd(t, ours), decodeStd(t, std.Bytes())
		sa, sb := imagequality.SSIM(rgba, a), imagequality.SSIM(rgba, b)
		if sa < sb-0.003 || len(ours) > std.Len() {
			t.Errorf("%s: ours %d B SSIM %.4f, image/jpeg %d B SSIM %.4f", filepath.Base(f), len(ours), sa, std.Len(), sb)
		}
		t.Logf("%s: ours %d B SSIM %.4f, image/jpeg %d B SSIM %.4f", filepath.Base(f), len(ours), sa, std.Len(), sb)
		n++
	}
	if n < 5 {
		t.Errorf("only %d images", n)
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

// TestQualityEstimate checks the estimate on image/jpeg's own output at
// qualities across the range, and on a table no quality writes exactly.
func TestQualityEstimate(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 16, 16))
	for _, q := range []int{10, 50, 75, 81, 90, 95, 100} {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, src, &jpeg.Options{Quality: q}); err != nil {
			t.Fatal(err)
		}
		m, err := Decode(b.Bytes(), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Quality(); got != q {
			t.Errorf("quality %d estimated as %d", q, got)
		}
		m.qt[m.comps[0].tq][5]++ // one step off: still nearest q
		if got := m.Quality(); got != q {
			t.Errorf("quality %d with one table entry off estimated as %d", q, got)
		}
	}
}

// Progressive output is written when it is smaller than the baseline
// coding of the same coefficients, and then decodes (image/jpeg) to exactly
// the baseline file's pixels; for the smallest images the baseline wins.
func TestProgressiveSmallerSamePixels(t *testing.T) {
	progressive := 0
	for _, f := range corpus(t) {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []Options{{Quality: 50}, {Lossless: true}} {
			baselineOnly = true
			base, err := Recompress(in, o)
			baselineOnly = false
			if err != nil {
				continue
			}
			out, err := Recompress(in, o)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			isProg := bytes.Contains(out, []byte{0xFF, 0xC2, 0})
			switch {
			case isProg && len(out) >= len(base):
				t.Errorf("%s: progressive %d bytes, baseline %d", filepath.Base(f), len(out), len(base))
			case !isProg && !bytes.Equal(out, base):
				t.Errorf("%s: neither progressive nor the baseline file", filepath.Base(f))
			}
			if isProg {
				progressive++
				if !samePixels(decodeStd(t, base), decodeStd(t, out)) {
					t.Errorf("%s: progressive output decodes to other pixels than baseline", filepath.Base(f))
				}
			}
		}
	}
	if progressive < 5 { // the larger photographs, at both settings
		t.Errorf("%d progressive outputs, want ≥ 5", progressive)
	}
	t.Logf("%d progressive outputs", progressive)
}

// The scaled decoder against image/jpeg: each plane of the full-size
// decode, box-averaged denom×denom, against the same plane decoded at
// 1/denom. At 1/1 (the whole inverse DCT) and 1/8 (the DC alone, which is
// exactly the block's mean) only rounding differs: mean |difference| ≤ 0.6
// levels, PSNR ≥ 45 dB per plane. At 1/2 and 1/4 the frequencies from
// 8/denom up are dropped, which a box average keeps in part (aliased):
// mean |difference| ≤ 4 levels, PSNR ≥ 33 dB. The worst measured at each
// scale is logged.
func TestDecodeScaledMatchesBoxDownscale(t *testing.T) {
	checked := 0
	worstMAD, worstPSNR := map[int]float64{}, map[int]float64{}
	for _, f := range corpus(t) {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		full, err := jpeg.Decode(bytes.NewReader(in))
		if err != nil {
			continue
		}
		for _, denom := range []int{1, 2, 4, 8} {
			got, _, err := DecodeAt(in, 8/denom, Limits{})
			if err != nil {
				if IsUnsupported(err) {
					break
				}
				t.Fatalf("%s 1/%d: %v", filepath.Base(f), denom, err)
			}
			b := full.Bounds()
			if w, h := (b.Dx()+denom-1)/denom, (b.Dy()+denom-1)/denom; got.Bounds() != image.Rect(0, 0, w, h) {
				t.Fatalf("%s 1/%d: %v, want %dx%d", filepath.Base(f), denom, got.Bounds(), w, h)
			}
			type plane struct {
				name       string
				a, b       []byte
				as, bs     int
				w, h, step int
			}
			var planes []plane
			switch a := full.(type) {
			case *image.Gray:
				g := got.(*image.Gray)
				planes = []plane{{"Y", a.Pix, g.Pix, a.Stride, g.Stride, g.Rect.Dx(), g.Rect.Dy(), denom}}
			case *image.YCbCr:
				g := got.(*image.YCbCr)
				if g.SubsampleRatio != a.SubsampleRatio {
					t.Fatalf("%s: subsampling %v, want %v", f, g.SubsampleRatio, a.SubsampleRatio)
				}
				cw, ch := g.CStride, len(g.Cb)/g.CStride
				acw, ach := a.CStride, len(a.Cb)/a.CStride
				planes = []plane{{"Y", a.Y, g.Y, a.YStride, g.YStride, g.Rect.Dx(), g.Rect.Dy(), denom},
					{"Cb", a.Cb[:acw*ach], g.Cb, a.CStride, g.CStride, cw, ch, denom},
					{"Cr", a.Cr[:acw*ach], g.Cr, a.CStride, g.CStride, cw, ch, denom}}
			default:
				t.Fatalf("%s: image/jpeg gave %T", f, full)
			}
			for _, p := range planes {
				ah := len(p.a) / p.as
				aw := p.as
				var sumAbs, sumSq float64
				n := 0
				for y := 0; y < p.h; y++ {
					for x := 0; x < p.w; x++ {
						// the full-size samples this one covers, clipped
						s, c := 0, 0
						for yy := y * p.step; yy < min((y+1)*p.step, ah); yy++ {
							for xx := x * p.step; xx < min((x+1)*p.step, aw); xx++ {
								s += int(p.a[yy*p.as+xx])
								c++
							}
						}
						if c == 0 {
							continue
						}
						d := float64(p.b[y*p.bs+x]) - float64(s)/float64(c)
						sumAbs += math.Abs(d)
						sumSq += d * d
						n++
					}
				}
				mad := sumAbs / float64(n)
				psnr := 10 * math.Log10(255*255/math.Max(sumSq/float64(n), 1e-9))
				maxMAD, minPSNR := 4.0, 33.0
				if denom == 1 || denom == 8 {
					maxMAD, minPSNR = 0.6, 45
				}
				if _, ok := worstPSNR[denom]; !ok {
					worstPSNR[denom] = 100
				}
				worstMAD[denom], worstPSNR[denom] = max(worstMAD[denom], mad), min(worstPSNR[denom], psnr)
				if mad > maxMAD || psnr < minPSNR {
					t.Errorf("%s 1/%d %s: mean |difference| %.2f, PSNR %.1f dB", filepath.Base(f), denom, p.name, mad, psnr)
				}
			}
			checked++
		}
	}
	for _, denom := range []int{1, 2, 4, 8} {
		t.Logf("1/%d: worst mean |difference| %.2f, worst PSNR %.1f dB", denom, worstMAD[denom], worstPSNR[denom])
	}
	if checked < 40 {
		t.Errorf("checked %d scaled decodes, want ≥ 40", checked)
	}
}

// BenchmarkDecodeScaled decodes coffee.jpg at each scale, and with
// image/jpeg at full size for comparison.
func BenchmarkDecodeScaled(b *testing.B) {
	in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "coffee.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	for _, denom := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("1-%d", denom), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := DecodeAt(in, 8/denom, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("image-jpeg", func(b *testing.B) {
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(in)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// At 3/8, 5/8, 6/8 and 7/8 a sample stands for a box 8/n full-size samples
// wide, a fraction: each plane is compared with image/jpeg's full-size
// plane averaged over those boxes (sample X covers [8X/n, 8(X+1)/n), each
// full-size sample weighted by its overlap, the last one repeated past the
// edge as encoders pad). The tolerance is the 1/2 and 1/4 scales' (mean
// |difference| ≤ 4 levels, PSNR ≥ 33 dB): the same dropped frequencies.
func TestDecodeAtMatchesAreaDownscale(t *testing.T) {
	checked := 0
	worstMAD, worstPSNR := 0.0, 100.0
	for _, f := range corpus(t) {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		full, err := jpeg.Decode(bytes.NewReader(in))
		if err != nil {
			continue
		}
		for _, n := range []int{3, 5, 6, 7} {
			got, _, err := DecodeAt(in, n, Limits{})
			if err != nil {
				if IsUnsupported(err) {
					break
				}
				t.Fatalf("%s %d/8: %v", filepath.Base(f), n, err)
			}
			b := full.Bounds()
			if w, h := (b.Dx()*n+7)/8, (b.Dy()*n+7)/8; got.Bounds() != image.Rect(0, 0, w, h) {
				t.Fatalf("%s %d/8: %v, want %dx%d", filepath.Base(f), n, got.Bounds(), w, h)
			}
			type plane struct {
				pix          []byte
				stride, w, h int
			}
			var pairs [][2]plane
			switch a := full.(type) {
			case *image.Gray:
				g := got.(*image.Gray)
				pairs = append(pairs, [2]plane{{a.Pix, a.Stride, b.Dx(), b.Dy()}, {g.Pix, g.Stride, g.Rect.Dx(), g.Rect.Dy()}})
			case *image.YCbCr:
				g := got.(*image.YCbCr)
				acw, ach := a.CStride, len(a.Cb)/a.CStride
				gcw, gch := g.CStride, len(g.Cb)/g.CStride
				pairs = append(pairs, [2]plane{{a.Y, a.YStride, b.Dx(), b.Dy()}, {g.Y, g.YStride, g.Rect.Dx(), g.Rect.Dy()}},
					[2]plane{{a.Cb, a.CStride, acw, ach}, {g.Cb, g.CStride, gcw, gch}},
					[2]plane{{a.Cr, a.CStride, acw, ach}, {g.Cr, g.CStride, gcw, gch}})
			}
			d := 8 / float64(n)
			// overlap[X] lists (full-size index, weight) for sample X.
			overlap := func(X, size int) (idx []int, wt []float64) {
				lo, hi := float64(X)*d, float64(X+1)*d
				for i := int(lo); float64(i) < hi; i++ {
					o := min(hi, float64(i+1)) - max(lo, float64(i))
					if o > 0 {
						idx, wt = append(idx, min(i, size-1)), append(wt, o/d)
					}
				}
				return idx, wt
			}
			for pi, p := range pairs {
				src, dst := p[0], p[1]
				var sumAbs, sumSq float64
				for y := 0; y < dst.h; y++ {
					yi, yw := overlap(y, src.h)
					for x := 0; x < dst.w; x++ {
						xi, xw := overlap(x, src.w)
						ref := 0.0
						for j := range yi {
							for i := range xi {
								ref += yw[j] * xw[i] * float64(src.pix[yi[j]*src.stride+xi[i]])
							}
						}
						diff := float64(dst.pix[y*dst.stride+x]) - ref
						sumAbs += math.Abs(diff)
						sumSq += diff * diff
					}
				}
				cnt := float64(dst.w * dst.h)
				mad := sumAbs / cnt
				psnr := 10 * math.Log10(255*255/math.Max(sumSq/cnt, 1e-9))
				worstMAD, worstPSNR = max(worstMAD, mad), min(worstPSNR, psnr)
				if mad > 4 || psnr < 33 {
					t.Errorf("%s %d/8 plane %d: mean |difference| %.2f, PSNR %.1f dB", filepath.Base(f), n, pi, mad, psnr)
				}
			}
			checked++
		}
	}
	t.Logf("%d scaled decodes; worst mean |difference| %.2f, worst PSNR %.1f dB", checked, worstMAD, worstPSNR)
	if checked < 20 {
		t.Errorf("checked %d scaled decodes, want ≥ 20", checked)
	}
}

// EncodeYCbCr and EncodeGray write the planes they are given: image/jpeg
// reads them back within the quantisation's error, at odd sizes too.
func TestEncodePlanes(t *testing.T) {
	for _, size := range [][2]int{{64, 48}, {37, 23}, {1, 1}, {17, 200}} {
		w, h := size[0], size[1]
		src := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				src.Y[y*src.YStride+x] = uint8(40 + (x*3+y*5)%170)
			}
		}
		for i := range src.Cb {
			cx, cy := i%src.CStride, i/src.CStride
			src.Cb[i], src.Cr[i] = uint8(90+2*cx), uint8(160-2*cy)
		}
		gray := &image.Gray{Pix: src.Y, Stride: src.YStride, Rect: src.Rect}
		for _, tc := range []struct {
			name string
			data []byte
		}{{"ycbcr", EncodeYCbCr(src, 95)}, {"gray", EncodeGray(gray, 95)}} {
			got, err := jpeg.Decode(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatalf("%s %dx%d: %v", tc.name, w, h, err)
			}
			if got.Bounds() != src.Rect {
				t.Fatalf("%s: %v, want %v", tc.name, got.Bounds(), src.Rect)
			}
			var gy []byte
			var stride int
			switch g := got.(type) {
			case *image.YCbCr:
				if g.SubsampleRatio != image.YCbCrSubsampleRatio420 || tc.name != "ycbcr" {
					t.Fatalf("%s: %v", tc.name, g.SubsampleRatio)
				}
				gy, stride = g.Y, g.YStride
				for i := 0; i < len(src.Cb); i++ {
					cx, cy := i%src.CStride, i/src.CStride
					if d := int(g.Cb[cy*g.CStride+cx]) - int(src.Cb[i]); d > 6 || d < -6 {
						t.Fatalf("%s %dx%d: Cb at %d off by %d", tc.name, w, h, i, d)
					}
				}
			case *image.Gray:
				if tc.name != "gray" {
					t.Fatalf("%s decoded as gray", tc.name)
				}
				gy, stride = g.Pix, g.Stride
			}
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					if d := int(gy[y*stride+x]) - int(src.Y[y*src.YStride+x]); d > 8 || d < -8 {
						t.Fatalf("%s %dx%d: Y at (%d, %d) off by %d", tc.name, w, h, x, y, d)
					}
				}
			}
		}
	}
}

// RecompressFit gives Recompress's bytes and DecodeFit's planes, from one
// decode, for baseline (streamed) and progressive (whole) inputs alike.
func TestRecompressFitIsBoth(t *testing.T) {
	checked := 0
	for _, f := range corpus(t) {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Recompress(in, Options{Quality: 50})
		if err != nil {
			continue
		}
		m, err := Decode(in, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		luma := image.Pt((m.Width+2)/3, (m.Height+2)/3)
		chroma := image.Pt((luma.X+1)/2, (luma.Y+1)/2)
		got, planes, err := RecompressFit(in, Options{Quality: 50}, luma, chroma)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: RecompressFit's bytes differ from Recompress's", filepath.Base(f))
		}
		alone, _, err := DecodeFit(in, luma, chroma, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(planes) != len(alone) {
			t.Fatalf("%s: %d planes, DecodeFit %d", filepath.Base(f), len(planes), len(alone))
		}
		for i := range planes {
			a, b := planes[i], alone[i]
			if a.Width != b.Width || a.Height != b.Height || !bytes.Equal(a.Pix, b.Pix) {
				t.Errorf("%s plane %d: %dx%d, DecodeFit's %dx%d, same samples %v", filepath.Base(f), i, a.Width, a.Height, b.Width, b.Height, bytes.Equal(a.Pix, b.Pix))
			}
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("checked %d files, want ≥ 10", checked)
	}
}

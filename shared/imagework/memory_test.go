package imagework

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
)

// peakInputVar names the file a child process of this test binary
// compresses once (with the sizing in peakSizingVar, at quality 100, under
// one image's share of compressImage's soft memory limit), printing its
// peak resident memory in kB and nothing else.
const (
	peakInputVar  = "IMAGEWORK_PEAK_INPUT"
	peakSizingVar = "IMAGEWORK_PEAK_SIZING"
)

func TestMain(m *testing.M) {
	if file := os.Getenv(peakInputVar); file != "" {
		if err := peakChild(file, os.Getenv(peakSizingVar)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func peakChild(file, sizing string) error {
	in, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var z batch.Sizing
	if err := json.Unmarshal([]byte(sizing), &z); err != nil {
		return err
	}
	// compressImage's soft memory limit, one image's share of it.
	debug.SetMemoryLimit(batch.DefaultImageLimits.MemoryPerImage())
	var extra []Box
	for _, sz := range z.Sizes {
		extra = append(extra, Box{Width: sz.Width, Height: sz.Height})
	}
	if _, _, err := Sized(in, 100, DefaultLimits, Box{Width: z.MaxWidth, Height: z.MaxHeight}, extra); err != nil {
		return err
	}
	// VmHWM: the process's peak resident memory, what Cloud Run counts.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Println(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return nil
		}
	}
	return fmt.Errorf("no VmHWM in /proc/self/status")
}

// childPeakMB compresses the file in a fresh process of this binary and
// returns its peak resident memory in MB.
func childPeakMB(tb testing.TB, file string, z batch.Sizing) float64 {
	tb.Helper()
	sizing, _ := json.Marshal(z)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peakInputVar+"="+file, peakSizingVar+"="+string(sizing))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("child: %v: %s", err, stderr.String())
	}
	kb, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		tb.Fatalf("child answered %q", out)
	}
	return kb / 1024
}

// maxSizeInputs writes the largest images the default limits accept, a
// square of batch.DefaultImageLimits.MaxPixels, as a photo-like baseline
// JPEG (quality 90, 4:2:0) and an RGBA PNG, each within
// MaxBytes, and returns their paths by format.
func maxSizeInputs(tb testing.TB) (map[string]string, int) {
	tb.Helper()
	side := int(math.Sqrt(float64(batch.DefaultImageLimits.MaxPixels)))
	dir := tb.TempDir()
	files := map[string]string{}
	ycc := image.NewYCbCr(image.Rect(0, 0, side, side), image.YCbCrSubsampleRatio420)
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			v := 128 + 60*math.Sin(float64(x)/37) + 40*math.Cos(float64(y)/23) + float64((x*7+y*13)%17)
			ycc.Y[y*ycc.YStride+x] = uint8(max(0, min(255, v)))
		}
	}
	for y := 0; y < (side+1)/2; y++ {
		for x := 0; x < (side+1)/2; x++ {
			ycc.Cb[y*ycc.CStride+x] = uint8(x * 255 / side)
			ycc.Cr[y*ycc.CStride+x] = uint8(y * 255 / side)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, ycc, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	ycc = nil
	files["jpeg"] = filepath.Join(dir, "max.jpg")
	rgba := image.NewNRGBA(image.Rect(0, 0, side, side))
	for y := 0; y < side; y++ {
		row := rgba.Pix[y*rgba.Stride:]
		for x := 0; x < side; x++ {
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = uint8(x), uint8(y), uint8(x+y), uint8(255-(x^y)&63)
		}
	}
	write := func(name string, data []byte) {
		if int64(len(data)) > batch.DefaultImageLimits.MaxBytes {
			tb.Fatalf("%s: %d bytes, more than an image may have", name, len(data))
		}
		if err := os.WriteFile(name, data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	write(files["jpeg"], b.Bytes())
	b.Reset()
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, rgba); err != nil {
		tb.Fatal(err)
	}
	files["png"] = filepath.Join(dir, "max.png")
	write(files["png"], b.Bytes())
	return files, side
}

// BenchmarkWorstAcceptedSizing is the peak resident memory of one image at
// the default limits' largest (a square of IMGPIPE_MAX_PIXELS), compressed
// at quality 100 with no sizing and with the sizings OutputPixelCap lets
// through that cost the most: two outputs at the image's own size, the
// main output at its own size and five a fifth of it, two outputs each just
// smaller than the image (and a common one, the main output and a
// thumbnail). Each runs in a fresh process whose soft memory limit is one
// image's share of compressImage's (batch.ImageLimits.MemoryPerImage: 8
// bytes a pixel at IMGPIPE_MAX_PIXELS plus twice IMGPIPE_MAX_IMAGE_BYTES,
// 432 MiB by default; the function has 256 MiB more for the runtime and
// clients), as compressImage sets it.
func BenchmarkWorstAcceptedSizing(b *testing.B) {
	files, side := maxSizeInputs(b)
	lim := batch.DefaultImageLimits
	fifth := int(math.Sqrt(float64(lim.MaxPixels / 5)))
	sizings := map[string]batch.Sizing{
		"none":              {},
		"main-and-thumb":    {Sizes: []batch.Size{{Name: "thumb", Width: 200, Height: 200}}},
		"two-at-own-size":   {Sizes: []batch.Size{{Name: "a", Width: side - 1}}},
		"main-and-5-fifths": {Sizes: []batch.Size{{Name: "a", Width: fifth, Height: fifth}, {Name: "b", Width: fifth, Height: fifth - 1}, {Name: "c", Width: fifth, Height: fifth - 2}, {Name: "d", Width: fifth, Height: fifth - 3}, {Name: "e", Width: fifth, Height: fifth - 4}}},
		"two-just-smaller":  {MaxWidth: side - 1, Sizes: []batch.Size{{Name: "a", Width: side - 2}}},
	}
	for _, format := range []string{"jpeg", "png"} {
		for _, name := range []string{"none", "main-and-thumb", "two-at-own-size", "main-and-5-fifths", "two-just-smaller"} {
			z := sizings[name]
			if err := z.CheckPixels(lim); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			b.Run(format+"/"+name, func(b *testing.B) {
				peak := 0.0
				for b.Loop() {
					peak = max(peak, childPeakMB(b, files[format], z))
				}
				b.ReportMetric(peak, "MB-peak-RSS")
				b.ReportMetric(float64(lim.MemoryPerImage())/(1<<20), "MB-budget")
				b.ReportMetric(float64(z.OutputPixels(lim))/1e6, "MP-worst-outputs")
			})
		}
	}
}

package jpegdct

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgpipe/imgpipe/shared/imagequality"
)

// TestCorpusBytesAndSSIM prints total output bytes and mean luma SSIM over
// $IMGPIPE_BENCH_CORPUS at quality 50: the figure to watch when tuning
// rate–distortion choices (make bench compares them with sharp).
func TestCorpusBytesAndSSIM(t *testing.T) {
	dir := os.Getenv("IMGPIPE_BENCH_CORPUS")
	if dir == "" {
		t.Skip("IMGPIPE_BENCH_CORPUS not set")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	total, ssim, n := 0, 0.0, 0
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Recompress(in, Options{Quality: 50})
		if err != nil {
			continue
		}
		src, _ := jpeg.Decode(bytes.NewReader(in))
		got, err := jpeg.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		total += len(out)
		ssim += imagequality.SSIM(src, got)
		n++
	}
	t.Logf("%d files: %d bytes, mean SSIM %.5f", n, total, ssim/float64(n))
}

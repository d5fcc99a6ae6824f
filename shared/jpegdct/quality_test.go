package jpegdct

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/shared/imagequality"
)

// TestCorpusBytesAndSSIM prints, per file and in total, output bytes and
// luma SSIM over $IMGPIPE_BENCH_CORPUS at quality 50: the figures to watch
// when tuning rate–distortion choices (make bench compares them with
// sharp). -v lists the files as "name bytes ssim".
func TestCorpusBytesAndSSIM(t *testing.T) {
	dir := os.Getenv("IMGPIPE_BENCH_CORPUS")
	if dir == "" {
		t.Skip("IMGPIPE_BENCH_CORPUS not set")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	lines := make([]string, len(files))
	sizes, ssims := make([]int, len(files)), make([]float64, len(files))
	var wg sync.WaitGroup
	next := make(chan int, len(files))
	for i := range files {
		next <- i
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				in, err := os.ReadFile(files[i])
				if err != nil {
					t.Error(err)
					continue
				}
				out, err := Recompress(in, Options{Quality: 50})
				if err != nil {
					continue
				}
				src, _ := jpeg.Decode(bytes.NewReader(in))
				got, err := jpeg.Decode(bytes.NewReader(out))
				if err != nil {
					t.Error(err)
					continue
				}
				sizes[i], ssims[i] = len(out), imagequality.SSIM(src, got)
				lines[i] = fmt.Sprintf("%s %d %.5f", filepath.Base(files[i]), sizes[i], ssims[i])
			}
		})
	}
	wg.Wait()
	total, ssim, n := 0, 0.0, 0
	for i, l := range lines {
		if l == "" {
			continue
		}
		t.Log(l)
		total += sizes[i]
		ssim += ssims[i]
		n++
	}
	t.Logf("%d files: %d bytes, mean SSIM %.5f", n, total, ssim/float64(n))
}

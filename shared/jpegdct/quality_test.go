package jpegdct

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imgpipe/imgpipe/shared/imagequality"
)

// TestCorpusBytesAndSSIM recompresses every file of the corpus at quality
// 50 (the bench corpus under $IMGPIPE_BENCH_CORPUS, make bench sets it;
// else the repository's and Go's own test JPEGs) and checks each outcome:
// an input is recompressed, or refused as Unsupported (the pixel path takes
// it), or refused as corrupt only when image/jpeg cannot decode it either;
// every output decodes, to the input's size, with luma SSIM ≥ 0.85. The
// figures to watch when tuning rate–distortion choices are logged: -v
// lists the files as "name bytes ssim".
func TestCorpusBytesAndSSIM(t *testing.T) {
	files := corpus(t)
	if dir := os.Getenv("IMGPIPE_BENCH_CORPUS"); dir != "" {
		files, _ = filepath.Glob(filepath.Join(dir, "*.jpg"))
		if len(files) == 0 {
			t.Fatalf("IMGPIPE_BENCH_CORPUS=%s holds no .jpg", dir)
		}
	}
	lines := make([]string, len(files))
	sizes, ssims := make([]int, len(files)), make([]float64, len(files))
	var refused atomic.Int32
	var wg sync.WaitGroup
	next := make(chan int, len(files))
	for i := range files {
		next <- i
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				name := filepath.Base(files[i])
				in, err := os.ReadFile(files[i])
				if err != nil {
					t.Error(err)
					continue
				}
				src, srcErr := jpeg.Decode(bytes.NewReader(in))
				out, err := Recompress(in, Options{Quality: 50})
				switch {
				case IsUnsupported(err):
					refused.Add(1)
					continue
				case errors.Is(err, ErrCorrupt) && srcErr != nil:
					refused.Add(1)
					continue
				case err != nil:
					t.Errorf("%s: %v (image/jpeg decodes it: %v)", name, err, srcErr == nil)
					continue
				case srcErr != nil:
					t.Errorf("%s: recompressed, but image/jpeg cannot decode the input: %v", name, srcErr)
					continue
				}
				got, err := jpeg.Decode(bytes.NewReader(out))
				if err != nil {
					t.Errorf("%s: the output does not decode: %v", name, err)
					continue
				}
				if got.Bounds().Size() != src.Bounds().Size() {
					t.Errorf("%s: output %v, input %v", name, got.Bounds().Size(), src.Bounds().Size())
					continue
				}
				sizes[i], ssims[i] = len(out), imagequality.SSIM(src, got)
				if ssims[i] < 0.85 {
					t.Errorf("%s: luma SSIM %.4f at quality 50, want ≥ 0.85", name, ssims[i])
				}
				lines[i] = fmt.Sprintf("%s %d %.5f", name, sizes[i], ssims[i])
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
	if n == 0 {
		t.Fatalf("none of %d files was recompressed", len(files))
	}
	t.Logf("%d files recompressed, %d refused: %d bytes, mean SSIM %.5f", n, refused.Load(), total, ssim/float64(n))
}

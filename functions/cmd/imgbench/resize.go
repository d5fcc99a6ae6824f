package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/disintegration/imaging"

	"github.com/imgpipe/imgpipe/shared/imagequality"
	"github.com/imgpipe/imgpipe/shared/imagework"
)

// sharpResize is one line of sharp-resize.mjs's output.
type sharpResize struct {
	File string `json:"file"`
	Fit  struct {
		MS    float64 `json:"ms"`
		Bytes int     `json:"bytes"`
	} `json:"fit"`
	Thumb struct {
		MS    float64 `json:"ms"`
		Bytes int     `json:"bytes"`
	} `json:"thumb"`
}

// resizeTask is one row of the resize table.
type resizeTask struct {
	label string
	main  imagework.Box
	extra []imagework.Box
	sharp []string // sharp's outputs it compares with: "fit", "thumb"
}

var resizeTasks = []resizeTask{
	{"fit in 1600×1600", imagework.Box{Width: 1600, Height: 1600}, nil, []string{"fit"}},
	{"200 px thumbnail (fit in 200×200)", imagework.Box{Width: 200, Height: 200}, nil, []string{"thumb"}},
	{"both from one fetch (sharp: the two runs)", imagework.Box{Width: 1600, Height: 1600}, []imagework.Box{{Width: 200, Height: 200}}, []string{"fit", "thumb"}},
}

// resizeAgg sums one task's figures over the corpus, per side: imgpipe, sharp.
type resizeAgg struct {
	files   int
	mp, sec [2]float64
	bytes   [2]int
	ssim    [2]float64 // summed over outputs
	outputs int
}

// runResize times imgpipe's sizing (imagework.Sized, as the pipeline
// calls it) against sharp's resize on the corpus and prints the resize
// table: MP/s of input, output bytes, and each output's luma SSIM to a
// reference made from the same input by a full decode and Lanczos3 in
// float at the output's size.
func runResize(corpus, sharpJSON, sharpOut string, reps int) error {
	sharp := map[string]sharpResize{}
	f, err := os.Open(sharpJSON)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r sharpResize
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			sharp[r.File] = r
		}
	}
	f.Close()
	names, _ := filepath.Glob(filepath.Join(corpus, "*"))
	sort.Strings(names)
	aggs := make([]resizeAgg, len(resizeTasks))
	var biggest string
	var biggestMP float64
	for _, name := range names {
		base := filepath.Base(name)
		in, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		sr, ok := sharp[base]
		if !ok {
			return fmt.Errorf("no sharp resize result for %s", base)
		}
		full, err := referenceDecode(in)
		if err != nil {
			fmt.Fprintf(os.Stderr, "skip %s: %v\n", base, err)
			continue
		}
		mp := float64(full.Rect.Dx()*full.Rect.Dy()) / 1e6
		if c, _, _ := label(base, in); strings.HasPrefix(c, "JPEG baseline") && mp > biggestMP {
			biggest, biggestMP = name, mp
		}
		refs := map[[2]int]*image.NRGBA{}
		score := func(out []byte) (float64, error) {
			// Scoring is not timed: every core, then back to one.
			runtime.GOMAXPROCS(runtime.NumCPU())
			defer runtime.GOMAXPROCS(1)
			img, err := decode(out)
			if err != nil {
				return 0, err
			}
			size := [2]int{img.Bounds().Dx(), img.Bounds().Dy()}
			ref := refs[size]
			if ref == nil {
				ref = lanczos3(full, size[0], size[1])
				refs[size] = ref
			}
			return imagequality.SSIM(ref, img), nil
		}
		sharpRuns := map[string]struct {
			ms    float64
			bytes int
		}{"fit": {sr.Fit.MS, sr.Fit.Bytes}, "thumb": {sr.Thumb.MS, sr.Thumb.Bytes}}
		fmt.Fprintf(os.Stderr, "%-44s %5.1f MP", base, mp)
		for ti, task := range resizeTasks {
			var main imagework.Result
			var extra []imagework.Result
			sec, err := median(func() (err error) {
				main, extra, err = imagework.Sized(in, 50, imagework.DefaultLimits, task.main, task.extra)
				return err
			}, reps)
			if err != nil {
				return fmt.Errorf("%s: %w", base, err)
			}
			a := &aggs[ti]
			a.files++
			a.mp[0] += mp
			a.sec[0] += sec
			for _, r := range append([]imagework.Result{main}, extra...) {
				s, err := score(r.JPEG)
				if err != nil {
					return fmt.Errorf("%s output: %w", base, err)
				}
				a.bytes[0] += len(r.JPEG)
				a.ssim[0] += s
				a.outputs++
			}
			a.mp[1] += mp
			for _, which := range task.sharp {
				run := sharpRuns[which]
				out, err := os.ReadFile(filepath.Join(sharpOut, base+"."+which+".jpg"))
				if err != nil {
					return err
				}
				s, err := score(out)
				if err != nil {
					return fmt.Errorf("%s sharp output: %w", base, err)
				}
				a.sec[1] += run.ms / 1000
				a.bytes[1] += run.bytes
				a.ssim[1] += s
			}
			fmt.Fprintf(os.Stderr, " | %s: imgpipe %.1f ms, sharp %.1f ms", strings.Fields(task.label)[0], sec*1000, sharpSum(sharpRuns, task.sharp))
			runtime.GC()
		}
		fmt.Fprintln(os.Stderr)
	}
	fmt.Printf("\n## Resize\n\nOne core each, quality 50, median of %d runs per file; never enlarged (sharp: resize(w, h, {fit: 'inside', withoutEnlargement: true}) then jpeg({quality: 50})).\n", reps)
	fmt.Printf("MP/s: input megapixels / time. Bytes: all outputs. SSIM: mean luma SSIM of each output to the same input decoded whole and resized to the output's size by Lanczos3 in float.\n\n")
	fmt.Println("| task | files | imgpipe MP/s | sharp MP/s | imgpipe ÷ sharp speed | imgpipe bytes | sharp bytes | imgpipe ÷ sharp bytes | SSIM imgpipe | SSIM sharp | SSIM imgpipe − sharp |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for i, t := range resizeTasks {
		a := aggs[i]
		if a.files == 0 {
			continue
		}
		speed := (a.mp[0] / a.sec[0]) / (a.mp[1] / a.sec[1])
		n := float64(a.outputs)
		fmt.Printf("| %s | %d | %.1f | %.1f | **%.2f×** | %d | %d | **%.3f×** | %.4f | %.4f | %+.4f |\n",
			t.label, a.files, a.mp[0]/a.sec[0], a.mp[1]/a.sec[1], speed, a.bytes[0], a.bytes[1],
			float64(a.bytes[0])/float64(a.bytes[1]), a.ssim[0]/n, a.ssim[1]/n, (a.ssim[0]-a.ssim[1])/n)
	}
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Println("\nResize goals, this run (≥ 1.5× sharp's speed, SSIM no lower than sharp's − 0.005, bytes ≤ sharp's):")
	for i, t := range resizeTasks {
		a := aggs[i]
		if a.files == 0 {
			continue
		}
		speed := (a.mp[0] / a.sec[0]) / (a.mp[1] / a.sec[1])
		d := (a.ssim[0] - a.ssim[1]) / float64(a.outputs)
		b := float64(a.bytes[0]) / float64(a.bytes[1])
		fmt.Printf("- %s: speed %.2f× %s; SSIM %+.4f %s; bytes %.3f× %s\n", t.label, speed, met(speed >= 1.5), d, met(d >= -0.005), b, met(b <= 1))
	}
	if biggest != "" {
		fmt.Printf("\nPeak RSS for the largest baseline JPEG (%s, %.1f MP) fit in 1600×1600 plus a 200 px thumbnail, in a fresh process: imgpipe %s; the pixel path's compression alone %s\n",
			filepath.Base(biggest), biggestMP, childPeak(biggest, "resize"), childPeak(biggest, "stdlib"))
	}
	return nil
}

func sharpSum(runs map[string]struct {
	ms    float64
	bytes int
}, which []string) float64 {
	s := 0.0
	for _, w := range which {
		s += runs[w].ms
	}
	return s
}

// referenceDecode decodes in whole, upright, on white, as an NRGBA.
func referenceDecode(in []byte) (*image.NRGBA, error) {
	img, err := imaging.Decode(bytes.NewReader(in), imaging.AutoOrientation(true))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, &image.Uniform{C: color.White}, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Over)
	return dst, nil
}

// tap is one input sample's weight in an output sample.
type tap struct {
	i int
	w float64
}

// lanczosTaps are, for each of out samples resampled from in, the input
// samples and weights of a Lanczos3 kernel, widened by the scale when
// shrinking (so it filters as it shrinks), centres aligned, edges
// repeated, weights summing to 1.
func lanczosTaps(in, out int) [][]tap {
	scale := float64(in) / float64(out)
	width := math.Max(scale, 1)
	sinc := func(x float64) float64 {
		if x == 0 {
			return 1
		}
		return math.Sin(math.Pi*x) / (math.Pi * x)
	}
	taps := make([][]tap, out)
	for o := range taps {
		center := (float64(o)+0.5)*scale - 0.5
		lo, hi := int(math.Ceil(center-3*width)), int(math.Floor(center+3*width))
		sum := 0.0
		for i := lo; i <= hi; i++ {
			x := (float64(i) - center) / width
			if x <= -3 || x >= 3 {
				continue
			}
			w := sinc(x) * sinc(x/3)
			taps[o] = append(taps[o], tap{min(max(i, 0), in-1), w})
			sum += w
		}
		for k := range taps[o] {
			taps[o][k].w /= sum
		}
	}
	return taps
}

// lanczos3 resizes src to w×h, rows then columns, in float (float32
// between the passes), rounding once at the end.
func lanczos3(src *image.NRGBA, w, h int) *image.NRGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	xt, yt := lanczosTaps(sw, w), lanczosTaps(sh, h)
	tmp := make([]float32, sh*w*3)
	parallelRows(sh, func(y int) {
		row := src.Pix[y*src.Stride:]
		for x, taps := range xt {
			var r, g, b float64
			for _, t := range taps {
				p := row[t.i*4 : t.i*4+3]
				r += t.w * float64(p[0])
				g += t.w * float64(p[1])
				b += t.w * float64(p[2])
			}
			o := (y*w + x) * 3
			tmp[o], tmp[o+1], tmp[o+2] = float32(r), float32(g), float32(b)
		}
	})
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	parallelRows(h, func(y int) {
		taps := yt[y]
		acc := make([]float64, w*3)
		for _, t := range taps {
			row := tmp[t.i*w*3 : (t.i+1)*w*3]
			for k, v := range row {
				acc[k] += t.w * float64(v)
			}
		}
		out := dst.Pix[y*dst.Stride:]
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				out[x*4+c] = uint8(math.Min(255, math.Max(0, math.Round(acc[x*3+c]))))
			}
			out[x*4+3] = 255
		}
	})
	return dst
}

// parallelRows runs row(y) for y in [0, n) on every core the process may
// use: the reference is not timed.
func parallelRows(n int, row func(y int)) {
	workers := runtime.NumCPU()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for y := w; y < n; y += workers {
				row(y)
			}
		})
	}
	wg.Wait()
}

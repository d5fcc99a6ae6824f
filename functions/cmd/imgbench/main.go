// Command imgbench compares imgpipe's compression with sharp and with the
// standard-library pixel path on a folder of real images, one core each,
// and prints one table per image class: MP/s, output/input bytes and luma
// SSIM to the decoded input, with ratios to sharp measured in the same run.
// `make bench` fetches the corpus, runs sharp (sharp.mjs) and then this;
// at its end, `imgbench -results` gathers everything it measured into the
// results file (results.go).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/disintegration/imaging"

	"github.com/imgpipe/imgpipe/shared/imagequality"
	"github.com/imgpipe/imgpipe/shared/imagework"
	"github.com/imgpipe/imgpipe/shared/jpegdct"
)

type sharpResult struct {
	File  string  `json:"file"`
	MS    float64 `json:"ms"`
	Bytes int     `json:"bytes"`
}

// row is one file's figures for one path.
type row struct {
	mp       float64
	sec      float64
	in, out  int
	ssim     float64
	ok       bool
	fellBack bool
}

// agg sums a class's rows: imgpipe, stdlib, sharp.
type agg struct {
	files, fallback int
	r               [3]row
}

func main() {
	corpus := flag.String("corpus", ".bench/corpus", "folder of input images")
	sharpJSON := flag.String("sharp", ".bench/sharp.json", "sharp.mjs output")
	sharpOut := flag.String("sharp-out", ".bench/sharp-out", "sharp's output images")
	reps := flag.Int("reps", 3, "runs per file and path; the median counts")
	one := flag.String("one", "", "internal: compress this file once with -path and print peak RSS")
	path := flag.String("path", "imgpipe", "internal: imgpipe, stdlib, or resize (fit in 1600×1600 plus a 200 px thumbnail)")
	ppm := flag.String("ppm", "", "corpus.sh: write this image as a binary PPM to stdout (transparency on white)")
	half := flag.Bool("half", false, "with -ppm: halve the image first (Lanczos), which washes out an earlier JPEG's artefacts")
	resize := flag.Bool("resize", false, "print the resize table instead: -sharp and -sharp-out are sharp-resize.mjs's")
	results := flag.String("results", "", "write the results file here from the outputs make bench left in -from")
	from := flag.String("from", ".bench", "with -results: the folder of make bench's outputs")
	sharpVersion := flag.String("sharp-version", "", "with -results: the sharp version the run used")
	flag.Parse()
	if *results != "" {
		if err := writeResultsFile(*results, *from, thisRun(*sharpVersion)); err != nil {
			fmt.Fprintln(os.Stderr, "imgbench:", err)
			os.Exit(1)
		}
		return
	}
	if *one != "" {
		peak(*one, *path)
		return
	}
	if *ppm != "" {
		if err := writePPM(*ppm, *half); err != nil {
			fmt.Fprintln(os.Stderr, "imgbench:", err)
			os.Exit(1)
		}
		return
	}
	runtime.GOMAXPROCS(1)
	bench := run
	if *resize {
		bench = runResize
	}
	if err := bench(*corpus, *sharpJSON, *sharpOut, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "imgbench:", err)
		os.Exit(1)
	}
}

func imgpipePath(in []byte) ([]byte, string, error) {
	r, err := imagework.Compress(in, 50, imagework.DefaultLimits)
	return r.JPEG, r.Path, err
}

// stdlibPath is what imgpipe did before the DCT path: imaging + image/jpeg.
func stdlibPath(in []byte) ([]byte, string, error) {
	img, err := imaging.Decode(bytes.NewReader(in), imaging.AutoOrientation(true))
	if err != nil {
		return nil, "", err
	}
	var b bytes.Buffer
	err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 50})
	return b.Bytes(), "pixel", err
}

// label is an input's row in the table (its kind), its quality band's
// row ("" for other than JPEG) and its estimated quality (0 for other than
// JPEG), from one read of its coefficients.
func label(name string, in []byte) (class, band string, quality int) {
	if strings.HasSuffix(strings.ToLower(name), ".png") {
		return "PNG", "", 0
	}
	m, err := jpegdct.Decode(in, jpegdct.Limits{})
	if err != nil {
		return "JPEG other", "", 0
	}
	kind := "baseline"
	if m.Progressive {
		kind = "progressive"
	}
	switch quality = m.Quality(); {
	case quality <= 80:
		band = "JPEG input quality ≤ 80"
	case quality <= 90:
		band = "JPEG input quality 81–90"
	default:
		band = "JPEG input quality > 90"
	}
	return "JPEG " + kind + " " + m.Sampling(), band, quality
}

func median(f func() error, reps int) (float64, error) {
	var ts []float64
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(t0).Seconds())
	}
	sort.Float64s(ts)
	return ts[len(ts)/2], nil
}

// decode reads an image; transparency is flattened onto white, as users see
// it and as imgpipe encodes it.
func decode(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	switch img.(type) {
	case *image.YCbCr, *image.Gray:
		return img, nil
	}
	return imaging.OverlayCenter(imaging.New(img.Bounds().Dx(), img.Bounds().Dy(), color.White), img, 1), nil
}

func run(corpus, sharpJSON, sharpOut string, reps int) error {
	sharp := map[string]sharpResult{}
	f, err := os.Open(sharpJSON)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r sharpResult
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			sharp[r.File] = r
		}
	}
	f.Close()
	names, _ := filepath.Glob(filepath.Join(corpus, "*"))
	sort.Strings(names)
	classes, bands := map[string]*agg{}, map[string]*agg{}
	var pngDecode, pngSharp row
	var biggest, biggestProg string
	var biggestMP, biggestProgMP float64
	for _, name := range names {
		in, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		src, err := decode(in)
		if err != nil {
			fmt.Fprintf(os.Stderr, "skip %s: %v\n", name, err)
			continue
		}
		base := filepath.Base(name)
		sr, ok := sharp[base]
		if !ok {
			return fmt.Errorf("no sharp result for %s", base)
		}
		mp := float64(src.Bounds().Dx()*src.Bounds().Dy()) / 1e6
		c, qband, q := label(base, in)
		if strings.HasPrefix(c, "JPEG baseline") && mp > biggestMP {
			biggest, biggestMP = name, mp
		} else if strings.HasPrefix(c, "JPEG progressive") && mp > biggestProgMP {
			biggestProg, biggestProgMP = name, mp
		}
		var rs [3]row
		for i, p := range []func([]byte) ([]byte, string, error){imgpipePath, stdlibPath} {
			var out []byte
			var how string
			sec, err := median(func() (err error) { out, how, err = p(in); return err }, reps)
			if err != nil {
				return fmt.Errorf("%s: %w", base, err)
			}
			o, err := decode(out)
			if err != nil {
				return fmt.Errorf("%s output: %w", base, err)
			}
			rs[i] = row{mp: mp, sec: sec, in: len(in), out: len(out), ssim: imagequality.SSIM(src, o), ok: true, fellBack: i == 0 && how == "pixel" && !strings.HasSuffix(base, ".png")}
			runtime.GC()
		}
		sb, err := os.ReadFile(filepath.Join(sharpOut, base+".jpg"))
		if err != nil {
			return err
		}
		so, err := decode(sb)
		if err != nil {
			return err
		}
		rs[2] = row{mp: mp, sec: sr.MS / 1000, in: len(in), out: sr.Bytes, ssim: imagequality.SSIM(src, so), ok: true}
		if strings.HasSuffix(strings.ToLower(base), ".png") {
			// What image/png's decoding alone takes: the floor under the
			// pixel path's speed on PNGs.
			sec, err := median(func() error { _, _, err := image.Decode(bytes.NewReader(in)); return err }, reps)
			if err != nil {
				return err
			}
			pngDecode.mp += mp
			pngDecode.sec += sec
			pngSharp.mp += mp
			pngSharp.sec += rs[2].sec
		}
		for _, to := range []struct {
			m map[string]*agg
			k string
		}{{classes, c}, {bands, qband}} {
			m, k := to.m, to.k
			if k == "" {
				continue
			}
			a := m[k]
			if a == nil {
				a = &agg{}
				m[k] = a
			}
			a.files++
			if rs[0].fellBack {
				a.fallback++
			}
			for i := range rs {
				a.r[i].mp += rs[i].mp
				a.r[i].sec += rs[i].sec
				a.r[i].in += rs[i].in
				a.r[i].out += rs[i].out
				a.r[i].ssim += rs[i].ssim
			}
		}
		fmt.Fprintf(os.Stderr, "%-44s %-26s q%-3d %5.1f MP  imgpipe %6.1f MP/s %8d B %.4f | stdlib %6.1f MP/s %8d B %.4f | sharp %6.1f MP/s %8d B %.4f\n",
			base, c, q, mp, mp/rs[0].sec, rs[0].out, rs[0].ssim, mp/rs[1].sec, rs[1].out, rs[1].ssim, mp/rs[2].sec, rs[2].out, rs[2].ssim)
	}
	keys := make([]string, 0, len(classes))
	for k := range classes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("\nOne core each (GOMAXPROCS=1; sharp.concurrency(1), UV_THREADPOOL_SIZE=1), quality 50, median of %d runs per file.\n", reps)
	fmt.Printf("MP/s: total megapixels / total time of the class. out/in: output bytes / input bytes. SSIM: mean luma SSIM to the decoded input.\n\n")
	fmt.Println("| class | files | imgpipe MP/s | stdlib MP/s | sharp MP/s | imgpipe ÷ sharp speed | imgpipe out/in | sharp out/in | imgpipe ÷ sharp bytes | SSIM imgpipe | SSIM stdlib | SSIM sharp |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	var tot, jpegs agg
	for _, k := range keys {
		a := classes[k]
		label := k
		if a.fallback > 0 {
			label += fmt.Sprintf(" (%d via pixel path)", a.fallback)
		}
		printRow(label, a.files, a.r)
		add := func(t *agg) {
			t.files += a.files
			for i := range a.r {
				t.r[i].mp += a.r[i].mp
				t.r[i].sec += a.r[i].sec
				t.r[i].in += a.r[i].in
				t.r[i].out += a.r[i].out
				t.r[i].ssim += a.r[i].ssim
			}
		}
		add(&tot)
		if strings.HasPrefix(k, "JPEG") {
			add(&jpegs)
		}
	}
	for _, k := range []string{"JPEG input quality ≤ 80", "JPEG input quality 81–90", "JPEG input quality > 90"} {
		if a := bands[k]; a != nil {
			printRow(k, a.files, a.r)
		}
	}
	printRow("**all JPEG**", jpegs.files, jpegs.r)
	printRow("**all**", tot.files, tot.r)
	printGoals(classes, jpegs)
	if pngDecode.sec > 0 {
		fmt.Printf("\nPNG: image/png's decoding alone runs at %.1f MP/s, sharp's whole path (decode, flatten, encode) at %.1f MP/s (%.2f×).\n",
			pngDecode.mp/pngDecode.sec, pngSharp.mp/pngSharp.sec, (pngDecode.mp/pngDecode.sec)/(pngSharp.mp/pngSharp.sec))
	}
	for _, b := range []struct {
		kind, file string
		mp         float64
	}{{"baseline", biggest, biggestMP}, {"progressive", biggestProg, biggestProgMP}} {
		if b.file != "" {
			fmt.Printf("\nPeak RSS compressing the largest %s JPEG (%s, %.1f MP) in a fresh process: imgpipe %s, stdlib pixel path %s\n",
				b.kind, filepath.Base(b.file), b.mp, childPeak(b.file, "imgpipe"), childPeak(b.file, "stdlib"))
		}
	}
	return nil
}

func printRow(label string, n int, r [3]row) {
	mps := func(x row) float64 { return x.mp / x.sec }
	ratio := func(x row) float64 { return float64(x.out) / float64(x.in) }
	fmt.Printf("| %s | %d | %.1f | %.1f | %.1f | **%.2f×** | %.3f | %.3f | **%.3f×** | %.4f | %.4f | %.4f |\n",
		label, n, mps(r[0]), mps(r[1]), mps(r[2]), mps(r[0])/mps(r[2]), ratio(r[0]), ratio(r[2]),
		float64(r[0].out)/float64(r[2].out), r[0].ssim/float64(n), r[1].ssim/float64(n), r[2].ssim/float64(n))
}

// writePPM prints file as a binary PPM (P6), the input cjpeg reads; with
// half, at half its size.
func writePPM(file string, half bool) error {
	in, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	img, err := decode(in)
	if err != nil {
		return err
	}
	if half {
		img = imaging.Resize(img, img.Bounds().Dx()/2, 0, imaging.Lanczos)
	}
	b := img.Bounds()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	fmt.Fprintf(w, "P6\n%d %d\n255\n", b.Dx(), b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			w.Write([]byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8)})
		}
	}
	return w.Flush()
}

// printGoals sets this run's figures against the performance goals: speed
// and bytes over all JPEGs, the slowest JPEG class, each class's SSIM
// against sharp's, and PNG's speed, bytes and SSIM.
func printGoals(classes map[string]*agg, jpegs agg) {
	mps := func(x row) float64 { return x.mp / x.sec }
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	speed := mps(jpegs.r[0]) / mps(jpegs.r[2])
	bytes := float64(jpegs.r[0].out) / float64(jpegs.r[2].out)
	slowest, slowestName := 0.0, ""
	worstSSIM, worstSSIMName := 0.0, ""
	for k, a := range classes {
		if !strings.HasPrefix(k, "JPEG") {
			continue
		}
		if r := mps(a.r[0]) / mps(a.r[2]); slowestName == "" || r < slowest {
			slowest, slowestName = r, k
		}
		if d := (a.r[0].ssim - a.r[2].ssim) / float64(a.files); worstSSIMName == "" || math.Abs(d) > math.Abs(worstSSIM) {
			worstSSIM, worstSSIMName = d, k
		}
	}
	fmt.Println("\nGoals, this run:")
	fmt.Printf("- speed over all JPEGs %.2f× sharp (goal ≥ 2.0×): %s\n", speed, met(speed >= 2))
	fmt.Printf("- slowest JPEG class %s at %.2f× (goal ≥ 1.2×): %s\n", slowestName, slowest, met(slowest >= 1.2))
	fmt.Printf("- bytes over all JPEGs %.3f× sharp's (goal ≤ 0.93×): %s\n", bytes, met(bytes <= 0.93))
	fmt.Printf("- mean SSIM furthest from sharp's: %s, %+.4f (goal within 0.002): %s\n", worstSSIMName, worstSSIM, met(math.Abs(worstSSIM) <= 0.002))
	if a := classes["PNG"]; a != nil {
		ps, pb := mps(a.r[0])/mps(a.r[2]), float64(a.r[0].out)/float64(a.r[2].out)
		d := (a.r[0].ssim - a.r[2].ssim) / float64(a.files)
		fmt.Printf("- PNG speed %.2f× sharp (goal ≥ 1.0×): %s; bytes %.3f× (goal ≤ 1.0×): %s; mean SSIM %+.5f against sharp's (goal not lower): %s\n",
			ps, met(ps >= 1), pb, met(pb <= 1), d, met(d >= 0))
	}
}

// childPeak runs one compression in a fresh process and returns its peak RSS.
func childPeak(file, path string) string {
	out, err := exec.Command(os.Args[0], "-one", file, "-path", path).Output()
	if err != nil {
		return "error: " + err.Error()
	}
	kb, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return fmt.Sprintf("%.0f MB", float64(kb)/1024)
}

func peak(file, path string) {
	in, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	debug.SetGCPercent(100)
	p := imgpipePath
	switch path {
	case "stdlib":
		p = stdlibPath
	case "resize":
		p = func(in []byte) ([]byte, string, error) {
			r, _, err := imagework.Sized(in, 50, imagework.DefaultLimits, imagework.Box{Width: 1600, Height: 1600}, []imagework.Box{{Width: 200, Height: 200}})
			return r.JPEG, r.Path, err
		}
	}
	if _, _, err := p(in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// VmHWM, not getrusage: ru_maxrss survives execve, so a child would
	// report its parent's peak.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Println(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// runInfo is what the results file says about the run that made it.
type runInfo struct {
	Date, Machine, Go, Sharp, Commit string
}

// thisRun describes the run on this machine now, the code at the
// repository's HEAD (marked when the work tree differs from it).
func thisRun(sharpVersion string) runInfo {
	r := runInfo{
		Date:    time.Now().UTC().Format("2006-01-02"),
		Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Go:      runtime.Version(),
		Sharp:   sharpVersion,
		Commit:  "unknown",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				r.Machine += ", " + strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		r.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			r.Commit += " with uncommitted changes"
		}
	}
	return r
}

// resultSections are the files make bench leaves in its folder, in the
// order the results file shows them: imgbench's tables as written, the Go
// benchmarks' output as tables.
var resultSections = []struct {
	file, title, about string
	goBench            bool
}{
	{"compress.md", "Compression: imgpipe, the standard-library path and sharp",
		"`imgbench` on the corpus: what each column means is printed above the table; shared/jpegdct/README.md describes the corpus and the paths.", false},
	{"resize.md", "Resizing: imgpipe and sharp",
		"`imgbench -resize` on the same corpus (shared/imagework/README.md).", false},
	{"go-bench.txt", "Go benchmarks: shared/jpegdct and shared/imagework",
		"`go test -bench=. -benchmem` with `IMGPIPE_BENCH_CORPUS` set to the corpus; `BenchmarkWorstAcceptedSizing` reports each sizing's peak RSS against one image's memory share.", true},
	{"pipeline.txt", "The pipeline on the local emulators (`make bench-pipeline`)",
		"`BenchmarkPipeline1000`: 1,000 images of a median-size corpus photograph through a function host process of its own; its CPU split by its own profile, Firestore operations, messages and object writes per image, images/s. `BenchmarkUpload`: uploads of 1k/10k/100k rows on a fresh host process.", true},
}

// writeResultsFile writes the results file to path.
func writeResultsFile(path, dir string, r runInfo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeResults(f, dir, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeResults writes the results file from the outputs make bench left
// in dir. A section whose file is missing says it was not run.
func writeResults(w io.Writer, dir string, r runInfo) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# imgpipe benchmark results\n\n")
	fmt.Fprintf(bw, "Written by `make bench` (`imgbench -results`) from one run; the next run replaces it. The READMEs\n")
	fmt.Fprintf(bw, "say what is measured and why; this file holds the figures.\n\n")
	fmt.Fprintf(bw, "| run | |\n|---|---|\n")
	for _, kv := range [][2]string{{"date", r.Date}, {"machine", r.Machine}, {"Go", r.Go}, {"sharp", r.Sharp}, {"code", r.Commit}} {
		fmt.Fprintf(bw, "| %s | %s |\n", kv[0], kv[1])
	}
	for _, s := range resultSections {
		fmt.Fprintf(bw, "\n## %s\n\n%s\n\n", s.title, s.about)
		b, err := os.ReadFile(filepath.Join(dir, s.file))
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(bw, "Not run (no %s).\n", s.file)
			continue
		} else if err != nil {
			return err
		}
		if s.goBench {
			goBenchTables(bw, string(b))
			continue
		}
		text := strings.TrimSpace(string(b))
		// imgbench's own headings sit one level below the section's.
		text = strings.ReplaceAll("\n"+text, "\n## ", "\n### ")
		fmt.Fprintln(bw, strings.TrimSpace(text))
	}
	return bw.Flush()
}

// goBenchTables renders `go test -bench` output as one table per package:
// each benchmark with its figures (time per operation, then every other
// value and unit it reported). Failures are kept as they were printed.
func goBenchTables(w io.Writer, out string) {
	pkg, open, blocks := "", false, 0
	// block starts a table or a failure, a blank line after the one before.
	block := func() {
		if blocks > 0 {
			fmt.Fprintln(w)
		}
		blocks++
	}
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg, open = strings.TrimPrefix(line, "pkg: "), false
		case strings.HasPrefix(line, "Benchmark"):
			f := strings.Fields(line)
			if len(f) < 4 || len(f)%2 != 0 {
				continue
			}
			if !open {
				block()
				if pkg != "" {
					fmt.Fprintf(w, "`%s`\n\n", pkg)
				}
				fmt.Fprintf(w, "| benchmark | runs | figures |\n|---|---|---|\n")
				open = true
			}
			var figs []string
			for i := 2; i+1 < len(f); i += 2 {
				figs = append(figs, figure(f[i], f[i+1]))
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", f[0], f[1], strings.Join(figs, " · "))
		case strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "panic:"):
			if open || blocks == 0 {
				block()
				open = false
			}
			fmt.Fprintf(w, "    %s\n", line)
		case strings.HasPrefix(line, "ok "), line == "PASS":
			open = false
		}
	}
}

// figure is one benchmark figure; a time per operation is written in the
// unit that suits it.
func figure(value, unit string) string {
	v, err := strconv.ParseFloat(value, 64)
	if err != nil || unit != "ns/op" {
		return value + " " + unit
	}
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + " s/op"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " ms/op"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 2, 64) + " µs/op"
	}
	return value + " ns/op"
}

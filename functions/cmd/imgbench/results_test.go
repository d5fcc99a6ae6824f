package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The results file gathers what make bench left: the header names the
// run, imgbench's tables come as written (their headings a level down),
// Go benchmark output becomes a table per package, and a section whose
// output is missing says it was not run.
func TestWriteResults(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("compress.md", "\nOne core each.\n\n| class | files |\n|---|---|\n| **all** | 3 |\n")
	write("resize.md", "\n## Resize\n\n| task | files |\n|---|---|\n| fit in 1600×1600 | 3 |\n")
	write("go-bench.txt", `goos: linux
goarch: amd64
pkg: github.com/imgpipe/imgpipe/shared/jpegdct
cpu: Some CPU
BenchmarkDecode/coffee.jpg-2   	     716	   1654321 ns/op	  38.99 MB/s	  123456 B/op	      12 allocs/op
BenchmarkRecompress/coffee.jpg-2	     300	   4000000 ns/op
PASS
ok  	github.com/imgpipe/imgpipe/shared/jpegdct	12.3s
pkg: github.com/imgpipe/imgpipe/shared/imagework
BenchmarkWorstAcceptedSizing/jpeg/none-2 	       1	3123456789 ns/op	   155.0 MB-budget	  432.0 MB-peak-RSS
--- FAIL: BenchmarkCorpusPNG
FAIL	github.com/imgpipe/imgpipe/shared/imagework	1.2s
`)
	var b strings.Builder
	r := runInfo{Date: "2030-01-02", Machine: "linux/amd64, 2 CPUs", Go: "go1.26", Sharp: "0.35.5", Commit: "abc"}
	if err := writeResults(&b, dir, r); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"# imgpipe benchmark results\n",
		"| date | 2030-01-02 |\n", "| machine | linux/amd64, 2 CPUs |\n", "| Go | go1.26 |\n", "| sharp | 0.35.5 |\n", "| code | abc |\n",
		"## Compression: imgpipe, the standard-library path and sharp\n",
		"One core each.\n\n| class | files |\n|---|---|\n| **all** | 3 |\n",
		"## Resizing: imgpipe and sharp\n", "\n### Resize\n", "| fit in 1600×1600 | 3 |\n",
		"`github.com/imgpipe/imgpipe/shared/jpegdct`\n\n| benchmark | runs | figures |\n|---|---|---|\n",
		"| BenchmarkDecode/coffee.jpg-2 | 716 | 1.65 ms/op · 38.99 MB/s · 123456 B/op · 12 allocs/op |\n",
		"| BenchmarkRecompress/coffee.jpg-2 | 300 | 4.00 ms/op |\n",
		"| BenchmarkWorstAcceptedSizing/jpeg/none-2 | 1 | 3.12 s/op · 155.0 MB-budget · 432.0 MB-peak-RSS |\n",
		"    --- FAIL: BenchmarkCorpusPNG\n",
		"## The pipeline on the local emulators (`make bench-pipeline`)\n", "Not run (no pipeline.txt).\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the results file lacks %q; it is:\n%s", want, got)
		}
	}
	if strings.Contains(got, "goos:") || strings.Contains(got, "\n## Resize\n") {
		t.Errorf("the results file carries go test's preamble or a heading at the wrong level:\n%s", got)
	}
}

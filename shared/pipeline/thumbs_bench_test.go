package pipeline_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/imgpipe/imgpipe/shared/imagework"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// BenchmarkThumbnail compares the ways of making an image's status-page
// thumbnail, per image of testdata/images and of two larger photographs
// made from them (a 12 MP JPEG, a 3 MP PNG):
//
//   - compress: what compressing the image costs without a thumbnail;
//   - fromDecode: the thumbnail as one more box of imagework.Sized (the
//     decode that compresses the image makes it too, when there is one
//     for every output);
//   - fromOutput: compress, then the thumbnail from the output JPEG (a
//     scaled decode of our own JPEG);
//   - chosen: imagework.SizedWithThumbnail, which picks between the two;
//   - pageView: what one page view cost when the page made the input's and
//     the output's thumbnails itself (fetch not counted).
func BenchmarkThumbnail(b *testing.B) {
	ins := map[string][]byte{}
	for _, name := range []string{"coffee.jpg", "coffee-exif-rotated.jpg", "rocket-progressive.jpg", "chelsea.png", "astronaut.webp"} {
		in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			b.Fatal(err)
		}
		ins[name] = in
	}
	ins["coffee-12mp.jpg"] = enlarged(b, ins["coffee.jpg"], 4240, 2828, "jpeg")
	ins["chelsea-3mp.png"] = enlarged(b, ins["chelsea.png"], 2130, 1420, "png")
	lim := imagework.DefaultLimits
	thumb := imagework.Box{Width: pipeline.ThumbSide, Height: pipeline.ThumbSide}
	for _, name := range []string{"coffee.jpg", "coffee-exif-rotated.jpg", "rocket-progressive.jpg", "chelsea.png", "astronaut.webp", "coffee-12mp.jpg", "chelsea-3mp.png"} {
		in := ins[name]
		for _, main := range []imagework.Box{{}, {Width: 300}} {
			label := name + "/unsized"
			if main.Width > 0 {
				label = name + "/fit300"
			}
			b.Run(label+"/compress", func(b *testing.B) {
				defer cpuPerOp(b)()
				for b.Loop() {
					if _, _, err := imagework.Sized(in, 50, lim, main, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(label+"/fromDecode", func(b *testing.B) {
				defer cpuPerOp(b)()
				for b.Loop() {
					if _, _, err := imagework.Sized(in, 50, lim, main, []imagework.Box{thumb}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(label+"/fromOutput", func(b *testing.B) {
				defer cpuPerOp(b)()
				for b.Loop() {
					out, _, err := imagework.Sized(in, 50, lim, main, nil)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := imagework.Resize(out.JPEG, 50, lim, []imagework.Box{thumb}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(label+"/chosen", func(b *testing.B) {
				defer cpuPerOp(b)()
				for b.Loop() {
					if _, _, _, err := imagework.SizedWithThumbnail(in, 50, lim, main, nil, pipeline.ThumbSide); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(name+"/pageView", func(b *testing.B) {
			out, err := imagework.Compress(in, 50, lim)
			if err != nil {
				b.Fatal(err)
			}
			defer cpuPerOp(b)()
			for b.Loop() {
				for _, img := range [][]byte{in, out.JPEG} {
					if _, err := imagework.Resize(img, 75, lim, []imagework.Box{thumb}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// cpuPerOp reports the process's CPU time (user and system) per
// iteration as cpu-ns/op, when the returned function runs: on a shared
// machine, wall time per op counts the other processes' turns too.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// enlarged is in resized to w×h and encoded as format (JPEG at quality
// 90): a larger photograph for the benchmarks.
func enlarged(b *testing.B, in []byte, w, h int, format string) []byte {
	b.Helper()
	img, _, err := image.Decode(bytes.NewReader(in))
	if err != nil {
		b.Fatal(err)
	}
	big := imaging.Resize(img, w, h, imaging.CatmullRom)
	var buf bytes.Buffer
	if format == "png" {
		err = png.Encode(&buf, big)
	} else {
		err = jpeg.Encode(&buf, big, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

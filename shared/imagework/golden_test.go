package imagework

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/compress.sha256 from this code's output")

// goldenInputs are the fixtures plus inputs made here: JPEGs of a
// synthetic picture at several qualities and subsamplings, grayscale, and
// a PNG with transparency.
func goldenInputs(t *testing.T) map[string][]byte {
	t.Helper()
	in := map[string][]byte{}
	for _, name := range []string{"coffee.jpg", "rocket-progressive.jpg", "coffee-exif-rotated.jpg", "chelsea.png", "chelsea-animated.gif", "astronaut.webp"} {
		in[name] = fixture(t, name)
	}
	rgba := image.NewNRGBA(image.Rect(0, 0, 173, 97))
	gray := image.NewGray(rgba.Rect)
	for y := 0; y < 97; y++ {
		for x := 0; x < 173; x++ {
			c := color.NRGBA{uint8(x * 255 / 172), uint8(y * 255 / 96), uint8((x*y + 7*x) % 256), uint8(255 - (x+y)%200)}
			rgba.SetNRGBA(x, y, c)
			gray.SetGray(x, y, color.Gray{uint8((x ^ y) * 3)})
		}
	}
	for _, q := range []int{40, 75, 95} {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, rgba, &jpeg.Options{Quality: q}); err != nil {
			t.Fatal(err)
		}
		in[fmt.Sprintf("synthetic-q%d.jpg", q)] = b.Bytes()
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, gray, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	in["synthetic-gray.jpg"] = b.Bytes()
	var p bytes.Buffer
	if err := png.Encode(&p, rgba); err != nil {
		t.Fatal(err)
	}
	in["synthetic-alpha.png"] = p.Bytes()
	return in
}

// TestCompressBytesUnchanged holds Compress, the path of every request
// that does not resize, to the exact bytes recorded in
// testdata/compress.sha256: a change to them is a change to every
// user's output and must be made on purpose (-update-golden).
func TestCompressBytesUnchanged(t *testing.T) {
	const file = "testdata/compress.sha256"
	in := goldenInputs(t)
	var lines []string
	for name, data := range in {
		for _, q := range []int{30, 50, 85} {
			res, err := Compress(data, q, DefaultLimits)
			if err != nil {
				t.Fatalf("%s q%d: %v", name, q, err)
			}
			sum := sha256.Sum256(res.JPEG)
			lines = append(lines, fmt.Sprintf("%s  %s q%d %d", hex.EncodeToString(sum[:]), name, q, len(res.JPEG)))
		}
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			want = append(want, l)
		}
	}
	if len(want) != len(lines) {
		t.Fatalf("%d outputs, %s lists %d", len(lines), file, len(want))
	}
	for i := range want {
		if want[i] != lines[i] {
			t.Errorf("output changed:\n got %s\nwant %s", lines[i], want[i])
		}
	}
}

// Package jpegdct recompresses JPEG photographs without going to pixels:
// it entropy-decodes the quantised DCT coefficients (baseline, extended and
// progressive Huffman, restart markers), requantises them to the target
// tables, brings 4:4:4 and 4:2:2 chroma to 4:2:0 in the DCT domain, and
// entropy-encodes it with Huffman tables built for the image (two passes):
// progressive when that is smaller, baseline otherwise (progressive.go). What it cannot do exactly — CMYK/YCCK, RGB-transformed
// Adobe files, arithmetic coding, 12-bit, lossless, unusual sampling,
// non-sRGB ICC profiles, EXIF orientations that need a rotation — it refuses
// with an *Unsupported error naming why, and the caller takes the pixel path.
//
// Metadata is dropped: the output carries only a JFIF header.
package jpegdct

import (
	"errors"
	"fmt"
)

// Unsupported says the input is valid but outside what this package
// recompresses; Reason is a short machine-readable word.
type Unsupported struct{ Reason string }

func (e *Unsupported) Error() string { return "jpegdct: unsupported input: " + e.Reason }

// ErrCorrupt wraps every malformed-input error.
var ErrCorrupt = errors.New("jpegdct: corrupt JPEG")

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

func unsupported(reason string) error { return &Unsupported{Reason: reason} }

// IsUnsupported reports whether err asks for the pixel path.
func IsUnsupported(err error) bool {
	var u *Unsupported
	return errors.As(err, &u)
}

// zigzag[k] is the natural (row-major) index of the k-th coefficient in
// zigzag order.
var zigzag = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// component is one colour channel's coefficients.
type component struct {
	id     byte
	h, v   int  // sampling factors
	tq     int  // quantisation table selector
	coded  bool // in some scan
	bw, bh int  // blocks covering the component (unpadded)
	stride int  // blocks per row in coef, padded to whole MCUs
	rows   int  // block rows of the component, padded to whole MCUs
	// coef holds 64 coefficients per block, in zigzag order, quantised,
	// for the block rows base .. base+held-1 (all rows, or a window of
	// them when a baseline image is recompressed as it is decoded).
	coef       []int16
	base, held int
	// end holds per block 1 + the zigzag index of its last nonzero
	// coefficient (0: all zero), so the encoder skips zero tails.
	end []uint8
	// nz holds per block a mask of its nonzero AC coefficients (bit k:
	// zigzag index k), for progressive images' refinement scans.
	nz []uint64
}

// alloc gives c storage for held block rows from row 0.
func (c *component) alloc(held int) {
	c.base, c.held = 0, held
	c.coef = make([]int16, c.stride*held*64)
	c.end = make([]uint8, c.stride*held)
}

// moveWindow clears the held rows and makes them rows base...
func (c *component) moveWindow(base int) {
	c.base = base
	clear(c.coef)
	clear(c.end)
}

func (c *component) index(bx, by int) int { return (by-c.base)*c.stride + bx }

func (c *component) block(bx, by int) []int16 {
	i := c.index(bx, by) * 64
	return c.coef[i : i+64 : i+64]
}

// Image is a decoded JPEG's quantised coefficients.
type Image struct {
	Width, Height int
	Progressive   bool
	comps         []component
	qt            [4][64]uint16 // zigzag order
	qtSet         [4]bool
	hmax, vmax    int
	mcusX, mcusY  int
	orientation   int // EXIF, 0 when absent
}

// Sampling names the chroma subsampling: "4:2:0", "4:2:2", "4:4:4",
// "4:4:0" or "gray".
func (m *Image) Sampling() string {
	if len(m.comps) == 1 {
		return "gray"
	}
	switch [2]int{m.comps[0].h, m.comps[0].v} {
	case [2]int{2, 2}:
		return "4:2:0"
	case [2]int{2, 1}:
		return "4:2:2"
	case [2]int{1, 2}:
		return "4:4:0"
	}
	return "4:4:4"
}

// Orientation is the EXIF orientation tag (1..8), 0 when there is none.
func (m *Image) Orientation() int { return m.orientation }

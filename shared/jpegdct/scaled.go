package jpegdct

import (
	"image"
	"math"
)

// Decoding at 1/2, 1/4 or 1/8 of the size straight from the coefficients,
// as libjpeg's scale_denom does (its reduced inverse DCTs): an 8×8 block
// becomes n×n samples (n = 8/denom) from its n×n lowest frequencies,
// weighted so that each sample is the box average of the full-size samples
// it covers, as far as those frequencies go. The frequencies from n up are
// dropped, not folded in: what a box average keeps of them is small and
// aliased, and a proper filter does the rest of any resizing.

// idctMatrix[n][x][k] is frequency k's weight in sample x of n (n = 1, 2,
// 4, 8): the mean, over the d = 8/n full-size samples that x covers, of the
// 8-point inverse DCT's basis (1/2)·C(k)·cos((2i+1)kπ/16), C(0) = 1/√2,
// C(k) = 1 otherwise. That mean is (1/2)·C(k)·cos((2x+1)kπ/2n)·a(k), with
// a(k) = sin(kdπ/16) / (d·sin(kπ/16)) (a(0) = 1) the box filter's response:
// for the frequencies kept, the result is the box average of the full-size
// samples exactly.
var idctMatrix = func() (m [9][8][8]float64) {
	for _, n := range []int{1, 2, 4, 8} {
		d := 8 / n
		for x := 0; x < n; x++ {
			for k := 0; k < n; k++ {
				c, a := 1.0, 1.0
				if k == 0 {
					c = 1 / math.Sqrt2
				} else {
					a = math.Sin(float64(k*d)*math.Pi/16) / (float64(d) * math.Sin(float64(k)*math.Pi/16))
				}
				m[n][x][k] = 0.5 * c * a * math.Cos(float64((2*x+1)*k)*math.Pi/float64(2*n))
			}
		}
	}
	return m
}()

// scaleBlock writes block blk's n×n samples (n = 1, 2, 4 or 8) to dst at
// (x0, y0), clipped to dst's size; q is the block's quantisation table
// (zigzag order, as blk).
func scaleBlock(blk []int16, q *[64]uint16, n int, dst []byte, stride, w, h, x0, y0 int) {
	var f [8][8]float64 // dequantised, natural order, the n×n lowest
	for k := 0; k < 64; k++ {
		z := zigzag[k]
		if r, c := z>>3, z&7; r < n && c < n && blk[k] != 0 {
			f[r][c] = float64(blk[k]) * float64(q[k])
		}
	}
	if n == 1 {
		// (1/2·1/√2)² = 1/8 of the DC in each dimension pair
		put(dst, stride, w, h, x0, y0, f[0][0]/8)
		return
	}
	m := &idctMatrix[n]
	var t [8][8]float64 // rows transformed: t[v][x] = Σ_u f[v][u]·m[x][u]
	for v := 0; v < n; v++ {
		for x := 0; x < n; x++ {
			s := 0.0
			for u := 0; u < n; u++ {
				s += f[v][u] * m[x][u]
			}
			t[v][x] = s
		}
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			s := 0.0
			for v := 0; v < n; v++ {
				s += t[v][x] * m[y][v]
			}
			put(dst, stride, w, h, x0+x, y0+y, s)
		}
	}
}

// put stores level-shifted sample s at (x, y) when it is inside w×h.
func put(dst []byte, stride, w, h, x, y int, s float64) {
	if x >= w || y >= h {
		return
	}
	v := math.Round(s + 128)
	dst[y*stride+x] = uint8(min(max(v, 0), 255))
}

// DecodeScaled decodes a JPEG at 1/denom of its size (denom 1, 2, 4 or 8;
// each side rounded up, as libjpeg's scaled output is) without decoding it
// at full size first: a *image.YCbCr with the input's chroma subsampling,
// or a *image.Gray, and the decoded header (its Orientation is not
// applied). A baseline image with one interleaved scan (the common case)
// is scaled as it is decoded, an MCU row at a time, so its coefficients
// are never held whole; others are decoded whole first. Inputs outside
// what Decode reads give its errors.
func DecodeScaled(data []byte, denom int, lim Limits) (image.Image, *Image, error) {
	n := map[int]int{1: 8, 2: 4, 4: 2, 8: 1}[denom]
	if n == 0 {
		return nil, nil, unsupported("scale")
	}
	var out image.Image
	var planes [3]scaledPlane
	rows := func(m *Image, my int) {
		if out == nil {
			out, planes = newScaled(m, denom)
		}
		for ci := range m.comps {
			c := &m.comps[ci]
			for v := 0; v < c.v; v++ {
				if by := my*c.v + v; by < c.bh {
					planes[ci].row(c, &m.qt[c.tq], n, by)
				}
			}
		}
	}
	d := &decoder{data: data, limits: lim, stream: &streamer{rows: rows}}
	if err := d.run(); err != nil {
		return nil, nil, err
	}
	m := &d.img
	if !d.stream.on { // decoded whole
		out, planes = newScaled(m, denom)
		for ci := range m.comps {
			c := &m.comps[ci]
			for by := 0; by < c.bh; by++ {
				planes[ci].row(c, &m.qt[c.tq], n, by)
			}
		}
	}
	return out, m, nil
}

// scaledPlane is where one component's scaled samples go.
type scaledPlane struct {
	pix          []byte
	stride, w, h int
}

// row writes block row by of c.
func (p *scaledPlane) row(c *component, q *[64]uint16, n, by int) {
	for bx := 0; bx < c.bw; bx++ {
		scaleBlock(c.block(bx, by), q, n, p.pix, p.stride, p.w, p.h, bx*n, by*n)
	}
}

// newScaled makes the output image for m at 1/denom and its planes.
func newScaled(m *Image, denom int) (image.Image, [3]scaledPlane) {
	w, h := (m.Width+denom-1)/denom, (m.Height+denom-1)/denom
	if len(m.comps) == 1 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		return g, [3]scaledPlane{{g.Pix, g.Stride, w, h}}
	}
	ratio := map[[2]int]image.YCbCrSubsampleRatio{
		{1, 1}: image.YCbCrSubsampleRatio444, {2, 1}: image.YCbCrSubsampleRatio422,
		{1, 2}: image.YCbCrSubsampleRatio440, {2, 2}: image.YCbCrSubsampleRatio420,
	}[[2]int{m.hmax, m.vmax}]
	img := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
	cw, ch := img.CStride, len(img.Cb)/img.CStride
	return img, [3]scaledPlane{{img.Y, img.YStride, w, h}, {img.Cb, img.CStride, cw, ch}, {img.Cr, img.CStride, cw, ch}}
}

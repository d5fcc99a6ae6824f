package jpegdct

import (
	"image"
	"math"
)

// Decoding at n/8 of the size (n = 1 … 8) straight from the coefficients,
// as libjpeg's scale_num/scale_denom does (its reduced inverse DCTs): an
// 8×8 block becomes n×n samples from its n×n lowest frequencies, each
// frequency weighted by a box filter's response, so that at 1/2, 1/4 and
// 1/8 a sample is the box average of the full-size samples it covers, as
// far as the kept frequencies go (at 3/8, 5/8, 6/8 and 7/8 the box is
// 8/n samples wide, a fraction). The frequencies from n up are dropped,
// not folded in: what a box average keeps of them is small and aliased,
// and a proper filter does the rest of any resizing.

// idctMatrix[n][k][x] is frequency k's weight in sample x of n: the 8-point
// inverse DCT's basis (1/2)·C(k)·cos((2x+1)kπ/2n) sampled at the centre of
// sample x (C(0) = 1/√2, C(k) = 1 otherwise), times a(k) = sin(kdπ/16) /
// (d·sin(kπ/16)) (a(0) = 1), the response of a box d = 8/n samples wide.
// For whole d that is exactly the mean of the basis over the d samples.
var idctMatrix = func() (m [9][8][8]float32) {
	for n := 1; n <= 8; n++ {
		d := 8 / float64(n)
		for x := 0; x < n; x++ {
			for k := 0; k < n; k++ {
				c, a := 1.0, 1.0
				if k == 0 {
					c = 1 / math.Sqrt2
				} else {
					a = math.Sin(float64(k)*d*math.Pi/16) / (d * math.Sin(float64(k)*math.Pi/16))
				}
				m[n][k][x] = float32(0.5 * c * a * math.Cos(float64((2*x+1)*k)*math.Pi/float64(2*n)))
			}
		}
	}
	return m
}()

// zigzagWithin[n] is one past the last zigzag index inside the n×n lowest
// frequencies: no coefficient from there on is used at n/8.
var zigzagWithin = func() (z [9]int) {
	for n := 1; n <= 8; n++ {
		for k, nat := range zigzag {
			if nat>>3 < n && nat&7 < n {
				z[n] = k + 1
			}
		}
	}
	return z
}()

// scaleBlock writes block blk's n×n samples to dst at (x0, y0), clipped
// to w×h; q is the block's quantisation table and end one past its last
// nonzero coefficient (both zigzag order, as blk). Only the nonzero
// coefficients and the rows they touch are transformed.
func scaleBlock(blk []int16, end int, q *[64]uint16, n int, dst []byte, stride, w, h, x0, y0 int) {
	m := &idctMatrix[n]
	var out [8][8]float32
	end = min(end, zigzagWithin[n])
	if end <= 1 {
		v := float32(blk[0]) * float32(q[0]) * m[0][0] * m[0][0]
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				out[y][x] = v
			}
		}
	} else {
		var t [8][8]float32 // t[v][x] = Σ_u F[v][u]·m[u][x]
		var rows uint8
		for k := 0; k < end; k++ {
			if blk[k] == 0 {
				continue
			}
			z := zigzag[k]
			v, u := z>>3, z&7
			if v >= n || u >= n {
				continue
			}
			f := float32(blk[k]) * float32(q[k])
			row, mu := &t[v], &m[u]
			for x := 0; x < n; x++ {
				row[x] += f * mu[x]
			}
			rows |= 1 << v
		}
		for v := 0; v < n; v++ {
			if rows&(1<<v) == 0 {
				continue
			}
			tv, mv := &t[v], &m[v]
			for y := 0; y < n; y++ {
				wy, oy := mv[y], &out[y]
				for x := 0; x < n; x++ {
					oy[x] += tv[x] * wy
				}
			}
		}
	}
	nw, nh := min(n, w-x0), min(n, h-y0)
	for y := 0; y < nh; y++ {
		row := dst[(y0+y)*stride+x0:]
		row = row[:nw]
		for x := range row {
			v := int32(out[y][x] + 128.5)
			row[x] = uint8(min(max(v, 0), 255))
		}
	}
}

// DecodeAt decodes a JPEG at n/8 of its size (n = 1 … 8; each side
// rounded up, as libjpeg's scaled output is) without decoding it at full
// size first: a *image.YCbCr with the input's chroma subsampling, or a
// *image.Gray, and the decoded header (its Orientation is not applied). It
// is DecodeFit with every component at the same scale, so it streams as
// DecodeFit does. Inputs outside what Decode reads give its errors.
func DecodeAt(data []byte, n int, lim Limits) (image.Image, *Image, error) {
	if n < 1 || n > 8 {
		return nil, nil, unsupported("scale")
	}
	ft := &fitter{n: n, skipAC: true}
	m, err := ft.decode(data, lim)
	if err != nil {
		return nil, nil, err
	}
	return ft.img, m, nil
}

// Plane is one component's samples: Width×Height from Pix, Stride bytes a
// row.
type Plane struct {
	Pix                   []byte
	Stride, Width, Height int
}

// DecodeFit decodes a JPEG with each component at the smallest n/8 of its
// own size (n = 1 … 8) that covers the size asked for it: luma for the
// first component, chroma for the others. The chroma of a 4:4:4 image
// bound for a 4:2:0 output is so decoded at half the luma's scale. It
// returns the planes, in component order, and the header (Orientation not
// applied); it streams as DecodeAt does, and reads a progressive image's
// AC scans only when some component needs more than its DC.
func DecodeFit(data []byte, luma, chroma image.Point, lim Limits) ([]Plane, *Image, error) {
	ft := &fitter{luma: luma, chroma: chroma, skipAC: true}
	m, err := ft.decode(data, lim)
	if err != nil {
		return nil, nil, err
	}
	return ft.result(), m, nil
}

// RecompressFit is Recompress that also returns DecodeFit's planes, made
// from the same decode of the coefficients: a JPEG kept at its size with
// smaller sizes beside it is decoded once.
func RecompressFit(data []byte, o Options, luma, chroma image.Point) ([]byte, []Plane, error) {
	ft := &fitter{luma: luma, chroma: chroma}
	out, err := recompress(data, o, ft)
	if err != nil {
		return nil, nil, err
	}
	return out, ft.result(), nil
}

// fitter makes DecodeFit's planes from a decoder's coefficients: row by
// row while a baseline scan streams, or whole.
type fitter struct {
	luma, chroma image.Point
	// n, when set, scales every component to n/8 instead, into img (as
	// DecodeAt answers).
	n   int
	img image.Image
	// skipAC lets the decoder skip a progressive image's AC scans when
	// every component needs only its DC.
	skipAC bool
	planes []scaledPlane
	ns     []int
}

// decode decodes data, scaling it with ft, and returns the header.
func (ft *fitter) decode(data []byte, lim Limits) (*Image, error) {
	d := &decoder{data: data, limits: lim, stream: &streamer{rows: ft.row}, prepare: ft.prepare}
	if err := d.run(); err != nil {
		return nil, err
	}
	if !d.stream.on { // decoded whole
		ft.whole(&d.img)
	}
	return &d.img, nil
}

// prepare sizes the planes once the frame is known.
func (ft *fitter) prepare(d *decoder) {
	m := &d.img
	if ft.n > 0 {
		var planes [3]scaledPlane
		ft.img, planes = newScaled(m, ft.n)
		ft.planes = planes[:len(m.comps)]
		for range m.comps {
			ft.ns = append(ft.ns, ft.n)
		}
		d.dcOnly = ft.skipAC && ft.n == 1
		return
	}
	dcOnly := true
	for ci := range m.comps {
		c := &m.comps[ci]
		cw, ch := (m.Width*c.h+m.hmax-1)/m.hmax, (m.Height*c.v+m.vmax-1)/m.vmax
		want := ft.chroma
		if ci == 0 {
			want = ft.luma
		}
		n := 8
		for s := 1; s < 8; s++ {
			if (cw*s+7)/8 >= want.X && (ch*s+7)/8 >= want.Y {
				n = s
				break
			}
		}
		w, h := (cw*n+7)/8, (ch*n+7)/8
		ft.planes = append(ft.planes, scaledPlane{make([]byte, w*h), w, w, h})
		ft.ns = append(ft.ns, n)
		dcOnly = dcOnly && n == 1
	}
	d.dcOnly = ft.skipAC && dcOnly
}

// row scales MCU row my of every component.
func (ft *fitter) row(m *Image, my int) {
	for ci := range m.comps {
		c := &m.comps[ci]
		for v := 0; v < c.v; v++ {
			if by := my*c.v + v; by < c.bh {
				ft.planes[ci].row(c, &m.qt[c.tq], ft.ns[ci], by)
			}
		}
	}
}

// whole scales every block of an image decoded whole.
func (ft *fitter) whole(m *Image) {
	for ci := range m.comps {
		c := &m.comps[ci]
		for by := 0; by < c.bh; by++ {
			ft.planes[ci].row(c, &m.qt[c.tq], ft.ns[ci], by)
		}
	}
}

func (ft *fitter) result() []Plane {
	out := make([]Plane, len(ft.planes))
	for i, p := range ft.planes {
		out[i] = Plane{p.pix, p.stride, p.w, p.h}
	}
	return out
}

// scaledPlane is where one component's scaled samples go.
type scaledPlane struct {
	pix          []byte
	stride, w, h int
}

// row writes block row by of c, n×n samples a block.
func (p *scaledPlane) row(c *component, q *[64]uint16, n, by int) {
	if by*n >= p.h {
		return // padding rows past the image
	}
	for bx := 0; bx < c.bw && bx*n < p.w; bx++ {
		i := c.index(bx, by)
		scaleBlock(c.coef[i*64:i*64+64:i*64+64], int(c.end[i]), q, n, p.pix, p.stride, p.w, p.h, bx*n, by*n)
	}
}

// newScaled makes the output image for m at n/8 and its planes.
func newScaled(m *Image, n int) (image.Image, [3]scaledPlane) {
	w, h := (m.Width*n+7)/8, (m.Height*n+7)/8
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

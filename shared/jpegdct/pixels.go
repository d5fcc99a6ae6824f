package jpegdct

import (
	"image"
	"image/draw"
	"math"
)

// EncodeRGBA encodes an opaque RGBA image as a baseline 4:2:0 JPEG at the
// IJG quality with Huffman tables built for the image — the pixel path's
// encoder (image/jpeg's uses fixed tables). It works an MCU row (16 pixel
// rows) at a time: colour conversion, 2×2 chroma averaging, a float DCT.
// Alpha is ignored: flatten first.
func EncodeRGBA(img *image.RGBA, quality int) []byte {
	b := img.Bounds()
	return encodePixels(img.Pix[(b.Min.Y-img.Rect.Min.Y)*img.Stride+(b.Min.X-img.Rect.Min.X)*4:], img.Stride, b.Dx(), b.Dy(), false, quality)
}

// EncodeNRGBA is EncodeRGBA for non-premultiplied RGBA, composited onto
// white as it is read (no flattened copy of the image is made).
func EncodeNRGBA(img *image.NRGBA, quality int) []byte {
	b := img.Bounds()
	return encodePixels(img.Pix[(b.Min.Y-img.Rect.Min.Y)*img.Stride+(b.Min.X-img.Rect.Min.X)*4:], img.Stride, b.Dx(), b.Dy(), true, quality)
}

// encodePixels encodes w×h 4-byte pixels from pix (stride bytes a row);
// with alpha, each is non-premultiplied and put on white.
func encodePixels(pix []byte, stride, w, h int, alpha bool, quality int) []byte {
	f := &frame{width: w, height: h, mcusX: (w + 15) / 16, mcusY: (h + 15) / 16}
	f.qt[0], f.qt[1] = QualityTables(quality)
	mk := func(id byte, hv int) *component {
		c := &component{id: id, h: hv, v: hv, stride: f.mcusX * hv, rows: f.mcusY * hv}
		c.bw, c.bh = c.stride, c.rows
		c.alloc(hv)
		return c
	}
	y, cb, cr := mk(1, 2), mk(2, 1), mk(3, 1)
	f.comps = []outComp{{component: y, h: 2, v: 2}, {component: cb, h: 1, v: 1}, {component: cr, h: 1, v: 1}}
	sw := newSymbolWriter(f)
	lq, cq := newDivisors(&f.qt[0]), newDivisors(&f.qt[1])
	var lum, cbs, crs [16][16]float64
	for my := 0; my < f.mcusY; my++ {
		y.moveWindow(2 * my)
		cb.moveWindow(my)
		cr.moveWindow(my)
		for mx := 0; mx < f.mcusX; mx++ {
			// 16×16 pixels, edges replicated, to Y, Cb, Cr (JFIF).
			for j := 0; j < 16; j++ {
				sy := min(my*16+j, h-1)
				row := pix[sy*stride:]
				for i := 0; i < 16; i++ {
					p := row[min(mx*16+i, w-1)*4:]
					r, g, bl := float64(p[0]), float64(p[1]), float64(p[2])
					if alpha && p[3] != 255 {
						// on white: 255 + (c − 255)·a/255
						a := float64(p[3]) / 255
						r, g, bl = 255+(r-255)*a, 255+(g-255)*a, 255+(bl-255)*a
					}
					lum[j][i] = 0.299*r + 0.587*g + 0.114*bl - 128
					cbs[j][i] = -0.168736*r - 0.331264*g + 0.5*bl
					crs[j][i] = 0.5*r - 0.418688*g - 0.081312*bl
				}
			}
			for v := 0; v < 2; v++ {
				for u := 0; u < 2; u++ {
					var blk [8][8]float64
					for j := 0; j < 8; j++ {
						copy(blk[j][:], lum[8*v+j][8*u:8*u+8])
					}
					quantise(&blk, lq, y, 2*mx+u, 2*my+v)
				}
			}
			for _, ch := range []struct {
				src *[16][16]float64
				c   *component
			}{{&cbs, cb}, {&crs, cr}} {
				var blk [8][8]float64
				for j := 0; j < 8; j++ {
					for i := 0; i < 8; i++ {
						s := ch.src
						blk[j][i] = (s[2*j][2*i] + s[2*j][2*i+1] + s[2*j+1][2*i] + s[2*j+1][2*i+1]) / 4
					}
				}
				quantise(&blk, cq, ch.c, mx, my)
			}
		}
		sw.row(my)
	}
	return f.write(make([]byte, 0, w*h/8), sw)
}

// EncodeImage encodes any image through EncodeRGBA, converting it first
// unless it is an *image.RGBA already.
func EncodeImage(img image.Image, quality int) []byte {
	rgba, ok := img.(*image.RGBA)
	if !ok {
		rgba = image.NewRGBA(img.Bounds())
		draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
	}
	return EncodeRGBA(rgba, quality)
}

// dctCos[u][x] is JPEG's 8-point DCT-II basis (orthonormal).
var dctCos = func() (d [8][8]float64) {
	for u := 0; u < 8; u++ {
		cu := 0.5
		if u == 0 {
			cu = 0.5 / math.Sqrt2
		}
		for x := 0; x < 8; x++ {
			d[u][x] = cu * math.Cos(float64((2*x+1)*u)*math.Pi/16)
		}
	}
	return d
}()

// divisors are a quantisation table folded with the scale factors that
// the AAN DCT leaves out: coefficient k = raw[k] · div[k].
type divisors [64]float64

// aanScale[u] is cos(uπ/16)·√2 (1 for u = 0): the AAN DCT's output u is
// the true one times aanScale[u] times 8 over both dimensions.
var aanScale = func() (s [8]float64) {
	s[0] = 1
	for u := 1; u < 8; u++ {
		s[u] = math.Cos(float64(u)*math.Pi/16) * math.Sqrt2
	}
	return s
}()

func newDivisors(q *[64]uint16) *divisors {
	var d divisors
	for k := range d {
		n := zigzag[k]
		d[k] = 1 / (float64(q[k]) * aanScale[n>>3] * aanScale[n&7] * 8)
	}
	return &d
}

// quantise takes the DCT of a level-shifted block (the Arai–Agui–Nakajima
// factorisation, as libjpeg's float DCT: 5 multiplications per 8 points)
// and stores it, quantised (nearest, ties to even), as block (bx, by) of c.
func quantise(blk *[8][8]float64, div *divisors, c *component, bx, by int) {
	for r := range blk {
		aan8(&blk[r][0], &blk[r][1], &blk[r][2], &blk[r][3], &blk[r][4], &blk[r][5], &blk[r][6], &blk[r][7])
	}
	for u := 0; u < 8; u++ {
		aan8(&blk[0][u], &blk[1][u], &blk[2][u], &blk[3][u], &blk[4][u], &blk[5][u], &blk[6][u], &blk[7][u])
	}
	out, end := c.block(bx, by), &c.end[c.index(bx, by)]
	for k := 0; k < 64; k++ {
		n := zigzag[k]
		v := (blk[n>>3][n&7]*div[k] + roundMagic) - roundMagic
		if out[k] = int16(v); out[k] != 0 {
			*end = uint8(k + 1)
		}
	}
}

// aan8 is the unscaled 8-point AAN forward DCT, in place.
func aan8(d0, d1, d2, d3, d4, d5, d6, d7 *float64) {
	t0, t7 := *d0+*d7, *d0-*d7
	t1, t6 := *d1+*d6, *d1-*d6
	t2, t5 := *d2+*d5, *d2-*d5
	t3, t4 := *d3+*d4, *d3-*d4
	// even part
	t10, t13 := t0+t3, t0-t3
	t11, t12 := t1+t2, t1-t2
	*d0, *d4 = t10+t11, t10-t11
	z1 := (t12 + t13) * 0.707106781186547524
	*d2, *d6 = t13+z1, t13-z1
	// odd part
	t10, t11, t12 = t4+t5, t5+t6, t6+t7
	z5 := (t10 - t12) * 0.382683432365089772
	z2 := 0.541196100146196984*t10 + z5
	z4 := 1.306562964876376527*t12 + z5
	z3 := t11 * 0.707106781186547524
	z11, z13 := t7+z3, t7-z3
	*d5, *d3 = z13+z2, z13-z2
	*d1, *d7 = z11+z4, z11-z4
}

// EncodeYCbCr encodes img at the IJG quality straight from its planes,
// with no colour conversion: a 4:2:0 image as a 4:2:0 JPEG. Other
// subsamplings are converted to RGB first (EncodeImage).
func EncodeYCbCr(img *image.YCbCr, quality int) []byte {
	if img.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return EncodeImage(img, quality)
	}
	b := img.Rect
	w, h := b.Dx(), b.Dy()
	yo, co := img.YOffset(b.Min.X, b.Min.Y), img.COffset(b.Min.X, b.Min.Y)
	cw, ch := (b.Max.X+1)/2-b.Min.X/2, (b.Max.Y+1)/2-b.Min.Y/2
	return encodePlanes([]plane{
		{img.Y[yo:], img.YStride, w, h, 2},
		{img.Cb[co:], img.CStride, cw, ch, 1},
		{img.Cr[co:], img.CStride, cw, ch, 1},
	}, w, h, quality)
}

// EncodeGray encodes img as a one-component JPEG at the IJG quality.
func EncodeGray(img *image.Gray, quality int) []byte {
	b := img.Rect
	return encodePlanes([]plane{{img.Pix, img.Stride, b.Dx(), b.Dy(), 1}}, b.Dx(), b.Dy(), quality)
}

// plane is one component's samples for encodePlanes: w×h from pix
// (stride bytes a row), hv blocks per MCU each way.
type plane struct {
	pix          []byte
	stride, w, h int
	hv           int
}

// encodePlanes encodes a w×h image from its component planes (the first
// is luma), an MCU row at a time, edges repeated.
func encodePlanes(ps []plane, w, h, quality int) []byte {
	mcu := 8 * ps[0].hv
	f := &frame{width: w, height: h, mcusX: (w + mcu - 1) / mcu, mcusY: (h + mcu - 1) / mcu}
	f.qt[0], f.qt[1] = QualityTables(quality)
	comps := make([]*component, len(ps))
	for i, p := range ps {
		c := &component{id: byte(i + 1), h: p.hv, v: p.hv, stride: f.mcusX * p.hv, rows: f.mcusY * p.hv}
		c.bw, c.bh = c.stride, c.rows
		c.alloc(p.hv)
		comps[i] = c
		f.comps = append(f.comps, outComp{component: c, h: p.hv, v: p.hv})
	}
	sw := newSymbolWriter(f)
	divs := [2]*divisors{newDivisors(&f.qt[0]), newDivisors(&f.qt[1])}
	var blk [8][8]float64
	for my := 0; my < f.mcusY; my++ {
		for i, c := range comps {
			c.moveWindow(my * ps[i].hv)
		}
		for i, p := range ps {
			div := divs[min(i, 1)]
			for v := 0; v < p.hv; v++ {
				by := my*p.hv + v
				for bx := 0; bx < f.mcusX*p.hv; bx++ {
					x0 := bx * 8
					for j := 0; j < 8; j++ {
						row := p.pix[min(by*8+j, p.h-1)*p.stride:]
						if x0+8 <= p.w {
							r := row[x0 : x0+8]
							for i, s := range r {
								blk[j][i] = float64(s) - 128
							}
							continue
						}
						for i := 0; i < 8; i++ {
							blk[j][i] = float64(row[min(x0+i, p.w-1)]) - 128
						}
					}
					quantise(&blk, div, comps[i], bx, by)
				}
			}
		}
		sw.row(my)
	}
	return f.write(make([]byte, 0, w*h/8), sw)
}

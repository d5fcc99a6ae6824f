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
	w, h := b.Dx(), b.Dy()
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
	var lum, cbs, crs [16][16]float64
	for my := 0; my < f.mcusY; my++ {
		y.moveWindow(2 * my)
		cb.moveWindow(my)
		cr.moveWindow(my)
		for mx := 0; mx < f.mcusX; mx++ {
			// 16×16 pixels, edges replicated, to Y, Cb, Cr (JFIF).
			for j := 0; j < 16; j++ {
				sy := min(my*16+j, h-1)
				row := img.Pix[(b.Min.Y+sy-img.Rect.Min.Y)*img.Stride+(b.Min.X-img.Rect.Min.X)*4:]
				for i := 0; i < 16; i++ {
					p := row[min(mx*16+i, w-1)*4:]
					r, g, bl := float64(p[0]), float64(p[1]), float64(p[2])
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
					quantise(&blk, &f.qt[0], y, 2*mx+u, 2*my+v)
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
				quantise(&blk, &f.qt[1], ch.c, mx, my)
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

// quantise takes the DCT of a level-shifted block and stores it, quantised
// with q (rounded to nearest), as block (bx, by) of c.
func quantise(blk *[8][8]float64, q *[64]uint16, c *component, bx, by int) {
	var tmp [8][8]float64
	for r := 0; r < 8; r++ { // rows
		for u := 0; u < 8; u++ {
			s := 0.0
			for x := 0; x < 8; x++ {
				s += dctCos[u][x] * blk[r][x]
			}
			tmp[r][u] = s
		}
	}
	out, end := c.block(bx, by), &c.end[c.index(bx, by)]
	for k := 0; k < 64; k++ {
		n := zigzag[k]
		v, u := n>>3, n&7
		s := 0.0
		for y := 0; y < 8; y++ {
			s += dctCos[v][y] * tmp[y][u]
		}
		if out[k] = int16(math.Round(s / float64(q[k]))); out[k] != 0 {
			*end = uint8(k + 1)
		}
	}
}

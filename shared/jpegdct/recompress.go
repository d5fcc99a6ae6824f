package jpegdct

import (
	"math"
)

// Options choose how Recompress works.
type Options struct {
	// Quality of the target tables (IJG scale), 1..100.
	Quality int
	// Lossless keeps the input's tables and sampling: the output decodes
	// to exactly the input's pixels. It is the oracle of the tests.
	Lossless bool
	Limits   Limits
}

// Recompress re-encodes a JPEG at the target quality in the DCT domain.
// Errors are *Unsupported (take the pixel path) or wrap ErrCorrupt.
func Recompress(data []byte, o Options) ([]byte, error) {
	m, err := Decode(data, o.Limits)
	if err != nil {
		return nil, err
	}
	if m.orientation > 1 {
		return nil, unsupported("orientation")
	}
	f, err := m.toFrame(o)
	if err != nil {
		return nil, err
	}
	return f.encode(make([]byte, 0, len(data)/2)), nil
}

// toFrame builds the output frame: requantised luma (padded to the output
// MCU grid), chroma requantised or brought to 4:2:0.
func (m *Image) toFrame(o Options) (*frame, error) {
	f := &frame{width: m.Width, height: m.Height}
	if o.Lossless {
		if len(m.comps) == 3 && m.comps[1].tq != m.comps[2].tq && m.qt[m.comps[1].tq] != m.qt[m.comps[2].tq] {
			return nil, unsupported("chroma_tables")
		}
		f.qt[0] = m.qt[m.comps[0].tq]
		if len(m.comps) == 3 {
			f.qt[1] = m.qt[m.comps[1].tq]
		}
		f.mcusX, f.mcusY = m.mcusX, m.mcusY
		for i := range m.comps {
			f.comps = append(f.comps, &m.comps[i])
		}
		return f, nil
	}
	tl, tc := QualityTables(o.Quality)
	y := &m.comps[0]
	qinY := m.qt[y.tq]
	for k := 0; k < 64; k++ {
		f.qt[0][k] = max(tl[k], qinY[k]) // never requantise to finer steps
	}
	if len(m.comps) == 1 {
		f.mcusX, f.mcusY = m.mcusX, m.mcusY
		requantise(y.coef, &qinY, &f.qt[0])
		f.comps = []*component{y}
		return f, nil
	}
	cb, cr := &m.comps[1], &m.comps[2]
	for k := 0; k < 64; k++ {
		f.qt[1][k] = max(tc[k], m.qt[cb.tq][k], m.qt[cr.tq][k])
	}
	f.mcusX, f.mcusY = (m.Width+15)/16, (m.Height+15)/16
	requantise(y.coef, &qinY, &f.qt[0])
	ly := y
	if y.h != 2 || y.v != 2 {
		ly = padLuma(y, f.mcusX*2, f.mcusY*2)
	}
	ly.h, ly.v = 2, 2
	f.comps = []*component{ly}
	for _, c := range []*component{cb, cr} {
		qin := m.qt[c.tq]
		switch [2]int{y.h, y.v} {
		case [2]int{2, 2}:
			requantise(c.coef, &qin, &f.qt[1])
			f.comps = append(f.comps, c)
		default:
			f.comps = append(f.comps, downsample(c, y.h == 1, y.v == 1, &qin, &f.qt[1], f.mcusX, f.mcusY))
		}
	}
	return f, nil
}

// requantise maps coefficients quantised with qin to qout (both zigzag),
// rounding to nearest with ties toward zero: a tie costs bits either way
// and zero is the cheaper side.
func requantise(coef []int16, qin, qout *[64]uint16) {
	var same [64]bool
	all := true
	for k := range same {
		same[k] = qin[k] == qout[k]
		all = all && same[k]
	}
	if all {
		return
	}
	for b := 0; b+64 <= len(coef); b += 64 {
		blk := coef[b : b+64 : b+64]
		for k, c := range blk {
			if c == 0 || same[k] {
				continue
			}
			num := int32(c) * int32(qin[k])
			q := int32(qout[k])
			if num < 0 {
				blk[k] = int16(-((-2*num + q - 1) / (2 * q)))
			} else {
				blk[k] = int16((2*num + q - 1) / (2 * q))
			}
		}
	}
}

// padLuma copies y into a grid of stride×rows blocks; blocks beyond the
// input's grid repeat the DC of their nearest block (no edge to code).
func padLuma(y *component, stride, rows int) *component {
	out := &component{id: y.id, tq: y.tq, bw: y.bw, bh: y.bh, stride: stride, rows: rows,
		coef: make([]int16, stride*rows*64)}
	for by := 0; by < rows; by++ {
		sy := min(by, y.rows-1)
		for bx := 0; bx < stride; bx++ {
			sx := min(bx, y.stride-1)
			if sx == bx && sy == by {
				copy(out.block(bx, by), y.block(bx, by))
			} else {
				out.block(bx, by)[0] = y.block(sx, sy)[0]
			}
		}
	}
	return out
}

// halve[a] is D·P_a·Dᵀ: the DCT of the 2:1 box-filtered samples that block
// a (0 left/top, 1 right/bottom) of a pair contributes to, in terms of that
// block's DCT. D is the orthonormal 8-point DCT-II, which is JPEG's.
var halve = func() (t [2][8][8]float64) {
	var d [8][8]float64
	for u := 0; u < 8; u++ {
		cu := 0.5
		if u == 0 {
			cu = 0.5 / math.Sqrt2
		}
		for x := 0; x < 8; x++ {
			d[u][x] = cu * math.Cos(float64((2*x+1)*u)*math.Pi/16)
		}
	}
	for a := 0; a < 2; a++ {
		var p [8][8]float64 // samples: out n <- in j
		for n := 4 * a; n < 4*a+4; n++ {
			j := 2 * (n - 4*a)
			p[n][j], p[n][j+1] = 0.5, 0.5
		}
		// t = d · p · dᵀ
		var dp [8][8]float64
		for i := 0; i < 8; i++ {
			for j := 0; j < 8; j++ {
				for k := 0; k < 8; k++ {
					dp[i][j] += d[i][k] * p[k][j]
				}
			}
		}
		for i := 0; i < 8; i++ {
			for j := 0; j < 8; j++ {
				for k := 0; k < 8; k++ {
					t[a][i][j] += dp[i][k] * d[j][k]
				}
			}
		}
	}
	return t
}()

// downsample halves a chroma component horizontally (hx) and/or vertically
// (vy) in the DCT domain (a 2:1 box filter, as libjpeg downsamples) and
// quantises the result with qout.
func downsample(c *component, hx, vy bool, qin, qout *[64]uint16, mcusX, mcusY int) *component {
	out := &component{id: c.id, tq: 1, h: 1, v: 1, stride: mcusX, rows: mcusY, coef: make([]int16, mcusX*mcusY*64)}
	out.bw, out.bh = mcusX, mcusY
	fx, fy := 1, 1
	if hx {
		fx = 2
	}
	if vy {
		fy = 2
	}
	var x, tmp, acc [8][8]float64
	var inv [64]float64
	for k := range inv {
		inv[k] = 1 / float64(qout[k])
	}
	for by := 0; by < mcusY; by++ {
		for bx := 0; bx < mcusX; bx++ {
			acc = [8][8]float64{}
			for a := 0; a < fy; a++ {
				for b := 0; b < fx; b++ {
					sx, sy := min(bx*fx+b, c.bw-1), min(by*fy+a, c.bh-1)
					blk := c.block(sx, sy)
					// Dequantise into natural order; note the extent.
					x = [8][8]float64{}
					rmax, cmax := 0, 0
					for k, v := range blk {
						if v != 0 {
							n := zigzag[k]
							r, cc := n>>3, n&7
							x[r][cc] = float64(int32(v) * int32(qin[k]))
							rmax, cmax = max(rmax, r+1), max(cmax, cc+1)
						}
					}
					if rmax == 0 {
						continue
					}
					// Rows: tmp = T_a · x (or x when not halving vertically).
					if vy {
						ta := &halve[a]
						for i := 0; i < 8; i++ {
							for j := 0; j < cmax; j++ {
								s := 0.0
								for k := 0; k < rmax; k++ {
									s += ta[i][k] * x[k][j]
								}
								tmp[i][j] = s
							}
						}
						rmax = 8
					} else {
						tmp = x
					}
					// Columns: acc += tmp · T_bᵀ (or tmp).
					if hx {
						tb := &halve[b]
						for i := 0; i < rmax; i++ {
							for j := 0; j < 8; j++ {
								s := 0.0
								for k := 0; k < cmax; k++ {
									s += tmp[i][k] * tb[j][k]
								}
								acc[i][j] += s
							}
						}
					} else {
						for i := 0; i < rmax; i++ {
							for j := 0; j < cmax; j++ {
								acc[i][j] += tmp[i][j]
							}
						}
					}
				}
			}
			ob := out.block(bx, by)
			for k := 0; k < 64; k++ {
				n := zigzag[k]
				ob[k] = int16(math.RoundToEven(acc[n>>3][n&7] * inv[k]))
			}
		}
	}
	return out
}

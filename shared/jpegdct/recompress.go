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
//
// A baseline image with one interleaved scan (the common case) is
// recompressed as it is decoded, an output MCU row at a time: it never holds
// more than two MCU rows of coefficients. Other images are decoded whole
// first.
func Recompress(data []byte, o Options) ([]byte, error) {
	return recompress(data, o, nil)
}

// recompress is Recompress; ft, when set, is also handed the coefficients
// (every input MCU row as it streams, or the whole image) before they are
// requantised.
func recompress(data []byte, o Options, ft *fitter) ([]byte, error) {
	st := &streamer{o: o}
	d := &decoder{data: data, limits: o.Limits, stream: st}
	if ft != nil {
		st.also, d.prepare = ft.row, ft.prepare
	}
	if err := d.run(); err != nil {
		return nil, err
	}
	dst := make([]byte, 0, len(data)/2)
	if s := d.stream; s.on {
		return s.f.write(dst, s.w), nil
	}
	m := &d.img
	if m.orientation > 1 {
		return nil, unsupported("orientation")
	}
	if ft != nil {
		ft.whole(m)
	}
	f, err := m.toFrame(o)
	if err != nil {
		return nil, err
	}
	return f.encode(dst), nil
}

// streamer recompresses a baseline image's interleaved scan while the
// decoder reads it: the decoder's components hold a window of k input MCU
// rows (one output MCU row), and each full window is turned into symbols.
// With rows set it hands each input MCU row to rows instead (the scaled
// decoder's samples).
type streamer struct {
	o    Options
	on   bool
	f    *frame
	w    *symbolWriter
	m    *Image
	k    int // input MCU rows per output MCU row
	rows func(m *Image, my int)
	// also, when set, is handed each input MCU row before it is encoded.
	also func(m *Image, my int)
}

// start is called at the scan's header, when every table it needs is known.
func (s *streamer) start(d *decoder) error {
	if err := d.finish(); err != nil {
		return err
	}
	m := &d.img
	if s.rows != nil {
		s.m, s.k, s.on = m, 1, true
		for i := range m.comps {
			m.comps[i].alloc(m.comps[i].v)
		}
		return nil
	}
	if m.orientation > 1 {
		return unsupported("orientation")
	}
	s.m, s.k = m, 1
	if len(m.comps) == 3 && m.vmax == 1 && !s.o.Lossless {
		s.k = 2 // 4:4:4 or 4:2:2 in, 16-row MCUs out
	}
	for i := range m.comps {
		m.comps[i].alloc(s.k * m.comps[i].v)
	}
	f, err := m.toFrame(s.o)
	if err != nil {
		return err
	}
	s.f, s.w, s.on = f, newSymbolWriter(f), true
	return nil
}

// beginRow readies the window for input MCU row my.
func (s *streamer) beginRow(my int) {
	if my%s.k == 0 {
		for i := range s.m.comps {
			c := &s.m.comps[i]
			c.moveWindow(my * c.v)
		}
	}
}

// endRow emits the output row once its last input row is decoded.
func (s *streamer) endRow(my int) {
	if s.rows != nil {
		s.rows(s.m, my)
		return
	}
	if s.also != nil {
		s.also(s.m, my)
	}
	if my%s.k == s.k-1 || my == s.m.mcusY-1 {
		s.w.row(my / s.k)
	}
}

// toFrame builds the output frame: luma and 4:2:0 chroma keep their
// coefficients (requantised as they are encoded), other chroma is brought to
// 4:2:0 here. Luma is not copied to the output's MCU grid: the encoder makes
// the missing padding blocks up.
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
			f.comps = append(f.comps, outComp{component: &m.comps[i], h: m.comps[i].h, v: m.comps[i].v})
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
		f.comps = []outComp{{component: y, h: 1, v: 1, rq: newRequant(&qinY, &f.qt[0])}}
		return f, nil
	}
	cb, cr := &m.comps[1], &m.comps[2]
	for k := 0; k < 64; k++ {
		f.qt[1][k] = max(tc[k], m.qt[cb.tq][k], m.qt[cr.tq][k])
	}
	f.mcusX, f.mcusY = (m.Width+15)/16, (m.Height+15)/16
	f.comps = []outComp{{component: y, h: 2, v: 2, rq: newRequant(&qinY, &f.qt[0])}}
	for _, c := range []*component{cb, cr} {
		qin := m.qt[c.tq]
		if y.h == 2 && y.v == 2 {
			f.comps = append(f.comps, outComp{component: c, h: 1, v: 1, rq: newRequant(&qin, &f.qt[1])})
		} else {
			f.comps = append(f.comps, newDownsampled(c, y.h == 1, y.v == 1, &qin, &f.qt[1], f.mcusX, f.mcusY))
		}
	}
	return f, nil
}

// requant maps coefficients quantised with one table to another:
// |v| = floor((|c|·qin + (qout-1)/2) / qout), nearest with ties toward zero,
// computed as one multiply and shift (exact for the 8-bit range).
type requant struct {
	mul, add [64]uint64 // qin·⌈2³²/qout⌉ and ⌊(qout-1)/2⌋·⌈2³²/qout⌉
	// marginal: an AC coefficient with |c| under this that requantises to
	// ±1 is marginal, dropped in sparse blocks (see sparseBlock).
	marginal [64]int32
}

// Rate–distortion: in a sparse block (at most sparseBlock nonzero AC
// coefficients after requantisation: a flat area), a coefficient that only
// just rounds to ±1 — under marginalZone output steps — costs a symbol with
// a long zero run, and moves the block's end, for a change SSIM barely
// sees; it is dropped. Only where the output step is at least
// marginalRatio times the input's: on a fine input grid the input value
// says more than "about one step". The constants save the most bytes over
// make bench's corpus at quality 50 while every class's mean luma SSIM
// stays within 0.002 of sharp's (README.md, "Why the constants").
const (
	marginalZone  = 0.62
	marginalRatio = 3
	sparseBlock   = 5
)

// newRequant returns nil when the tables are equal (nothing to do).
func newRequant(qin, qout *[64]uint16) *requant {
	if *qin == *qout {
		return nil
	}
	r := &requant{}
	for k := range r.mul {
		q, qi := uint64(qout[k]), uint64(qin[k])
		m := (1<<32 + q - 1) / q
		r.mul[k], r.add[k] = qi*m, (q-1)/2*m
		if qi == q {
			r.mul[k], r.add[k] = 1<<32, 0
		}
		if k >= 1 && q >= marginalRatio*qi {
			// smallest |c| with |c|·qin ≥ marginalZone·qout
			r.marginal[k] = int32(math.Ceil(marginalZone * float64(q) / float64(qi)))
		}
	}
	return r
}

// apply requantises coefficient c at zigzag index k.
func (r *requant) apply(k int, c int16) int16 {
	a := int32(c)
	if a < 0 {
		a = -a
	}
	v := int16((uint64(a)*r.mul[k] + r.add[k]) >> 32)
	if c < 0 {
		return -v
	}
	return v
}

// halve0 is D·P₀·Dᵀ: the DCT of the 2:1 box-filtered samples that the first
// block of a pair contributes to, in terms of that block's DCT (D is the
// orthonormal 8-point DCT-II, which is JPEG's). The second block's matrix
// is S·halve0·S with S = diag((-1)^k), so a pair (x0, x1) gives
// y[i] = Σ_k halve0[i][k]·(x0[k] ± (-1)^k·x1[k]), + for even i, − for odd.
// Row 0 has one nonzero entry, the other even rows two, the odd rows all
// but k = 4; halveT spells that out (TestHalveSparsity checks it).
var halve0 = func() (t [8][8]float64) {
	d := &dctCos
	// P₀: output sample n < 4 averages input samples 2n and 2n+1.
	for i := 0; i < 8; i++ {
		for j := 0; j < 8; j++ {
			for n := 0; n < 4; n++ {
				t[i][j] += d[i][n] * 0.5 * (d[j][2*n] + d[j][2*n+1])
			}
		}
	}
	return t
}()

// block8 is a block of dequantised coefficients; rows and cols bound its
// nonzero entries (x[8r+c] is zero from r ≥ rows or c ≥ cols on).
type block8 struct {
	x          [64]float64 // row-major
	rows, cols int
}

// load dequantises the zigzag block blk (nonzero only before end) into b,
// transposed when t, with qf the input steps as floats.
func (b *block8) load(blk []int16, end uint8, qf *[64]float64, t bool) {
	clear(b.x[:8*b.rows]) // the rest is zero already
	pos, rows, cols := &natural, &prefixRows, &prefixCols
	if t {
		pos, rows, cols = &transposed, &prefixCols, &prefixRows
	}
	for k, v := range blk[:end] {
		b.x[pos[k]] = float64(v) * qf[k]
	}
	b.rows, b.cols = int(rows[end]), int(cols[end])
}

// natural and transposed map zigzag indexes to row-major positions in a
// block and in its transpose; prefixRows[n] and prefixCols[n] bound the
// rows and columns that the first n zigzag positions reach.
var natural, transposed, prefixRows, prefixCols = func() (nat, tr, pr, pc [65]uint8) {
	for k := range 64 {
		n := zigzag[k]
		nat[k], tr[k] = uint8(n), uint8(n&7*8+n>>3)
		pr[k+1], pc[k+1] = max(pr[k], uint8(n>>3+1)), max(pc[k], uint8(n&7+1))
	}
	return
}()

// halveT halves the pair (a, b) along their rows, each row of a followed by
// the same row of b being one 16-sample signal, and stores the result
// transposed in y: y.x[8i+r] is frequency i of row r's halved signal.
// Halving the rows of two transposed halves (top, bottom) so gives the
// two-dimensional result back in natural order.
func halveT(a, b *block8, y *block8) {
	rows := max(a.rows, b.rows)
	for i := range y.rows {
		clear(y.x[8*i+rows : 8*i+max(rows, y.cols)]) // what is not overwritten
	}
	y.rows, y.cols = 0, rows
	if rows == 0 {
		return
	}
	y.rows = 8
	h := &halve0
	for r := 0; r < rows; r++ {
		x0, x1 := (*[8]float64)(a.x[8*r:]), (*[8]float64)(b.x[8*r:])
		// p (even output frequencies) and m (odd) as in halve0's comment
		p0, m0 := x0[0]+x1[0], x0[0]-x1[0]
		p1, m1 := x0[1]-x1[1], x0[1]+x1[1]
		p2, m2 := x0[2]+x1[2], x0[2]-x1[2]
		p3, m3 := x0[3]-x1[3], x0[3]+x1[3]
		p5, m5 := x0[5]-x1[5], x0[5]+x1[5]
		p6, m6 := x0[6]+x1[6], x0[6]-x1[6]
		p7, m7 := x0[7]-x1[7], x0[7]+x1[7]
		y.x[0+r] = h[0][0] * p0
		y.x[16+r] = h[2][1]*p1 + h[2][7]*p7
		y.x[32+r] = h[4][2]*p2 + h[4][6]*p6
		y.x[48+r] = h[6][3]*p3 + h[6][5]*p5
		for i := 1; i < 8; i += 2 {
			hi := &h[i]
			y.x[8*i+r] = hi[0]*m0 + hi[1]*m1 + hi[2]*m2 + hi[3]*m3 + hi[5]*m5 + hi[6]*m6 + hi[7]*m7
		}
	}
}

// downsampler halves a chroma component horizontally (hx) and/or
// vertically (vy) in the DCT domain (a 2:1 box filter, as libjpeg
// downsamples) and quantises the result, one output block row at a time.
// Blocks past the source's edge repeat its last block.
type downsampler struct {
	src    *component
	hx, vy bool
	qf     [64]float64 // input steps
	inv    [64]float64 // 1 / output step
	// scratch blocks: up to four inputs, two halves, the result
	in       [4]block8
	top, bot block8
	y        block8
}

// newDownsampled is the output component made from src by a downsampler.
func newDownsampled(src *component, hx, vy bool, qin, qout *[64]uint16, mcusX, mcusY int) outComp {
	out := &component{id: src.id, tq: 1, h: 1, v: 1, bw: mcusX, bh: mcusY, stride: mcusX, rows: mcusY}
	out.alloc(1)
	d := &downsampler{src: src, hx: hx, vy: vy}
	for k := range d.inv {
		d.qf[k], d.inv[k] = float64(qin[k]), 1/float64(qout[k])
	}
	return outComp{component: out, h: 1, v: 1, down: d}
}

// roundMagic rounds a float64 of magnitude under 2⁵¹ to the nearest
// integer, ties to even, by adding and subtracting it (the FPU's own
// rounding), faster than math.RoundToEven without SSE4.1.
const roundMagic = 1.5 * (1 << 52)

// row fills out's window with output block row by.
func (d *downsampler) row(out *component, by int) {
	out.moveWindow(by)
	c := d.src
	load := func(b *block8, bx, by int, t bool) {
		bx, by = min(bx, c.bw-1), min(by, c.bh-1)
		i := c.index(bx, by)
		b.load(c.coef[i*64:i*64+64], c.end[i], &d.qf, t)
	}
	in := &d.in
	for bx := 0; bx < out.stride; bx++ {
		y, transposed := &d.y, false
		switch {
		case d.hx && d.vy:
			load(&in[0], 2*bx, 2*by, false)
			load(&in[1], 2*bx+1, 2*by, false)
			load(&in[2], 2*bx, 2*by+1, false)
			load(&in[3], 2*bx+1, 2*by+1, false)
			halveT(&in[0], &in[1], &d.top)
			halveT(&in[2], &in[3], &d.bot)
			halveT(&d.top, &d.bot, y)
		case d.hx:
			load(&in[0], 2*bx, by, false)
			load(&in[1], 2*bx+1, by, false)
			halveT(&in[0], &in[1], y)
			transposed = true
		default:
			load(&in[0], bx, 2*by, true)
			load(&in[1], bx, 2*by+1, true)
			halveT(&in[0], &in[1], y)
		}
		ob, end := out.block(bx, by), &out.end[out.index(bx, by)]
		for k := 0; k < 64; k++ {
			n := zigzag[k]
			r, col := n>>3, n&7
			if transposed {
				r, col = col, r
			}
			v := (y.x[8*r+col]*d.inv[k] + roundMagic) - roundMagic
			if ob[k] = int16(v); ob[k] != 0 {
				*end = uint8(k + 1)
			}
		}
	}
}

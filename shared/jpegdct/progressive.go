package jpegdct

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Progressive output: the same quantised coefficients as the baseline
// file, so the same pixels, coded in spectral-selection scans (no
// successive approximation): the DC of every component interleaved, then
// per component bands of AC coefficients. A band that is zero in a run of
// blocks costs one EOB-run symbol for the whole run instead of an EOB per
// block, which is where a progressive file is smaller; and each scan gets
// Huffman tables of its own. The scans are planned from the symbols the
// baseline pass collected (no coefficients are kept), their sizes counted
// exactly, and the smaller of the two codings written.

// baselineOnly turns progressive output off (for tests comparing the two).
var baselineOnly = false

// progScan is one AC scan: a band of one component.
type progScan struct {
	comp, ss, se int
	freq         [256]int64
	eobBits      int64 // extra bits of its EOB runs
	table        huffEncoder
}

// progPlan is what writeProgressive writes.
type progPlan struct {
	scans []progScan
	// per component, its scans' indexes in order of frequency (one walk
	// of acScans serves them all)
	groups [][]int
	// per component: its blocks across and down, unpadded, and where its
	// blocks sit in an MCU
	bw, bh, first []int
	perMCU        int
}

// progressiveScript is the scans after the DC one, as component, first and
// last coefficient: luma in three bands, each chroma component whole: the
// split with the fewest total bytes over the bench corpus at quality 50
// (README.md, "Why the constants").
var progressiveScript = [][3]int{{0, 1, 2}, {0, 3, 9}, {2, 1, 63}, {1, 1, 63}, {0, 10, 63}}

// planProgressive counts the progressive scans' symbols and returns the
// plan when the progressive file comes out smaller than the baseline one
// (acT: the baseline's AC tables), nil when not.
func (f *frame) planProgressive(sw *symbolWriter, acT *[2]huffEncoder) *progPlan {
	if baselineOnly {
		return nil
	}
	for t := range f.qt[:min(len(f.comps), 2)] {
		for _, q := range f.qt[t] {
			if q > 255 {
				return nil // 16-bit tables: baseline's extended form only
			}
		}
	}
	p := &progPlan{}
	hmax, vmax := f.comps[0].h, f.comps[0].v
	for _, c := range f.comps {
		cw := (f.width*c.h + hmax - 1) / hmax
		ch := (f.height*c.v + vmax - 1) / vmax
		p.bw, p.bh = append(p.bw, (cw+7)/8), append(p.bh, (ch+7)/8)
		p.first = append(p.first, p.perMCU)
		p.perMCU += c.h * c.v
	}
	for _, sc := range progressiveScript {
		if sc[0] < len(f.comps) {
			p.scans = append(p.scans, progScan{comp: sc[0], ss: sc[1], se: sc[2]})
		}
	}
	p.groups = make([][]int, len(f.comps))
	for i, s := range p.scans {
		p.groups[s.comp] = append(p.groups[s.comp], i)
	}
	for _, g := range p.groups {
		slices.SortFunc(g, func(a, b int) int { return p.scans[a].ss - p.scans[b].ss })
	}
	chunks := sw.symbols()
	for ci, g := range p.groups {
		f.acScans(p, chunks, sw.starts, ci, g, nil)
	}
	for i := range p.scans {
		p.scans[i].table = optimalTable(&p.scans[i].freq)
	}
	// Bits that differ: the AC symbols' codes (their extra bits are the
	// same), EOB runs' extra bits, and the headers: per AC scan a DHT and
	// an SOS and up to a byte of padding, against the baseline's two AC
	// DHTs.
	var base, prog int64
	for t := 0; t < min(len(f.comps), 2); t++ {
		for sym, n := range sw.freq[t][1] {
			base += n * int64(acT[t].size[sym])
		}
		base += 8 * int64(2+2+1+16+len(acT[t].vals))
	}
	for i := range p.scans {
		s := &p.scans[i]
		for sym, n := range s.freq {
			prog += n * int64(s.table.size[sym])
		}
		prog += s.eobBits + 8*int64(2+2+1+16+len(s.table.vals)) + 8*(2+2+1+2+3) + 8
	}
	if prog >= base {
		return nil
	}
	return p
}

// band is one AC scan's state while a component's blocks are walked.
type band struct {
	s      *progScan
	w      *bitWriter // nil: count symbols instead
	prev   int        // the last coefficient coded in the current block
	eobrun int
}

func (b *band) emit(sym byte, extra uint32, n uint8) {
	if b.w == nil {
		b.s.freq[sym]++
		return
	}
	t := &b.s.table
	b.w.put(t.code[sym]<<n|extra&(1<<n-1), t.size[sym]+n)
}

func (b *band) flush() {
	if b.eobrun > 0 {
		n := uint8(bits.Len(uint(b.eobrun)) - 1)
		if b.w == nil {
			b.s.eobBits += int64(n)
		}
		b.emit(n<<4, uint32(b.eobrun)-1<<n, n)
		b.eobrun = 0
	}
}

// acScans walks component ci's blocks in scan order (across then down,
// MCU padding left out) once, and each block's AC symbols once, for all the
// component's scans (group: their indexes in p.scans, in order of
// frequency), counting their symbols (ws nil) or writing each scan to its
// own writer in ws (indexed as p.scans).
func (f *frame) acScans(p *progPlan, chunks [][]symbol, starts []uint32, ci int, group []int, ws []bitWriter) {
	c := f.comps[ci]
	bands := make([]band, len(group))
	for i, si := range group {
		bands[i] = band{s: &p.scans[si]}
		if ws != nil {
			bands[i].w = &ws[si]
		}
	}
	last := bands[len(bands)-1].s.se
	for by := 0; by < p.bh[ci]; by++ {
		// block (bx, by) is block in+bx%h of MCU (bx/h, by/v)
		row := by/c.v*f.mcusX*p.perMCU + p.first[ci] + by%c.v*c.h
		for bx, h, mcu := 0, 0, row; bx < p.bw[ci]; bx++ {
			at := starts[mcu+h]
			if h++; h == c.h {
				h, mcu = 0, mcu+p.perMCU
			}
			syms := chunks[at>>16][at&0xFFFF+1:] // past the DC symbol
			for i := range bands {
				bands[i].prev = bands[i].s.ss - 1
			}
			b := &bands[0]
			bi, k := 0, 0
			for _, sy := range syms {
				sym := byte(sy >> 21)
				if sym == 0 { // EOB
					break
				}
				if sym == 0xF0 {
					k += 16
					continue
				}
				k += int(sym>>4) + 1
				if k > last {
					break
				}
				for k > b.s.se {
					bi++
					b = &bands[bi]
				}
				if k >= b.s.ss {
					b.flush()
					run := k - b.prev - 1
					for ; run > 15; run -= 16 {
						b.emit(0xF0, 0, 0)
					}
					n := sym & 15
					b.emit(byte(run<<4)|n, uint32(sy), n)
					b.prev = k
				}
				if k >= 63 {
					break
				}
			}
			for i := range bands {
				if b := &bands[i]; b.prev < b.s.se {
					if b.eobrun++; b.eobrun == 0x7FFF {
						b.flush()
					}
				}
			}
		}
	}
	for i := range bands {
		bands[i].flush()
	}
}

// writeProgressive writes the plan: the DC scan replays the baseline DC
// symbols (the same order and predictions), then the AC scans.
func (f *frame) writeProgressive(dst []byte, sw *symbolWriter, p *progPlan, dcT *[2]huffEncoder) []byte {
	out := f.header(dst, sof2Marker)
	ntab := min(len(f.comps), 2)
	for t := 0; t < ntab; t++ {
		out = appendDHT(out, 0, t, &dcT[t])
	}
	out = append(out, 0xFF, sosMarker)
	out = binary.BigEndian.AppendUint16(out, uint16(6+2*len(f.comps)))
	out = append(out, byte(len(f.comps)))
	for ci := range f.comps {
		out = append(out, byte(ci+1), byte(min(ci, 1))<<4)
	}
	out = append(out, 0, 0, 0)
	w := bitWriter{out: out}
	chunks := sw.symbols()
	for _, at := range sw.starts {
		sy := chunks[at>>16][at&0xFFFF]
		e := &dcT[sy>>30&1]
		sym := byte(sy >> 21)
		n := uint8(sy>>16) & 31
		w.put(e.code[sym]<<n|uint32(sy)&(1<<n-1), e.size[sym]+n)
	}
	w.flush()
	// Each AC scan's data into a writer of its own, a component's scans
	// in one walk; then the scans in order.
	ws := make([]bitWriter, len(p.scans))
	for ci, g := range p.groups {
		f.acScans(p, chunks, sw.starts, ci, g, ws)
	}
	out = w.out
	for i := range p.scans {
		s := &p.scans[i]
		ws[i].flush()
		out = appendDHT(out, 1, 0, &s.table)
		out = append(out, 0xFF, sosMarker, 0, 8, 1, byte(s.comp+1), 0, byte(s.ss), byte(s.se), 0)
		out = append(out, ws[i].out...)
	}
	return append(out, 0xFF, eoiMarker)
}

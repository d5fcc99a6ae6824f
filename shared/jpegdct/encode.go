package jpegdct

import (
	"encoding/binary"
	"math/bits"
	"sync"
)

// Annex K tables, natural order.
var (
	stdLuma = [64]uint16{
		16, 11, 10, 16, 24, 40, 51, 61,
		12, 12, 14, 19, 26, 58, 60, 55,
		14, 13, 16, 24, 40, 57, 69, 56,
		14, 17, 22, 29, 51, 87, 80, 62,
		18, 22, 37, 56, 68, 109, 103, 77,
		24, 35, 55, 64, 81, 104, 113, 92,
		49, 64, 78, 87, 103, 121, 120, 101,
		72, 92, 95, 98, 112, 100, 103, 99,
	}
	stdChroma = [64]uint16{
		17, 18, 24, 47, 99, 99, 99, 99,
		18, 21, 26, 66, 99, 99, 99, 99,
		24, 26, 56, 99, 99, 99, 99, 99,
		47, 66, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
	}
)

// QualityTables returns the IJG luma and chroma tables for quality 1..100,
// in zigzag order, as libjpeg and image/jpeg scale them.
func QualityTables(quality int) (luma, chroma [64]uint16) {
	quality = min(max(quality, 1), 100)
	scale := 200 - 2*quality
	if quality < 50 {
		scale = 5000 / quality
	}
	for k := 0; k < 64; k++ {
		n := zigzag[k]
		luma[k] = uint16(min(max((int(stdLuma[n])*scale+50)/100, 1), 255))
		chroma[k] = uint16(min(max((int(stdChroma[n])*scale+50)/100, 1), 255))
	}
	return luma, chroma
}

// frame is what the encoder writes: components with their coefficients
// (already quantised with the tables given) and two tables.
type frame struct {
	width, height int
	comps         []outComp
	qt            [2][64]uint16 // luma, chroma; zigzag
	mcusX, mcusY  int
}

// outComp is a component as the output codes it: its sampling there, and
// the requantisation to apply on the way (nil: none). Blocks beyond the
// component's stored grid are padding: DC of the nearest block, no AC.
type outComp struct {
	*component
	h, v int
	rq   *requant
	// down, when set, computes this component's blocks one MCU row at a
	// time (into a one-row window) from a full-resolution chroma component.
	down *downsampler
}

// symbol statistics and codes for the four tables.
type huffEncoder struct {
	code [256]uint32
	size [256]uint8
	bits [16]byte
	vals []byte
}

// optimalTable builds a length-limited Huffman code from symbol counts,
// following Annex K.2 (libjpeg's jpeg_gen_optimal_table).
func optimalTable(freqIn *[256]int64) huffEncoder {
	var freq [257]int64
	copy(freq[:], freqIn[:])
	freq[256] = 1 // reserved: no code is all ones
	var codesize [257]int
	var others [257]int
	for i := range others {
		others[i] = -1
	}
	for {
		c1, c2 := -1, -1
		var v1, v2 int64 = 1 << 62, 1 << 62
		for i := 0; i <= 256; i++ {
			if freq[i] != 0 && freq[i] <= v1 {
				v1, c1 = freq[i], i
			}
		}
		for i := 0; i <= 256; i++ {
			if freq[i] != 0 && freq[i] <= v2 && i != c1 {
				v2, c2 = freq[i], i
			}
		}
		if c2 < 0 {
			break
		}
		freq[c1] += freq[c2]
		freq[c2] = 0
		codesize[c1]++
		for others[c1] >= 0 {
			c1 = others[c1]
			codesize[c1]++
		}
		others[c1] = c2
		codesize[c2]++
		for others[c2] >= 0 {
			c2 = others[c2]
			codesize[c2]++
		}
	}
	var bits [33]int
	for i := 0; i <= 256; i++ {
		if codesize[i] > 0 {
			bits[min(codesize[i], 32)]++
		}
	}
	for i := 32; i > 16; i-- {
		for bits[i] > 0 {
			j := i - 2
			for bits[j] == 0 {
				j--
			}
			bits[i] -= 2
			bits[i-1]++
			bits[j+1] += 2
			bits[j]--
		}
	}
	i := 16
	for bits[i] == 0 {
		i--
	}
	bits[i]-- // drop the reserved symbol
	var e huffEncoder
	for l := 1; l <= 32; l++ {
		for s := 0; s < 256; s++ {
			if codesize[s] == l {
				e.vals = append(e.vals, byte(s))
			}
		}
	}
	for l := 1; l <= 16; l++ {
		e.bits[l-1] = byte(bits[l])
	}
	// Canonical codes.
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for n := 0; n < int(e.bits[l-1]); n++ {
			s := e.vals[k]
			e.code[s], e.size[s] = code, uint8(l)
			code++
			k++
		}
		code <<= 1
	}
	return e
}

// bitWriter writes entropy-coded bits with byte stuffing.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) put(code uint32, size uint8) {
	w.acc = w.acc<<size | uint64(code)
	w.n += uint(size)
	if w.n < 32 {
		return
	}
	// Four bytes at once unless one of them needs stuffing.
	w.n -= 32
	v := uint32(w.acc >> w.n)
	if x := ^v; (x-0x01010101)&^x&0x80808080 == 0 { // no 0xFF byte in v
		w.out = binary.BigEndian.AppendUint32(w.out, v)
		return
	}
	for sh := 24; sh >= 0; sh -= 8 {
		b := byte(v >> sh)
		w.out = append(w.out, b)
		if b == 0xFF {
			w.out = append(w.out, 0)
		}
	}
}

func (w *bitWriter) flush() {
	if pad := (8 - w.n%8) % 8; pad > 0 {
		w.acc = w.acc<<pad | (1<<pad - 1) // pad with ones
		w.n += pad
	}
	for w.n >= 8 {
		w.n -= 8
		b := byte(w.acc >> w.n)
		w.out = append(w.out, b)
		if b == 0xFF {
			w.out = append(w.out, 0)
		}
	}
}

// magnitude is v's JPEG size category and its extra bits.
func magnitude(v int32) (uint32, uint8) {
	n := nbits(v)
	if v < 0 {
		v--
	}
	return uint32(v) & (1<<n - 1), n
}

func nbits(a int32) uint8 {
	if a < 0 {
		a = -a
	}
	return uint8(bits.Len32(uint32(a)))
}

// symbol packs one Huffman symbol: extra bits (≤ 16) in bits 0..15,
// their count in 16..20, the symbol in 21..28, class (0 DC, 1 AC) in bit 29
// and table (0 luma, 1 chroma) in bit 30.
type symbol uint32

func pack(t, class int, sym byte, extra uint32, n uint8) symbol {
	return symbol(uint32(t)<<30 | uint32(class)<<29 | uint32(sym)<<21 | uint32(n)<<16 | extra&0xFFFF)
}

// symbolWriter turns output MCU rows into Huffman symbols in coding order,
// counting them per table and class. Pass 2 of encoding replays the list
// with the tables built from the counts, so coefficients need not be kept
// once their row is done.
type symbolWriter struct {
	f *frame
	// The symbols: full chunks, then out. Chunks of a fixed size instead of
	// one growing slice: no copying, no doubling of the peak.
	chunks [][]symbol
	out    []symbol
	freq   [2][2][256]int64 // [table][class]
	preds  []int32
	// starts holds, per block in coding order, where its symbols begin:
	// chunk<<16 | index (a block's symbols never straddle chunks).
	starts []uint32
}

// symbolChunk is the symbols a chunk holds; a block makes at most 68
// (DC, 63 AC, 3 runs of 16 zeros, EOB).
const symbolChunk = 1 << 16

// chunkPool keeps symbol chunks between images: they are most of what
// recompressing an image allocates, so, reused, the collector runs less
// often and new memory is not paid for in page faults.
var chunkPool = sync.Pool{New: func() any { c := make([]symbol, 0, symbolChunk); return &c }}

func newChunk() []symbol { return (*chunkPool.Get().(*[]symbol))[:0] }

func newSymbolWriter(f *frame) *symbolWriter {
	return &symbolWriter{f: f, out: newChunk(), preds: make([]int32, len(f.comps))}
}

// room makes sure out takes another block's symbols without growing.
func (w *symbolWriter) room() {
	if cap(w.out)-len(w.out) < 68 {
		w.chunks = append(w.chunks, w.out)
		w.out = newChunk()
	}
}

// symbols are all the chunks, the last one being filled included.
func (w *symbolWriter) symbols() [][]symbol {
	return append(w.chunks[:len(w.chunks):len(w.chunks)], w.out)
}

// release gives the chunks back to chunkPool once the file is written.
func (w *symbolWriter) release() {
	for _, c := range w.symbols() {
		chunkPool.Put(&c)
	}
	w.chunks, w.out = nil, nil
}

// row emits output MCU row my.
func (w *symbolWriter) row(my int) {
	f := w.f
	for ci := range f.comps {
		if c := &f.comps[ci]; c.down != nil {
			c.down.row(c.component, my)
		}
	}
	var pad [64]int16
	for mx := 0; mx < f.mcusX; mx++ {
		for ci := range f.comps {
			c := &f.comps[ci]
			t := min(ci, 1)
			for v := 0; v < c.v; v++ {
				for h := 0; h < c.h; h++ {
					bx, by := mx*c.h+h, my*c.v+v
					var blk []int16
					end := 1
					if bx < c.stride && by < c.rows {
						blk, end = c.block(bx, by), int(c.end[c.index(bx, by)])
					} else {
						pad[0] = c.block(min(bx, c.stride-1), min(by, c.rows-1))[0]
						blk = pad[:]
					}
					w.room()
					w.starts = append(w.starts, uint32(len(w.chunks))<<16|uint32(len(w.out)))
					w.out = c.blockSymbols(w.out, blk[:max(end, 1)], &w.preds[ci], t, &w.freq)
				}
			}
		}
	}
}

// blockSymbols appends one block's symbols, requantising on the way; blk
// holds the block's coefficients up to its last nonzero one (at least DC).
// The AC coefficients are requantised first and their nonzero ones marked
// in a bit mask, so the symbols come from walking the set bits (zero runs
// are distances between them) rather than branching per coefficient.
func (c *outComp) blockSymbols(out []symbol, blk []int16, pred *int32, t int, freq *[2][2][256]int64) []symbol {
	rq := c.rq
	dc := int32(blk[0])
	if rq != nil {
		dc = int32(rq.apply(0, blk[0]))
	}
	extra, n := magnitude(dc - *pred)
	*pred = dc
	freq[t][0][n]++
	out = append(out, pack(t, 0, n, extra, n))

	var q [64]int16
	var mask uint64
	if rq == nil {
		for k := 1; k < len(blk); k++ {
			if v := blk[k]; v != 0 {
				q[k] = v
				mask |= 1 << k
			}
		}
	} else {
		// Branch-free: whether a coefficient is zero, before or after, is
		// as good as random in a busy block.
		var marg uint64 // marginal ±1s
		for k := 1; k < len(blk); k++ {
			v := int32(blk[k])
			sign := v >> 31
			a := (v ^ sign) - sign
			w := int32((uint64(a)*rq.mul[k&63] + rq.add[k&63]) >> 32)
			q[k&63] = int16((w ^ sign) - sign)
			nz := uint64(uint32(-w) >> 31) // w ≥ 0
			mask |= nz << k
			marg |= nz & uint64(uint32(a-rq.marginal[k&63])>>31) << k
		}
		if marg != 0 && bits.OnesCount64(mask) <= sparseBlock {
			mask &^= marg
		}
	}
	acFreq, acBase := &freq[t][1], symbol(t<<30|1<<29)
	last := 0
	for mask != 0 {
		k := bits.TrailingZeros64(mask)
		mask &= mask - 1
		run := k - last - 1
		last = k
		for run > 15 {
			acFreq[0xF0]++
			out = append(out, acBase|0xF0<<21)
			run -= 16
		}
		extra, n := magnitude(int32(q[k]))
		sym := byte(run<<4) | n
		acFreq[sym]++
		out = append(out, acBase|symbol(sym)<<21|symbol(n)<<16|symbol(extra&0xFFFF))
	}
	if last < 63 { // a zero tail
		acFreq[0]++
		out = append(out, acBase) // EOB
	}
	return out
}

// encode writes f as a baseline JPEG with optimised Huffman tables.
func (f *frame) encode(dst []byte) []byte {
	w := newSymbolWriter(f)
	for my := 0; my < f.mcusY; my++ {
		w.row(my)
	}
	return f.write(dst, w)
}

// write writes the JPEG whose symbols w collected: progressive when that
// is smaller (see progressive.go), else baseline.
func (f *frame) write(dst []byte, sw *symbolWriter) []byte {
	defer sw.release()
	freq := &sw.freq
	ntab := min(len(f.comps), 2)
	var dcT, acT [2]huffEncoder
	for t := 0; t < ntab; t++ {
		dcT[t], acT[t] = optimalTable(&freq[t][0]), optimalTable(&freq[t][1])
	}
	if p := f.planProgressive(sw, &acT); p != nil {
		return f.writeProgressive(dst, sw, p, &dcT)
	}

	out := f.header(dst, sof0Marker)
	for t := 0; t < ntab; t++ {
		for class, e := range []*huffEncoder{&dcT[t], &acT[t]} {
			out = appendDHT(out, class, t, e)
		}
	}
	out = append(out, 0xFF, sosMarker)
	out = binary.BigEndian.AppendUint16(out, uint16(6+2*len(f.comps)))
	out = append(out, byte(len(f.comps)))
	for ci := range f.comps {
		t := byte(min(ci, 1))
		out = append(out, byte(ci+1), t<<4|t)
	}
	out = append(out, 0, 63, 0)

	// Pass 2: the data.
	w := bitWriter{out: out}
	tables := [4]*huffEncoder{&dcT[0], &acT[0], &dcT[1], &acT[1]}
	for _, syms := range sw.symbols() {
		for _, sy := range syms {
			e := tables[sy>>29]
			sym := byte(sy >> 21)
			n := uint8(sy>>16) & 31 // extra bits follow the code
			w.put(e.code[sym]<<n|uint32(sy)&(1<<n-1), e.size[sym]+n)
		}
	}
	w.flush()
	return append(w.out, 0xFF, eoiMarker)
}

// appendDHT appends a DHT segment defining table t of class (0 DC, 1 AC).
func appendDHT(out []byte, class, t int, e *huffEncoder) []byte {
	out = append(out, 0xFF, dhtMarker)
	out = binary.BigEndian.AppendUint16(out, uint16(2+1+16+len(e.vals)))
	out = append(out, byte(class<<4|t))
	out = append(out, e.bits[:]...)
	return append(out, e.vals...)
}

// header appends SOI, JFIF, the quantisation tables and the frame header
// (sof: its marker, sof0Marker baseline or sof2Marker progressive).
func (f *frame) header(dst []byte, sof byte) []byte {
	ntab := min(len(f.comps), 2)
	out := dst
	out = append(out, 0xFF, soiMarker)
	out = append(out, 0xFF, app0Marker, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0)
	wide := false
	for t := 0; t < ntab; t++ {
		for _, q := range f.qt[t] {
			wide = wide || q > 255
		}
	}
	for t := 0; t < ntab; t++ {
		if wide {
			out = append(out, 0xFF, dqtMarker, 0, 2+1+128, 0x10|byte(t))
			for _, q := range f.qt[t] {
				out = binary.BigEndian.AppendUint16(out, q)
			}
		} else {
			out = append(out, 0xFF, dqtMarker, 0, 2+1+64, byte(t))
			for _, q := range f.qt[t] {
				out = append(out, byte(q))
			}
		}
	}
	if wide && sof == sof0Marker {
		sof = sof1Marker // extended sequential: 16-bit tables
	}
	out = append(out, 0xFF, sof)
	out = binary.BigEndian.AppendUint16(out, uint16(8+3*len(f.comps)))
	out = append(out, 8)
	out = binary.BigEndian.AppendUint16(out, uint16(f.height))
	out = binary.BigEndian.AppendUint16(out, uint16(f.width))
	out = append(out, byte(len(f.comps)))
	for ci, c := range f.comps {
		out = append(out, byte(ci+1), byte(c.h<<4|c.v), byte(min(ci, 1)))
	}
	return out
}

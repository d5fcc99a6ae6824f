package jpegdct

const lutBits = 9

// huffDecoder decodes one Huffman table: codes up to lutBits long through
// a lookup table, longer ones through the canonical maxcode walk.
type huffDecoder struct {
	lut [1 << lutBits]uint16 // len<<8 | value; 0 = longer code
	// fast decodes an AC code and its extra bits in one look when both
	// fit in lutBits: value<<16 | run<<8 | bits used; 0 = not so.
	fast    [1 << lutBits]int32
	maxcode [18]int32 // largest code of each length, -1 if none
	valptr  [17]int32 // index in vals of the first code of each length
	mincode [17]int32
	vals    [256]byte
	nvals   int
	defined bool
}

// build sets d from a DHT segment's counts (codes of each length 1..16)
// and values.
func (d *huffDecoder) build(counts [16]int, vals []byte) error {
	*d = huffDecoder{}
	total := 0
	for _, c := range counts {
		total += c
	}
	if total == 0 || total > 256 || total != len(vals) {
		return corrupt("bad Huffman table")
	}
	copy(d.vals[:], vals)
	d.nvals = total
	code, k := int32(0), 0
	for l := 1; l <= 16; l++ {
		n := counts[l-1]
		d.valptr[l] = int32(k)
		d.mincode[l] = code
		if n == 0 {
			d.maxcode[l] = -1
		} else {
			for i := 0; i < n; i++ {
				if code >= 1<<l {
					return corrupt("bad Huffman table: over-subscribed")
				}
				if l <= lutBits {
					shift := lutBits - l
					base := int(code) << shift
					for j := 0; j < 1<<shift; j++ {
						d.lut[base+j] = uint16(l)<<8 | uint16(vals[k])
					}
				}
				code++
				k++
			}
			d.maxcode[l] = code - 1
		}
		if code > 1<<l {
			return corrupt("bad Huffman table: over-subscribed")
		}
		code <<= 1
	}
	d.maxcode[17] = 0x7fffffff
	for i, e := range d.lut {
		l, rs := uint(e>>8), byte(e)
		r, sz := int32(rs>>4), uint(rs&15)
		if e == 0 || sz == 0 || l+sz > lutBits {
			continue
		}
		extra := int32(i>>(lutBits-l-sz)) & (1<<sz - 1)
		d.fast[i] = extend(extra, sz)<<16 | r<<8 | int32(l+sz)
	}
	d.defined = true
	return nil
}

// bitReader reads entropy-coded bits, removing byte stuffing. At a marker
// or the end of data it feeds zeros and remembers how many, so a scan that
// consumed them is known to be truncated.
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64
	n      uint // valid bits in acc (its low bits)
	fake   uint // zero bytes fed after a marker or the end
	marker bool
}

func (br *bitReader) reset(data []byte, pos int) {
	*br = bitReader{data: data, pos: pos}
}

func (br *bitReader) fill() {
	// Fast path: 6 bytes with no 0xFF among them.
	if !br.marker && br.n <= 16 && br.pos+6 <= len(br.data) {
		d := br.data[br.pos : br.pos+6]
		if d[0] != 0xFF && d[1] != 0xFF && d[2] != 0xFF && d[3] != 0xFF && d[4] != 0xFF && d[5] != 0xFF {
			br.acc = br.acc<<48 | uint64(d[0])<<40 | uint64(d[1])<<32 | uint64(d[2])<<24 | uint64(d[3])<<16 | uint64(d[4])<<8 | uint64(d[5])
			br.n += 48
			br.pos += 6
			return
		}
	}
	for br.n <= 56 {
		var b byte
		if br.marker || br.pos >= len(br.data) {
			br.fake++
		} else if b = br.data[br.pos]; b != 0xFF {
			br.pos++
		} else if br.pos+1 < len(br.data) && br.data[br.pos+1] == 0 {
			br.pos += 2
		} else {
			br.marker = true
			b = 0
			br.fake++
		}
		br.acc = br.acc<<8 | uint64(b)
		br.n += 8
	}
}

// peek returns the next lutBits bits, with at least 16 bits buffered.
func (br *bitReader) peek() int {
	if br.n < 16 {
		br.fill()
	}
	return int(br.acc>>(br.n-lutBits)) & (1<<lutBits - 1)
}

// bits reads n (≤ 16) bits.
func (br *bitReader) bits(n uint) int32 {
	if n == 0 {
		return 0
	}
	if br.n < n {
		br.fill()
	}
	br.n -= n
	return int32(br.acc>>br.n) & (1<<n - 1)
}

func (br *bitReader) bit() bool {
	if br.n == 0 {
		br.fill()
	}
	br.n--
	return br.acc>>br.n&1 != 0
}

// truncated reports whether the scan consumed bits that were not in the data.
func (br *bitReader) truncated() bool { return br.n < br.fake*8 }

// decode reads one Huffman-coded value.
func (br *bitReader) decode(d *huffDecoder) (byte, error) {
	if br.n < 16 {
		br.fill()
	}
	e := d.lut[(br.acc>>(br.n-lutBits))&(1<<lutBits-1)]
	if e != 0 {
		br.n -= uint(e >> 8)
		return byte(e), nil
	}
	code := int32(br.acc>>(br.n-lutBits)) & (1<<lutBits - 1)
	br.n -= lutBits
	for l := lutBits + 1; l <= 16; l++ {
		code = code<<1 | int32(br.acc>>(br.n-1)&1)
		br.n--
		if code <= d.maxcode[l] {
			return d.vals[d.valptr[l]+code-d.mincode[l]], nil
		}
	}
	return 0, corrupt("bad Huffman code")
}

// extend turns an s-bit JPEG magnitude category value into its signed value.
func extend(v int32, s uint) int32 {
	if s == 0 {
		return 0
	}
	if v < 1<<(s-1) {
		return v - (1 << s) + 1
	}
	return v
}

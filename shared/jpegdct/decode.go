package jpegdct

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// The largest quantised coefficients 8-bit JPEG can carry: larger ones are
// corrupt (and would not fit the int16 we keep them in once shifted).
const (
	maxDC = 2047
	maxAC = 1023
)

// Limits bound what Decode allocates.
type Limits struct {
	MaxPixels int64 // 0: no limit
}

type decoder struct {
	img      Image
	data     []byte
	dc, ac   [4]huffDecoder
	restart  int
	adobe    bool
	adobeTx  int
	jfif     bool
	frameSet bool
	br       bitReader
	eobrun   int32
	limits   Limits
	scans    int
	// stream, when set, may take a baseline image's one interleaved scan
	// row by row (see streamer); the image then holds no coefficients.
	stream *streamer
	// dcOnly says the caller uses only the DC coefficients: a progressive
	// image's AC scans are skipped. (A scan of a band past what a caller
	// uses cannot be skipped in general: a later refinement scan reaching
	// into the band needs its history.)
	dcOnly bool
	// prepare, when set, is called once the frame is known, before the
	// first scan is decoded.
	prepare func(d *decoder)
}

// Decode reads a JPEG's quantised coefficients. Inputs outside what this
// package handles give an *Unsupported error; malformed ones wrap
// ErrCorrupt.
func Decode(data []byte, lim Limits) (*Image, error) {
	d := &decoder{data: data, limits: lim}
	if err := d.run(); err != nil {
		return nil, err
	}
	return &d.img, nil
}

func (d *decoder) run() error {
	data := d.data
	if len(data) < 4 || data[0] != 0xFF || data[1] != soiMarker {
		return corrupt("missing SOI")
	}
	pos := 2
	scans := 0
	for {
		// Find the next marker, skipping fill bytes.
		for pos < len(data) && data[pos] != 0xFF {
			pos++
		}
		for pos < len(data) && data[pos] == 0xFF {
			pos++
		}
		if pos >= len(data) {
			return corrupt("no EOI")
		}
		m := data[pos]
		pos++
		switch {
		case m == eoiMarker:
			if !d.frameSet || scans == 0 {
				return corrupt("no image data")
			}
			if err := d.checkCoded(); err != nil {
				return err
			}
			return d.finish()
		case isRST(m), m == temMarker, m == 0x00:
			// RSTn and TEM have no length; FF 00 outside a scan is stray
			// data, skipped as libjpeg and image/jpeg skip it.
			continue
		}
		if pos+2 > len(data) {
			return corrupt("truncated segment")
		}
		n := int(binary.BigEndian.Uint16(data[pos:]))
		if n < 2 || pos+n > len(data) {
			return corrupt("segment length %d", n)
		}
		seg := data[pos+2 : pos+n]
		pos += n
		var err error
		switch {
		case m == sof0Marker || m == sof1Marker || m == sof2Marker:
			err = d.frame(seg, m == sof2Marker)
		case m >= sof3Marker && m <= sof15Marker && m != dhtMarker && m != jpgMarker && m != dacMarker:
			// lossless, hierarchical, arithmetic
			return unsupported("coding")
		case m == dhtMarker:
			err = d.dht(seg)
		case m == dacMarker:
			return unsupported("arithmetic")
		case m == dqtMarker:
			err = d.dqt(seg)
		case m == driMarker:
			if len(seg) < 2 {
				return corrupt("DRI")
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
		case m == sosMarker:
			if !d.frameSet {
				return corrupt("scan before frame")
			}
			if pos, err = d.scan(seg, pos); err != nil {
				return err
			}
			scans++
			d.scans++
		case m == app0Marker:
			d.jfif = bytes.HasPrefix(seg, []byte("JFIF\x00"))
		case m == app1Marker:
			if bytes.HasPrefix(seg, []byte("Exif\x00\x00")) && d.img.orientation == 0 {
				d.img.orientation = exifOrientation(seg[6:])
			}
		case m == app2Marker:
			if bytes.HasPrefix(seg, []byte("ICC_PROFILE\x00")) && !iccIsSRGB(seg) {
				return unsupported("icc_profile")
			}
		case m == app14Marker:
			if bytes.HasPrefix(seg, []byte("Adobe")) && len(seg) >= 12 {
				d.adobe, d.adobeTx = true, int(seg[11])
			}
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) finish() error {
	m := &d.img
	if len(m.comps) == 3 {
		if d.adobe && d.adobeTx == 0 {
			return unsupported("rgb")
		}
		if !d.jfif && !d.adobe && m.comps[0].id == 'R' && m.comps[1].id == 'G' && m.comps[2].id == 'B' {
			return unsupported("rgb")
		}
	}
	for _, c := range m.comps {
		if !d.img.qtSet[c.tq] {
			return corrupt("missing quantisation table %d", c.tq)
		}
	}
	return nil
}

// checkCoded refuses an image with a component that no scan coded
// (image/jpeg leaves such a plane at 0, not at mid-grey).
func (d *decoder) checkCoded() error {
	for _, c := range d.img.comps {
		if !c.coded {
			return corrupt("component %d is in no scan", c.id)
		}
	}
	return nil
}

func (d *decoder) frame(seg []byte, progressive bool) error {
	if d.frameSet {
		return corrupt("second frame")
	}
	if len(seg) < 6 {
		return corrupt("SOF")
	}
	if seg[0] != 8 {
		return unsupported("precision")
	}
	m := &d.img
	m.Progressive = progressive
	m.Height = int(binary.BigEndian.Uint16(seg[1:]))
	m.Width = int(binary.BigEndian.Uint16(seg[3:]))
	nc := int(seg[5])
	if m.Width == 0 || m.Height == 0 {
		return unsupported("dnl_height")
	}
	if nc != 1 && nc != 3 {
		return unsupported("components")
	}
	if len(seg) < 6+3*nc {
		return corrupt("SOF")
	}
	if d.limits.MaxPixels > 0 && int64(m.Width)*int64(m.Height) > d.limits.MaxPixels {
		return unsupported("too_many_pixels")
	}
	m.comps = make([]component, nc)
	for i := range m.comps {
		c := &m.comps[i]
		c.id = seg[6+3*i]
		c.h, c.v = int(seg[7+3*i]>>4), int(seg[7+3*i]&15)
		c.tq = int(seg[8+3*i])
		if c.tq > 3 || c.h < 1 || c.v < 1 || c.h > 4 || c.v > 4 {
			return corrupt("SOF component")
		}
		for j := 0; j < i; j++ {
			if m.comps[j].id == c.id {
				return corrupt("duplicate component id")
			}
		}
	}
	if nc == 1 {
		m.comps[0].h, m.comps[0].v = 1, 1
	} else {
		// Luma 1x1, 2x1, 1x2 or 2x2; chroma 1x1.
		y := m.comps[0]
		if y.h > 2 || y.v > 2 || m.comps[1].h != 1 || m.comps[1].v != 1 || m.comps[2].h != 1 || m.comps[2].v != 1 {
			return unsupported("sampling")
		}
	}
	m.hmax, m.vmax = m.comps[0].h, m.comps[0].v
	m.mcusX = (m.Width + 8*m.hmax - 1) / (8 * m.hmax)
	m.mcusY = (m.Height + 8*m.vmax - 1) / (8 * m.vmax)
	for i := range m.comps {
		c := &m.comps[i]
		cw := (m.Width*c.h + m.hmax - 1) / m.hmax
		ch := (m.Height*c.v + m.vmax - 1) / m.vmax
		c.bw, c.bh = (cw+7)/8, (ch+7)/8
		c.stride, c.rows = m.mcusX*c.h, m.mcusY*c.v
	}
	d.frameSet = true
	return nil
}

func (d *decoder) dqt(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return corrupt("DQT")
		}
		seg = seg[1:]
		t := &d.img.qt[tq]
		if pq == 0 {
			if len(seg) < 64 {
				return corrupt("DQT")
			}
			for k := 0; k < 64; k++ {
				t[k] = uint16(seg[k])
			}
			seg = seg[64:]
		} else {
			if len(seg) < 128 {
				return corrupt("DQT")
			}
			for k := 0; k < 64; k++ {
				t[k] = binary.BigEndian.Uint16(seg[2*k:])
			}
			seg = seg[128:]
		}
		for k := 0; k < 64; k++ {
			if t[k] == 0 {
				return corrupt("zero quantiser")
			}
		}
		d.img.qtSet[tq] = true
	}
	return nil
}

func (d *decoder) dht(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return corrupt("DHT")
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return corrupt("DHT class")
		}
		var counts [16]int
		total := 0
		for i := range counts {
			counts[i] = int(seg[1+i])
			total += counts[i]
		}
		if len(seg) < 17+total {
			return corrupt("DHT")
		}
		t := &d.dc[th]
		if tc == 1 {
			t = &d.ac[th]
		}
		if err := t.build(counts, seg[17:17+total]); err != nil {
			return err
		}
		seg = seg[17+total:]
	}
	return nil
}

// scanComp is one component of a scan.
type scanComp struct {
	c      *component
	dc, ac *huffDecoder
	pred   int32
	// h, v: the component's blocks across and down in one MCU of this
	// scan (its sampling factors when the scan is interleaved, else 1).
	h, v int
}

// scanHeader is a start-of-scan segment: its components and their tables,
// the spectral band ss..se and the successive approximation bits ah, al.
type scanHeader struct {
	comps  []scanComp
	ss, se int
	ah, al uint
}

// scan decodes one scan; pos is where its entropy-coded data starts. It
// returns the position after the data (at the next marker).
func (d *decoder) scan(seg []byte, pos int) (int, error) {
	h, err := d.scanHeader(seg)
	if err != nil {
		return 0, err
	}
	if d.stream != nil && d.stream.on {
		return 0, corrupt("another scan after a complete interleaved baseline scan")
	}
	streaming := false
	if d.scans == 0 {
		if streaming, err = d.firstScan(len(h.comps)); err != nil {
			return 0, err
		}
	}
	d.br.reset(d.data, pos)
	d.eobrun = 0
	if d.img.Progressive && d.dcOnly && h.ss > 0 {
		return d.scanEnd(), nil // frequencies the caller drops
	}
	if err := d.scanMCUs(h.comps, d.blockDecoder(h), streaming); err != nil {
		return 0, err
	}
	if d.br.truncated() {
		return 0, corrupt("truncated scan data")
	}
	if d.eobrun > 0 {
		// An EOB run may not reach past its scan (libjpeg resets it per
		// scan; image/jpeg carries it into the next one).
		return 0, corrupt("EOB run past the end of the scan")
	}
	return d.scanEnd(), nil
}

// scanHeader reads and checks a start-of-scan segment against the frame:
// known components, defined tables, parameters the coding allows.
func (d *decoder) scanHeader(seg []byte) (scanHeader, error) {
	m := &d.img
	if len(seg) < 1 {
		return scanHeader{}, corrupt("SOS")
	}
	ns := int(seg[0])
	if ns < 1 || ns > len(m.comps) || len(seg) != 4+2*ns {
		return scanHeader{}, corrupt("SOS")
	}
	sc := make([]scanComp, ns)
	for i := range sc {
		id, sel := seg[1+2*i], seg[2+2*i]
		for j := range m.comps {
			if m.comps[j].id == id {
				sc[i].c = &m.comps[j]
			}
		}
		if sc[i].c == nil {
			return scanHeader{}, corrupt("SOS component")
		}
		sc[i].c.coded = true
		td, ta := sel>>4, sel&15
		if td > 3 || ta > 3 {
			return scanHeader{}, corrupt("SOS table")
		}
		sc[i].dc, sc[i].ac = &d.dc[td], &d.ac[ta]
		sc[i].h, sc[i].v = 1, 1
		if ns > 1 {
			sc[i].h, sc[i].v = sc[i].c.h, sc[i].c.v
		}
	}
	h := scanHeader{comps: sc, ss: int(seg[1+2*ns]), se: int(seg[2+2*ns]),
		ah: uint(seg[3+2*ns] >> 4), al: uint(seg[3+2*ns] & 15)}
	ss, se, ah, al := h.ss, h.se, h.ah, h.al
	if !m.Progressive {
		if ss != 0 || se != 63 || ah != 0 || al != 0 {
			return scanHeader{}, corrupt("baseline scan parameters")
		}
	} else if se > 63 || ss > se || (ss == 0 && se != 0) || (ss > 0 && ns != 1) || al > 13 || (ah != 0 && ah != al+1) {
		return scanHeader{}, corrupt("progressive scan parameters")
	}
	for _, s := range sc {
		needDC := ss == 0 && ah == 0
		needAC := se > 0
		if (needDC && !s.dc.defined) || (needAC && !s.ac.defined) {
			return scanHeader{}, corrupt("missing Huffman table")
		}
	}
	return h, nil
}

// firstScan prepares the image for its first scan, of ns components: a
// baseline image's one interleaved scan may be streamed (streaming is
// true: it holds no coefficients), else every component gets its
// coefficients, and in a progressive image its masks.
func (d *decoder) firstScan(ns int) (streaming bool, err error) {
	m := &d.img
	if d.prepare != nil {
		d.prepare(d)
	}
	if d.stream != nil && !m.Progressive && ns == len(m.comps) {
		if err := d.stream.start(d); err != nil {
			return false, err
		}
		streaming = d.stream.on
	}
	if !streaming {
		for i := range m.comps {
			c := &m.comps[i]
			c.alloc(c.rows)
			if m.Progressive {
				c.nz = make([]uint64, len(c.end))
			}
		}
	}
	return streaming, nil
}

// blockDecoder returns what decodes block i's part of scan h: its
// coefficients, its nonzero extent (raised as coefficients become
// nonzero) and, in a progressive image, its mask of nonzero AC
// coefficients.
func (d *decoder) blockDecoder(h scanHeader) func(s *scanComp, i int) error {
	ss, se, al := h.ss, h.se, h.al
	switch {
	case !d.img.Progressive:
		return func(s *scanComp, i int) error {
			return d.baselineBlock(s, s.c.coef[i*64:i*64+64:i*64+64], &s.c.end[i])
		}
	case ss == 0 && h.ah == 0:
		return func(s *scanComp, i int) error { return d.dcFirst(s, s.c.coef[i*64:i*64+64:i*64+64], &s.c.end[i], al) }
	case ss == 0:
		return func(s *scanComp, i int) error {
			if d.br.bit() {
				s.c.coef[i*64] |= 1 << al
				s.c.end[i] = max(s.c.end[i], 1)
			}
			return nil
		}
	case h.ah == 0:
		return func(s *scanComp, i int) error {
			return d.acFirst(s, s.c.coef[i*64:i*64+64:i*64+64], &s.c.end[i], &s.c.nz[i], ss, se, al)
		}
	default:
		return func(s *scanComp, i int) error {
			return d.acRefine(s, s.c.coef[i*64:i*64+64:i*64+64], &s.c.end[i], &s.c.nz[i], ss, se, al)
		}
	}
}

// scanMCUs decodes a scan's MCUs in order with block, expecting a restart
// marker after every d.restart of them. An interleaved scan's MCU holds
// each component's h×v blocks; a scan of one component has one block an
// MCU, its blocks covering the component unpadded. With streaming, each
// row of MCUs is handed to the streamer as it is decoded.
func (d *decoder) scanMCUs(sc []scanComp, block func(s *scanComp, i int) error, streaming bool) error {
	cols, rows := d.img.mcusX, d.img.mcusY
	if len(sc) == 1 {
		cols, rows = sc[0].c.bw, sc[0].c.bh
	}
	total, mcus := cols*rows, 0
	for my := 0; my < rows; my++ {
		if d.br.fake > 16 {
			return corrupt("scan data ends early")
		}
		if streaming { // one component: a block row is an MCU row
			d.stream.beginRow(my)
		}
		for mx := 0; mx < cols; mx++ {
			for i := range sc {
				s := &sc[i]
				for v := 0; v < s.v; v++ {
					for h := 0; h < s.h; h++ {
						if err := block(s, s.c.index(mx*s.h+h, my*s.v+v)); err != nil {
							return err
						}
					}
				}
			}
			mcus++
			if d.restart > 0 && mcus < total && mcus%d.restart == 0 {
				if err := d.restartMarker(sc); err != nil {
					return err
				}
			}
		}
		if streaming {
			d.stream.endRow(my)
		}
	}
	return nil
}

// scanEnd finds the marker that ends the current entropy-coded segment.
func (d *decoder) scanEnd() int {
	p := d.br.pos
	for p+1 < len(d.data) && !(d.data[p] == 0xFF && d.data[p+1] != 0 && !isRST(d.data[p+1])) {
		p++
	}
	return p
}

// restartMarker expects RSTn at the reader's position and resets the
// decoder state for the next interval.
func (d *decoder) restartMarker(sc []scanComp) error {
	if d.br.truncated() {
		return corrupt("truncated before restart marker")
	}
	p := d.br.pos
	for p < len(d.data) && d.data[p] != 0xFF {
		p++ // tolerate garbage before the marker, as libjpeg does
	}
	for p < len(d.data) && d.data[p] == 0xFF {
		p++
	}
	if p >= len(d.data) || !isRST(d.data[p]) {
		return corrupt("missing restart marker")
	}
	d.br.reset(d.data, p+1)
	for i := range sc {
		sc[i].pred = 0
	}
	d.eobrun = 0
	return nil
}

// decodeDC reads one DC difference and returns the component's new
// prediction.
func (d *decoder) decodeDC(s *scanComp) (int32, error) {
	t, err := d.br.decode(s.dc)
	if err != nil {
		return 0, err
	}
	if t > 11 {
		return 0, corrupt("DC magnitude")
	}
	s.pred += extend(d.br.bits(uint(t)), uint(t))
	return s.pred, nil
}

func (d *decoder) baselineBlock(s *scanComp, blk []int16, end *uint8) error {
	dc, err := d.decodeDC(s)
	if err != nil {
		return err
	}
	if dc < -maxDC || dc > maxDC {
		return corrupt("DC coefficient %d out of range", dc)
	}
	blk[0] = int16(dc)
	if dc != 0 {
		*end = 1
	}
	ac := s.ac
	for k := 1; k < 64; {
		if e := ac.fast[d.br.peek()]; e != 0 {
			d.br.n -= uint(e & 0xFF)
			k += int(e>>8) & 0xFF
			if k > 63 {
				return corrupt("coefficient index")
			}
			blk[k] = int16(e >> 16)
			k++
			*end = uint8(k)
			continue
		}
		rs, err := d.br.decode(ac)
		if err != nil {
			return err
		}
		r, sz := int(rs>>4), uint(rs&15)
		if sz == 0 {
			if r != 15 {
				break
			}
			k += 16
			continue
		}
		k += r
		if k > 63 {
			return corrupt("coefficient index")
		}
		if sz > 10 {
			return corrupt("AC magnitude")
		}
		blk[k] = int16(extend(d.br.bits(sz), sz))
		k++
		*end = uint8(k)
	}
	return nil
}

func (d *decoder) dcFirst(s *scanComp, blk []int16, end *uint8, al uint) error {
	dc, err := d.decodeDC(s)
	if dc <<= al; dc < -maxDC || dc > maxDC {
		return corrupt("DC coefficient %d out of range", dc)
	}
	blk[0] = int16(dc)
	if dc != 0 {
		*end = max(*end, 1)
	}
	return err
}

func (d *decoder) acFirst(s *scanComp, blk []int16, end *uint8, nz *uint64, ss, se int, al uint) error {
	if d.eobrun > 0 {
		d.eobrun--
		return nil
	}
	for k := ss; k <= se; k++ {
		if e := s.ac.fast[d.br.peek()]; e != 0 {
			d.br.n -= uint(e & 0xFF)
			k += int(e>>8) & 0xFF
			if k > se {
				return corrupt("coefficient past the scan's band")
			}
			v := (e >> 16) << al
			if v < -maxAC || v > maxAC {
				return corrupt("AC coefficient %d out of range", v)
			}
			blk[k] = int16(v)
			*nz |= 1 << k
			*end = max(*end, uint8(k+1))
			continue
		}
		rs, err := d.br.decode(s.ac)
		if err != nil {
			return err
		}
		r, sz := int(rs>>4), uint(rs&15)
		if sz == 0 {
			if r < 15 {
				d.eobrun = 1<<r - 1
				if r > 0 {
					d.eobrun += d.br.bits(uint(r))
				}
				break
			}
			k += 15
			continue
		}
		k += r
		if k > se {
			return corrupt("coefficient past the scan's band")
		}
		v := extend(d.br.bits(sz), sz) << al
		if v < -maxAC || v > maxAC {
			return corrupt("AC coefficient %d out of range", v)
		}
		blk[k] = int16(v)
		*nz |= 1 << k
		*end = max(*end, uint8(k+1))
	}
	return nil
}

// acRefine decodes a block's part of an AC refinement scan. Which
// coefficients are nonzero is read from the block's mask nz, not from the
// coefficients: zero runs and correction bits then come from bit
// arithmetic instead of a branch per coefficient (which, in a busy block,
// is as good as random).
func (d *decoder) acRefine(s *scanComp, blk []int16, end *uint8, nz *uint64, ss, se int, al uint) error {
	blk = blk[:64:64]
	if se > 63 || ss < 1 {
		return corrupt("refinement band %d..%d", ss, se)
	}
	p1 := int16(1) << al
	br := &d.br
	m := *nz
	band := ^uint64(0) >> (63 - uint(se)) &^ (1<<uint(ss) - 1) // bits ss..se
	e := int(*end)
	k := ss
	if d.eobrun == 0 {
		for k <= se {
			// The table lookup inline; longer codes through decode.
			if br.n < 16 {
				br.fill()
			}
			var rs byte
			if e := s.ac.lut[(br.acc>>(br.n-lutBits))&(1<<lutBits-1)]; e != 0 {
				br.n -= uint(e >> 8)
				rs = byte(e)
			} else {
				var err error
				if rs, err = br.decode(s.ac); err != nil {
					return err
				}
			}
			r, sz := int(rs>>4), int(rs&15)
			var val int16
			if sz != 0 {
				if sz != 1 {
					return corrupt("refinement magnitude")
				}
				if br.bit() {
					val = p1
				} else {
					val = -p1
				}
			} else if r != 15 {
				d.eobrun = 1 << r
				if r > 0 {
					d.eobrun += br.bits(uint(r))
				}
				break
			}
			// The (r+1)-th zero coefficient from k on: where the new one
			// goes (or, for ZRL, the 16th zero, passed over). The nonzero
			// ones before it get their correction bits.
			z := ^m & band &^ (1<<uint(k) - 1)
			for ; r > 0 && z != 0; r-- {
				z &= z - 1
			}
			if z == 0 {
				return corrupt("coefficient past the scan's band")
			}
			p := bits.TrailingZeros64(z)
			if c := m & (1<<uint(p) - 1) &^ (1<<uint(k) - 1); c != 0 {
				d.correct(blk, c, p1)
			}
			k = p
			if val != 0 {
				blk[k] = val
				m |= 1 << uint(k)
				e = max(e, k+1)
			}
			k++
		}
	}
	if d.eobrun > 0 {
		// In an EOB run only the nonzero coefficients get correction bits.
		if c := m & band &^ (1<<uint(k) - 1); c != 0 {
			d.correct(blk, c, p1)
		}
		d.eobrun--
	}
	*nz, *end = m, uint8(e)
	return nil
}

// correct reads one correction bit for each coefficient in mask c, in
// order of position, up to 16 bits at a read.
func (d *decoder) correct(blk []int16, c uint64, p1 int16) {
	br := &d.br
	for c != 0 {
		n := min(uint(bits.OnesCount64(c)), 16)
		if br.n < n {
			br.fill()
		}
		br.n -= n
		v := br.acc >> br.n
		for i := n; i > 0; i-- {
			k := bits.TrailingZeros64(c)
			c &= c - 1
			blk[k&63] = refined(blk[k&63], p1, int16(v>>(i-1))&1)
		}
	}
}

// refined is nonzero coefficient c after its correction bit: 1 adds p1 to
// its magnitude (once). Branch-free: correction bits are as good as
// random, so a branch on them mispredicts half the time.
func refined(c, p1, bit int16) int16 {
	if c&p1 != 0 { // (never, in a well-formed stream)
		return c
	}
	sign := c >> 15 // 0 or -1
	return c + ((p1^sign)-sign)&-bit
}

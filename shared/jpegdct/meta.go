package jpegdct

import (
	"bytes"
	"encoding/binary"
)

// ExifOrientation reads the orientation tag (1..8) from an EXIF TIFF
// structure (an APP1 segment after its "Exif\0\0" prefix); 0 when absent or
// unreadable.
func ExifOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := int(bo.Uint32(t[4:]))
	if off < 8 || off+2 > len(t) {
		return 0
	}
	n := int(bo.Uint16(t[off:]))
	for k := 0; k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > len(t) {
			return 0
		}
		if bo.Uint16(t[e:]) == 0x0112 {
			if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
				return v
			}
			return 0
		}
	}
	return 0
}

func exifOrientation(t []byte) int { return ExifOrientation(t) }

// iccIsSRGB reports whether an APP2 ICC_PROFILE segment describes sRGB (its
// description names it, in ASCII or UTF-16). Continuation chunks are not
// judged: the description sits in the first.
func iccIsSRGB(seg []byte) bool {
	const prefix = len("ICC_PROFILE\x00")
	if len(seg) < prefix+2 || seg[prefix] != 1 {
		return true
	}
	p := seg[prefix+2:]
	return bytes.Contains(p, []byte("sRGB")) || bytes.Contains(p, []byte("s\x00R\x00G\x00B"))
}

// Quality estimates the IJG quality (1..100) the image was written at: the
// quality whose scaled standard luma table is nearest its own (sum of
// absolute differences). Encoders with tables of their own (some cameras,
// Photoshop) get the nearest IJG quality; 0 when the luma table is unknown.
func (m *Image) Quality() int {
	if len(m.comps) == 0 || !m.qtSet[m.comps[0].tq] {
		return 0
	}
	t := &m.qt[m.comps[0].tq]
	best, bestDiff := 0, -1
	for q := 1; q <= 100; q++ {
		luma, _ := QualityTables(q)
		diff := 0
		for k := range luma {
			d := int(luma[k]) - int(t[k])
			diff += max(d, -d)
		}
		if bestDiff < 0 || diff < bestDiff {
			best, bestDiff = q, diff
		}
	}
	return best
}

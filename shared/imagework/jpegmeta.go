package imagework

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/imgpipe/imgpipe/shared/jpegdct"
)

var errNotJPEG = errors.New("not a JPEG stream")

// segment is one marker segment before the scan data.
type segment struct {
	marker byte
	data   []byte // the payload after the length bytes
	raw    []byte // marker, length and payload
}

// jpegSegments splits a JPEG into its header segments and the rest (from the
// first SOS on, kept verbatim).
func jpegSegments(b []byte) (segs []segment, scan []byte, err error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, nil, errNotJPEG
	}
	i := 2
	for i < len(b) {
		if b[i] != 0xFF {
			return nil, nil, errors.New("JPEG: expected a marker")
		}
		for i < len(b) && b[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(b) {
			break
		}
		m := b[i]
		start := i - 1
		i++
		if m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 {
			continue
		}
		if m == 0xDA || m == 0xD9 {
			return segs, b[start:], nil
		}
		if i+2 > len(b) {
			return nil, nil, errors.New("JPEG: truncated segment length")
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 || i+n > len(b) {
			return nil, nil, errors.New("JPEG: segment runs past the end")
		}
		segs = append(segs, segment{marker: m, data: b[i+2 : i+n], raw: b[start : i+n]})
		i += n
	}
	return nil, nil, errors.New("JPEG: no scan")
}

// StripJPEGMetadata removes EXIF, XMP, IPTC, comments and other APPn
// segments without touching the image data. It keeps JFIF (APP0), the ICC
// profile (APP2) and the Adobe segment (APP14), which decoders need to get
// the colours right.
func StripJPEGMetadata(b []byte) ([]byte, error) {
	segs, scan, err := jpegSegments(b)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b))
	out = append(out, 0xFF, 0xD8)
	for _, s := range segs {
		switch {
		case s.marker == 0xE0, s.marker == 0xEE:
		case s.marker == 0xE2 && bytes.HasPrefix(s.data, []byte("ICC_PROFILE\x00")):
		case s.marker >= 0xE1 && s.marker <= 0xEF, s.marker == 0xFE:
			continue
		}
		out = append(out, s.raw...)
	}
	return append(out, scan...), nil
}

// exifOrientation returns the EXIF Orientation (1..8) of a JPEG, or 0 when
// there is none or it cannot be read.
func exifOrientation(b []byte) int {
	segs, _, err := jpegSegments(b)
	if err != nil {
		return 0
	}
	for _, s := range segs {
		if s.marker != 0xE1 || !bytes.HasPrefix(s.data, []byte("Exif\x00\x00")) {
			continue
		}
		if v := jpegdct.ExifOrientation(s.data[6:]); v != 0 {
			return v
		}
		return 0
	}
	return 0
}

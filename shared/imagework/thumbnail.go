package imagework

import (
	"bytes"

	"github.com/disintegration/imaging"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// Thumbnail decodes an image (within lim), turns it upright by its EXIF
// orientation, fits it inside maxSide × maxSide and encodes it as a JPEG:
// what the status page shows beside each product instead of the image.
func Thumbnail(in []byte, maxSide int, lim Limits) ([]byte, error) {
	if _, _, err := CheckHeader(in, lim); err != nil {
		return nil, err
	}
	img, err := imaging.Decode(bytes.NewReader(in), imaging.AutoOrientation(true))
	if err != nil {
		return nil, fault.Wrap(fault.Permanent, ReasonCorrupt, err, "decoding the image")
	}
	b := img.Bounds()
	if b.Dx() > maxSide || b.Dy() > maxSide {
		img = imaging.Fit(img, maxSide, maxSide, imaging.CatmullRom)
	}
	return encodeOnWhite(img, 75), nil
}

package imagework

// Thumbnail decodes an image (within lim), turns it upright by its EXIF
// orientation, fits it inside maxSide × maxSide and encodes it as a JPEG:
// what the status page shows beside each product instead of the image.
// It is Resize with one box, so a large JPEG is decoded scaled down.
func Thumbnail(in []byte, maxSide int, lim Limits) ([]byte, error) {
	r, err := Resize(in, 75, lim, []Box{{Width: maxSide, Height: maxSide}})
	if err != nil {
		return nil, err
	}
	return r[0].JPEG, nil
}

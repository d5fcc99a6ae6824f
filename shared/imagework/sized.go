package imagework

// Sized compresses in at quality q into its main output, fit inside main
// (the zero Box keeps the image's size), and one extra output per box of
// extra, in that order. Nothing is enlarged; EXIF orientation is applied.
//
//   - Without boxes it is Compress, byte for byte.
//   - A main output that keeps the image's size is Compress's (the DCT path
//     for a JPEG); an extra output of that same size shares its bytes, and
//     the smaller ones are scaled from the same decode of the coefficients
//     (jpegdct.RecompressFit), or from Resize's when the DCT path refuses.
//   - A main output that shrinks is made with the extra outputs by one
//     Resize: one decode, at the smallest scale that covers the largest.
func Sized(in []byte, q int, lim Limits, main Box, extra []Box) (Result, []Result, error) {
	if main == (Box{}) && len(extra) == 0 {
		res, err := Compress(in, q, lim)
		return res, nil, err
	}
	cfg, format, err := CheckHeader(in, lim)
	if err != nil {
		return Result{}, nil, err
	}
	w, h := cfg.Width, cfg.Height
	if format == "jpeg" && exifOrientation(in) >= 5 {
		w, h = h, w
	}
	if mw, mh := main.Fit(w, h); mw != w || mh != h {
		all, err := Resize(in, q, lim, append([]Box{main}, extra...))
		if err != nil {
			return Result{}, nil, err
		}
		return all[0], all[1:], nil
	}
	var smaller []Box
	var at []int // where each of smaller goes in the extra outputs
	for i, b := range extra {
		if bw, bh := b.Fit(w, h); bw != w || bh != h {
			smaller = append(smaller, b)
			at = append(at, i)
		}
	}
	// A JPEG recompressed in the DCT domain hands its coefficients to the
	// scaled decode of the smaller outputs as well: one decode for all.
	order := plan(smaller, w, h)
	var fit *fitTarget
	if len(smaller) > 0 && format == "jpeg" {
		ft := fitFor(order[0], 1)
		fit = &ft
	}
	res, planes, err := compress(in, q, lim, fit)
	if err != nil {
		return Result{}, nil, err
	}
	out := make([]Result, len(extra))
	for i := range extra {
		out[i] = res // the sizes it fits in already; the others follow
	}
	if len(smaller) > 0 {
		var rs []Result
		if len(planes) == 1 || len(planes) == 3 {
			// The DCT path refuses EXIF rotations, so these are upright.
			rs = fromPlanes(planes, q, 1, order, len(smaller))
		} else if rs, err = Resize(in, q, lim, smaller); err != nil {
			return Result{}, nil, err
		}
		for j, r := range rs {
			out[at[j]] = r
		}
	}
	return res, out, nil
}

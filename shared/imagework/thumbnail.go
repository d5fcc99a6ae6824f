package imagework

// SizedWithThumbnail is Sized, plus a thumbnail: the image fit inside
// side × side, a JPEG at quality q, what the status page shows of it. The
// main and extra outputs are Sized's, byte for byte.
//
//   - When an output fits side × side already, the largest such is the
//     thumbnail: no more work.
//   - Else, when Sized decodes once for all its outputs (a JPEG: its
//     coefficients at the smallest scale that covers the largest output;
//     or any image whose main output shrinks: one Resize), the thumbnail
//     is one more size of that decode, the smallest, made last, so no
//     other output changes.
//   - Else (another format kept at its size, compressed from a whole
//     decode that Sized would repeat for a smaller size) it is made from
//     the main output: our own JPEG, decoded at a fraction of its size.
//
// The thumbnail is nil, and the outputs stand, when the main output fails
// to decode (never, for outputs Sized makes).
func SizedWithThumbnail(in []byte, q int, lim Limits, main Box, extra []Box, side int) (Result, []Result, []byte, error) {
	// The pixel cap is the user's outputs'; the thumbnail (a few thousand
	// pixels) rides along outside it, as the upload's check counts it.
	if err := checkOutputPixels(lim, main, extra); err != nil {
		return Result{}, nil, nil, err
	}
	cfg, format, err := CheckHeader(in, lim)
	if err != nil {
		return Result{}, nil, nil, err
	}
	w, h := cfg.Width, cfg.Height
	if format == "jpeg" && exifOrientation(in) >= 5 {
		w, h = h, w
	}
	// fitting is the output (0 the main one, i+1 extra[i]) to show as the
	// thumbnail, -1 when none fits side × side.
	fitting, area := -1, 0
	mw, mh := main.Fit(w, h)
	for i, b := range append([]Box{main}, extra...) {
		if ow, oh := b.Fit(w, h); ow <= side && oh <= side && ow*oh > area {
			fitting, area = i, ow*oh
		}
	}
	box := Box{Width: side, Height: side}
	if fitting < 0 && (format == "jpeg" || mw != w || mh != h) {
		res, all, err := sized(in, q, lim, main, append(extra[:len(extra):len(extra)], box))
		if err != nil {
			return Result{}, nil, nil, err
		}
		return res, all[:len(extra)], all[len(extra)].JPEG, nil
	}
	res, out, err := sized(in, q, lim, main, extra)
	if err != nil {
		return Result{}, nil, nil, err
	}
	if fitting == 0 {
		return res, out, res.JPEG, nil
	} else if fitting > 0 {
		return res, out, out[fitting-1].JPEG, nil
	}
	th, err := Resize(res.JPEG, q, lim, []Box{box})
	if err != nil {
		return res, out, nil, nil
	}
	return res, out, th[0].JPEG, nil
}

package imagework

import (
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// Sized compresses in at quality q into its main output, fit inside main
// (the zero Box keeps the image's size), and one extra output per box of
// extra, in that order. Nothing is enlarged; EXIF orientation is applied.
//
//   - Without boxes it is Compress, byte for byte.
//   - A main output that keeps the image's size is Compress's (the DCT path
//     for a JPEG); an extra output of that same size shares its bytes, and
//     the smaller ones are scaled from the same decode of the coefficients
//     (jpegdct.RecompressFit), or from Resize's when the DCT path refuses;
//     another format is decoded once for the main output and the smaller.
//   - A main output that shrinks is made with the extra outputs by one
//     Resize: one decode, at the smallest scale that covers the largest.
//
// Boxes whose outputs could add up to more than batch.OutputPixelCap are
// refused before anything is decoded, as the upload refuses them.
func Sized(in []byte, q int, lim Limits, main Box, extra []Box) (Result, []Result, error) {
	if err := checkOutputPixels(lim, main, extra); err != nil {
		return Result{}, nil, err
	}
	return sized(in, q, lim, main, extra)
}

// sized is Sized without the pixel cap's check.
func sized(in []byte, q int, lim Limits, main Box, extra []Box) (Result, []Result, error) {
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
	order := plan(smaller, w, h)
	// Another format is decoded once for all: the main output is the pixel
	// path's (Compress's, byte for byte), the smaller ones Resize's.
	if format != "jpeg" && len(smaller) > 0 {
		img, err := decodeUpright(in, format)
		if err != nil {
			return Result{}, nil, err
		}
		b := img.Bounds()
		res := Result{JPEG: encodeOnWhite(img, q), Format: format, Width: b.Dx(), Height: b.Dy(), Path: "pixel"}
		out := make([]Result, len(extra))
		for i := range extra {
			out[i] = res
		}
		for j, r := range fromImage(img, format, q, order, len(smaller)) {
			out[at[j]] = r
		}
		return res, out, nil
	}
	// A JPEG recompressed in the DCT domain hands its coefficients to the
	// scaled decode of the smaller outputs as well: one decode for all.
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

// checkOutputPixels refuses boxes whose outputs could add up to more than
// batch.OutputPixelCap for images within lim.
func checkOutputPixels(lim Limits, main Box, extra []Box) error {
	z := batch.Sizing{MaxWidth: main.Width, MaxHeight: main.Height}
	for _, b := range extra {
		z.Sizes = append(z.Sizes, batch.Size{Width: b.Width, Height: b.Height})
	}
	if err := z.CheckPixels(batch.ImageLimits{MaxPixels: lim.MaxPixels, MaxDimension: lim.MaxDimension}); err != nil {
		return fault.Wrap(fault.Permanent, ReasonTooManyPixels, err, "refused before decoding")
	}
	return nil
}

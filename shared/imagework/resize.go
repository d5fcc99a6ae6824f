package imagework

import (
	"image"
	"slices"

	"github.com/disintegration/imaging"

	"github.com/imgpipe/imgpipe/shared/jpegdct"
)

// Box is a size an output must fit inside; 0 leaves that side free.
type Box struct{ Width, Height int }

// Fit is the size of a w×h image fit inside b: the aspect ratio kept
// (rounded to the nearest pixel, at least 1), never larger than w×h.
func (b Box) Fit(w, h int) (int, int) {
	s := 1.0
	if b.Width > 0 && b.Width < w {
		s = float64(b.Width) / float64(w)
	}
	if b.Height > 0 && float64(b.Height) < s*float64(h) {
		s = float64(b.Height) / float64(h)
	}
	if s >= 1 {
		return w, h
	}
	return max(1, int(float64(w)*s+0.5)), max(1, int(float64(h)*s+0.5))
}

// Resize decodes in once and returns it fit inside each box, as JPEGs at
// quality q, in the order of boxes; EXIF orientation is applied.
//
// A JPEG is decoded at the smallest n/8 of its size (n = 1 … 8) that still
// covers the largest output, straight from its coefficients, each
// component at its own scale (jpegdct.DecodeFit: a 4:4:4 image's chroma at
// half the luma's), never at full size when that is not needed. The
// rest of the way each plane is resampled with imaging's Catmull–Rom kernel,
// from the largest output down to the smallest, each from the one before,
// then turned upright and encoded as 4:2:0 (or grayscale), with no colour
// conversion. Other images, and JPEGs jpegdct refuses (CMYK, arithmetic
// coding, …), are decoded whole: an RGBA or NRGBA one (PNG) is put on
// white and turned into planes in one pass and resized as a JPEG's planes
// are; other kinds (paletted GIF, 16-bit PNG) by imaging.Resize.
func Resize(in []byte, q int, lim Limits, boxes []Box) ([]Result, error) {
	cfg, format, err := CheckHeader(in, lim)
	if err != nil {
		return nil, err
	}
	orient := 0
	if format == "jpeg" {
		orient = exifOrientation(in)
	}
	// Sizes upright: orientations 5–8 swap the sides.
	w, h := cfg.Width, cfg.Height
	if orient >= 5 {
		w, h = h, w
	}
	// Largest first; each smaller one from the one before.
	order := plan(boxes, w, h)
	if format == "jpeg" {
		if out, ok := resizeJPEG(in, q, lim, orient, order, len(boxes)); ok {
			return out, nil
		}
	}
	img, err := decodeUpright(in, format)
	if err != nil {
		return nil, err
	}
	return fromImage(img, format, q, order, len(boxes)), nil
}

// fromImage is Resize's way from a decoded, upright image to the outputs
// of order (largest first; n in all).
func fromImage(img image.Image, format string, q int, order []want, n int) []Result {
	if planes, ok := pixelPlanes(img); ok {
		out := fromPlanes(planes, q, 1, order, n)
		for i := range out {
			out[i].Format = format
		}
		return out
	}
	src := img
	return eachSize(order, n, func(o want) Result {
		if b := src.Bounds(); b.Dx() != o.w || b.Dy() != o.h {
			src = imaging.Resize(src, o.w, o.h, resizeFilter)
		}
		return Result{JPEG: encodeOnWhite(src, q), Format: format, Width: o.w, Height: o.h, Path: "resize"}
	})
}

// eachSize makes the outputs of order (largest first; n in all) with
// output, in that order; a size equal to the one before it is not made
// again.
func eachSize(order []want, n int, output func(o want) Result) []Result {
	out := make([]Result, n)
	for k, o := range order {
		if k > 0 && out[order[k-1].i].Width == o.w && out[order[k-1].i].Height == o.h {
			out[o.i] = out[order[k-1].i]
			continue
		}
		out[o.i] = output(o)
	}
	return out
}

// resizeFilter is the resampling kernel after a scaled decode: Catmull–Rom
// (support 2) rather than Lanczos (support 3). The scaled decode has
// already done most of the shrinking, so Lanczos's third lobe buys little
// SSIM for its extra time and bytes (README.md, "Why Catmull–Rom").
var resizeFilter = imaging.CatmullRom

// want is one output's size, upright, and its place in the results.
type want struct{ i, w, h int }

// resizeJPEG is Resize's JPEG path, the sizes in order largest first; ok
// is false when jpegdct refuses the input.
func resizeJPEG(in []byte, q int, lim Limits, orient int, order []want, n int) ([]Result, bool) {
	ft := fitFor(order[0], orient)
	planes, _, err := jpegdct.DecodeFit(in, ft.luma, ft.chroma, jpegdct.Limits{MaxPixels: lim.MaxPixels})
	if err != nil || (len(planes) != 1 && len(planes) != 3) {
		return nil, false
	}
	return fromPlanes(planes, q, orient, order, n), true
}

// stored is output o's size as the JPEG stores it (orientations 5–8 swap
// the sides).
func stored(o want, orient int) (int, int) {
	if orient >= 5 {
		return o.h, o.w
	}
	return o.w, o.h
}

// fitFor is what a scaled decode must cover for the largest output:
// luma at least its size, chroma at least its 4:2:0 planes.
func fitFor(largest want, orient int) fitTarget {
	w, h := stored(largest, orient)
	return fitTarget{luma: image.Pt(w, h), chroma: image.Pt((w+1)/2, (h+1)/2)}
}

// fromPlanes makes the outputs of order (largest first; n in all) from a
// scaled decode's planes: each resampled from the one before, turned
// upright, encoded without colour conversion.
func fromPlanes(planes []jpegdct.Plane, q, orient int, order []want, n int) []Result {
	return eachSize(order, n, func(o want) Result {
		sw, sh := stored(o, orient)
		img := resampleTo(planes, sw, sh, resizeFilter)
		planes = planesOf(img)
		var jpg []byte
		switch m := orientImage(img, orient).(type) {
		case *image.YCbCr:
			jpg = jpegdct.EncodeYCbCr(m, q)
		case *image.Gray:
			jpg = jpegdct.EncodeGray(m, q)
		}
		return Result{JPEG: jpg, Format: "jpeg", Width: o.w, Height: o.h, Path: "resize"}
	})
}

// plan is the outputs of boxes for a w×h (upright) image, largest first.
func plan(boxes []Box, w, h int) []want {
	order := make([]want, len(boxes))
	for i, b := range boxes {
		ow, oh := b.Fit(w, h)
		order[i] = want{i, ow, oh}
	}
	slices.SortStableFunc(order, func(a, b want) int { return b.w*b.h - a.w*a.h })
	return order
}

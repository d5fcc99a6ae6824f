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
// quality q, in the order of boxes. A JPEG is decoded at the smallest of
// 1/1, 1/2, 1/4 and 1/8 of its size that still covers the largest output
// (jpegdct.DecodeScaled), never at full size when that is not needed; the
// rest of the way is Lanczos (imaging), from the largest output down to
// the smallest, each from the one before. EXIF orientation is applied.
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
	type want struct{ i, w, h int }
	wants := make([]want, len(boxes))
	big := 0
	for i, b := range boxes {
		ow, oh := b.Fit(w, h)
		wants[i] = want{i, ow, oh}
		if ow*oh > wants[big].w*wants[big].h {
			big = i
		}
	}
	img, err := decodeAtLeast(in, format, cfg.Width, cfg.Height, wants[big].w, wants[big].h, orient, lim)
	if err != nil {
		return nil, err
	}
	// Largest first; each smaller one from the one before.
	order := slices.Clone(wants)
	slices.SortStableFunc(order, func(a, b want) int { return b.w*b.h - a.w*a.h })
	out := make([]Result, len(boxes))
	src := img
	for k, o := range order {
		if k > 0 && out[order[k-1].i].Width == o.w && out[order[k-1].i].Height == o.h {
			out[o.i] = out[order[k-1].i] // the same size twice: encoded once
			continue
		}
		if b := src.Bounds(); b.Dx() != o.w || b.Dy() != o.h {
			src = imaging.Resize(src, o.w, o.h, imaging.Lanczos)
		}
		out[o.i] = Result{JPEG: encodeOnWhite(src, q), Format: format, Width: o.w, Height: o.h, Path: "resize"}
	}
	return out, nil
}

// decodeAtLeast decodes in (iw×ih as stored) upright, at least w×h
// (upright) where a scaled JPEG decode allows, else whole.
func decodeAtLeast(in []byte, format string, iw, ih, w, h, orient int, lim Limits) (image.Image, error) {
	if format == "jpeg" {
		if orient >= 5 {
			w, h = h, w // the stored image's sides
		}
		denom := 1
		for d := 8; d > 1; d /= 2 {
			if (iw+d-1)/d >= w && (ih+d-1)/d >= h {
				denom = d
				break
			}
		}
		// Refused (CMYK, arithmetic coding, …): the whole decode below.
		if img, _, err := jpegdct.DecodeScaled(in, denom, jpegdct.Limits{MaxPixels: lim.MaxPixels}); err == nil {
			return upright(img, orient), nil
		}
	}
	return decodeUpright(in, format)
}

// upright turns img by EXIF orientation o (1–8; others leave it).
func upright(img image.Image, o int) image.Image {
	switch o {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img)
	case 7:
		return imaging.Transverse(img)
	case 8:
		return imaging.Rotate90(img)
	}
	return img
}

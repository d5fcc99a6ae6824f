package imagework

import (
	"image"
	"math"

	"github.com/disintegration/imaging"

	"github.com/imgpipe/imgpipe/shared/jpegdct"
)

// A JPEG is resized as it is stored: its luma and chroma planes are each
// resampled to the output's 4:2:0 planes with imaging's filter kernel, in
// fixed point, turned upright, and encoded with no colour conversion. That
// is 1.5 samples a pixel where imaging.Resize works on 4 (it converts to
// NRGBA first), and the chroma of a 4:4:4 input is halved by the same
// filter that resizes it.

// fixedOne is 1.0 in the resampling weights' fixed point.
const fixedOne = 1 << 14

// taps are the weights of a 1-D resampling: output i is the weighted sum
// of n inputs from start[i], weights w[i*n : i*n+n] summing to fixedOne.
type taps struct {
	start []int
	n     int
	w     []int32
}

// newTaps computes the weights that resample in samples to out with
// filter f as imaging does (its sample centres, its support widened by
// the scale when shrinking, inputs past the edges left out and the rest
// renormalised), in fixed point.
func newTaps(in, out int, f imaging.ResampleFilter) taps {
	du := float64(in) / float64(out)
	scale := max(du, 1)
	ru := math.Ceil(scale * f.Support)
	t := taps{start: make([]int, out), n: 1}
	type span struct {
		lo int
		w  []float64
	}
	spans := make([]span, out)
	for o := range spans {
		fu := (float64(o)+0.5)*du - 0.5
		lo, hi := max(int(math.Ceil(fu-ru)), 0), min(int(math.Floor(fu+ru)), in-1)
		for lo < hi && f.Kernel((float64(lo)-fu)/scale) == 0 {
			lo++
		}
		for hi > lo && f.Kernel((float64(hi)-fu)/scale) == 0 {
			hi--
		}
		ws := make([]float64, hi-lo+1)
		for u := lo; u <= hi; u++ {
			ws[u-lo] = f.Kernel((float64(u) - fu) / scale)
		}
		spans[o] = span{lo, ws}
		t.n = max(t.n, len(ws))
	}
	t.w = make([]int32, out*t.n)
	for o, s := range spans {
		// Shift the window left at the far edge so that it holds n inputs.
		start := min(s.lo, in-t.n)
		start = max(start, 0)
		t.start[o] = start
		sum := 0.0
		for _, w := range s.w {
			sum += w
		}
		row := t.w[o*t.n : o*t.n+t.n]
		total, big := int32(0), 0
		for k, w := range s.w {
			i := s.lo - start + k
			if i >= t.n {
				break
			}
			row[i] = int32(math.Round(w / sum * fixedOne))
			total += row[i]
			if row[i] > row[big] {
				big = i
			}
		}
		row[big] += fixedOne - total // the rounding's remainder
	}
	return t
}

// clamp8 rounds a fixed-point sum to a sample.
func clamp8(acc int32) uint8 {
	v := (acc + fixedOne/2) >> 14
	return uint8(min(max(v, 0), 255))
}

// resamplePlane resizes a sw×sh plane to dw×dh into dst: columns first,
// to an 8-bit buffer of dh rows, then rows. Columns first puts the larger
// share of the work (it runs over the wider input rows) in the loop that
// streams whole rows.
func resamplePlane(src []byte, sstride, sw, sh int, dst []byte, dstride, dw, dh int, f imaging.ResampleFilter) {
	if sw == dw && sh == dh {
		for y := 0; y < sh; y++ {
			copy(dst[y*dstride:y*dstride+dw], src[y*sstride:y*sstride+sw])
		}
		return
	}
	xt, yt := newTaps(sw, dw, f), newTaps(sh, dh, f)
	mid := make([]byte, dh*sw)
	acc := make([]int32, sw)
	for y := 0; y < dh; y++ {
		clear(acc)
		w := yt.w[y*yt.n : y*yt.n+yt.n]
		for k, wk := range w {
			if wk == 0 {
				continue
			}
			r := (yt.start[y] + k) * sstride
			row := src[r : r+sw]
			acc := acc[:len(row)]
			for x, v := range row {
				acc[x] += int32(v) * wk
			}
		}
		out := mid[y*sw : y*sw+sw]
		acc := acc[:len(out)]
		for x := range out {
			out[x] = clamp8(acc[x])
		}
	}
	n := xt.n
	for y := 0; y < dh; y++ {
		row := mid[y*sw : y*sw+sw]
		out := dst[y*dstride : y*dstride+dw]
		for x := range out {
			st := xt.start[x]
			s := row[st : st+n]
			w := xt.w[x*n : x*n+n]
			w = w[:len(s)]
			var a int32
			for k, v := range s {
				a += int32(v) * w[k]
			}
			out[x] = clamp8(a)
		}
	}
}

// resampleTo resizes an image given as planes (luma, then chroma planes
// of any size, or luma alone) to w×h: a 4:2:0 *image.YCbCr, or a
// *image.Gray.
func resampleTo(src []jpegdct.Plane, w, h int, f imaging.ResampleFilter) image.Image {
	y := src[0]
	if len(src) < 3 {
		out := image.NewGray(image.Rect(0, 0, w, h))
		resamplePlane(y.Pix, y.Stride, y.Width, y.Height, out.Pix, out.Stride, w, h, f)
		return out
	}
	out := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	resamplePlane(y.Pix, y.Stride, y.Width, y.Height, out.Y, out.YStride, w, h, f)
	cw, ch := (w+1)/2, (h+1)/2
	for i, dst := range [][]byte{out.Cb, out.Cr} {
		c := src[1+i]
		resamplePlane(c.Pix, c.Stride, c.Width, c.Height, dst, out.CStride, cw, ch, f)
	}
	return out
}

// planesOf is a 4:2:0 *image.YCbCr or a *image.Gray (Min at the origin)
// as planes.
func planesOf(img image.Image) []jpegdct.Plane {
	switch m := img.(type) {
	case *image.Gray:
		return []jpegdct.Plane{{Pix: m.Pix, Stride: m.Stride, Width: m.Rect.Dx(), Height: m.Rect.Dy()}}
	case *image.YCbCr:
		cw, ch := chromaSize(m)
		return []jpegdct.Plane{
			{Pix: m.Y, Stride: m.YStride, Width: m.Rect.Dx(), Height: m.Rect.Dy()},
			{Pix: m.Cb, Stride: m.CStride, Width: cw, Height: ch},
			{Pix: m.Cr, Stride: m.CStride, Width: cw, Height: ch},
		}
	}
	return nil
}

// chromaSize is the size of m's chroma planes.
func chromaSize(m *image.YCbCr) (int, int) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// orientPlane writes the sw×sh plane src turned by EXIF orientation o
// (1–8) to dst, which is sw×sh, or sh×sw for 5–8.
func orientPlane(src []byte, sstride, sw, sh int, dst []byte, dstride, o int) {
	dw, dh := sw, sh
	if o >= 5 {
		dw, dh = sh, sw
	}
	for y := 0; y < dh; y++ {
		out := dst[y*dstride : y*dstride+dw]
		for x := range out {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = sw-1-x, y
			case 3:
				sx, sy = sw-1-x, sh-1-y
			case 4:
				sx, sy = x, sh-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, sh-1-x
			case 7:
				sx, sy = sw-1-y, sh-1-x
			case 8:
				sx, sy = sw-1-y, x
			default:
				sx, sy = x, y
			}
			out[x] = src[sy*sstride+sx]
		}
	}
}

// orientImage turns a *image.YCbCr or a *image.Gray (what resampleTo
// gives) upright by EXIF orientation o; 1 and unknown values, and other
// kinds of image, leave it.
func orientImage(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	size := func(w, h int) image.Rectangle {
		if o >= 5 {
			w, h = h, w
		}
		return image.Rect(0, 0, w, h)
	}
	switch m := img.(type) {
	case *image.Gray:
		out := image.NewGray(size(m.Rect.Dx(), m.Rect.Dy()))
		orientPlane(m.Pix, m.Stride, m.Rect.Dx(), m.Rect.Dy(), out.Pix, out.Stride, o)
		return out
	case *image.YCbCr:
		out := image.NewYCbCr(size(m.Rect.Dx(), m.Rect.Dy()), m.SubsampleRatio)
		orientPlane(m.Y, m.YStride, m.Rect.Dx(), m.Rect.Dy(), out.Y, out.YStride, o)
		cw, ch := chromaSize(m)
		orientPlane(m.Cb, m.CStride, cw, ch, out.Cb, out.CStride, o)
		orientPlane(m.Cr, m.CStride, cw, ch, out.Cr, out.CStride, o)
		return out
	}
	return img
}

// pixelPlanes is a decoded image as planes for fromPlanes: a YCbCr or
// gray image as it is; an NRGBA or RGBA one (a PNG's) put on white and
// turned into luma and 4:2:0 chroma in one pass (JFIF's conversion, chroma
// the mean of each 2×2). ok is false for other kinds.
func pixelPlanes(img image.Image) (planes []jpegdct.Plane, ok bool) {
	if img.Bounds().Min != (image.Point{}) {
		return nil, false
	}
	var pix []byte
	var stride int
	premultiplied := false
	switch m := img.(type) {
	case *image.YCbCr, *image.Gray:
		return planesOf(m), true
	case *image.NRGBA:
		pix, stride = m.Pix, m.Stride
	case *image.RGBA:
		pix, stride, premultiplied = m.Pix, m.Stride, true
	default:
		return nil, false
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	cw, ch := (w+1)/2, (h+1)/2
	y := make([]byte, w*h)
	cb, cr := make([]int32, cw*ch), make([]int32, cw*ch)
	count := make([]int32, cw*ch)
	for j := 0; j < h; j++ {
		row := pix[j*stride : j*stride+4*w]
		crow := (j / 2) * cw
		for i := 0; i < w; i++ {
			p := row[4*i : 4*i+4 : 4*i+4]
			r, g, b, a := int32(p[0]), int32(p[1]), int32(p[2]), int32(p[3])
			if a != 255 {
				if premultiplied { // on white: c + 255 − a
					r, g, b = r+255-a, g+255-a, b+255-a
				} else { // on white: 255 + (c − 255)·a/255
					r, g, b = 255+((r-255)*a+127)/255, 255+((g-255)*a+127)/255, 255+((b-255)*a+127)/255
				}
			}
			// JFIF, 16-bit fixed point, as image/color.RGBToYCbCr.
			y[j*w+i] = uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 16)
			k := crow + i/2
			cb[k] += -11056*r - 21712*g + 32768*b
			cr[k] += 32768*r - 27440*g - 5328*b
			count[k]++
		}
	}
	cbp, crp := make([]byte, cw*ch), make([]byte, cw*ch)
	for k := range cbp {
		// The mean of the pixels' values, offset by 128 first so that the
		// division rounds a positive number.
		n := int64(count[k]) << 16
		cbp[k] = uint8(min(max((int64(cb[k])+128*n+n/2)/n, 0), 255))
		crp[k] = uint8(min(max((int64(cr[k])+128*n+n/2)/n, 0), 255))
	}
	return []jpegdct.Plane{
		{Pix: y, Stride: w, Width: w, Height: h},
		{Pix: cbp, Stride: cw, Width: cw, Height: ch},
		{Pix: crp, Stride: cw, Width: cw, Height: ch},
	}, true
}

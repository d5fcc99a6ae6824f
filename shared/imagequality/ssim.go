// Package imagequality measures how close a compressed image is to its
// source: luma SSIM, as the benchmarks and the recompression tests report.
package imagequality

import (
	"image"
	"image/color"
)

// Luma returns BT.601 luma (as JPEG's Y) of img, full resolution.
func Luma(img image.Image) *image.Gray {
	r := img.Bounds()
	g := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < r.Dy(); y++ {
			copy(g.Pix[y*g.Stride:y*g.Stride+r.Dx()], m.Y[m.YOffset(r.Min.X, r.Min.Y+y):])
		}
		return g
	case *image.Gray:
		for y := 0; y < r.Dy(); y++ {
			copy(g.Pix[y*g.Stride:y*g.Stride+r.Dx()], m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):])
		}
		return g
	}
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			cr, cg, cb, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
			yy, _, _ := color.RGBToYCbCr(uint8(cr>>8), uint8(cg>>8), uint8(cb>>8))
			g.Pix[y*g.Stride+x] = yy
		}
	}
	return g
}

// SSIM is the mean structural similarity of two images' luma over 8×8
// windows every 4 pixels (constants of Wang et al. 2004, L = 255). 1 means
// identical. The images must have the same size.
func SSIM(a, b image.Image) float64 {
	la, lb := Luma(a), Luma(b)
	if la.Bounds() != lb.Bounds() {
		return 0
	}
	const c1, c2 = (0.01 * 255) * (0.01 * 255), (0.03 * 255) * (0.03 * 255)
	w, h := la.Bounds().Dx(), la.Bounds().Dy()
	if w < 8 || h < 8 {
		return ssimWindow(la, lb, 0, 0, w, h, c1, c2)
	}
	sum, n := 0.0, 0
	for y := 0; y+8 <= h; y += 4 {
		for x := 0; x+8 <= w; x += 4 {
			sum += ssimWindow(la, lb, x, y, 8, 8, c1, c2)
			n++
		}
	}
	return sum / float64(n)
}

func ssimWindow(a, b *image.Gray, x0, y0, w, h int, c1, c2 float64) float64 {
	var sa, sb, saa, sbb, sab float64
	for y := y0; y < y0+h; y++ {
		ra := a.Pix[y*a.Stride+x0 : y*a.Stride+x0+w]
		rb := b.Pix[y*b.Stride+x0 : y*b.Stride+x0+w]
		for i := range ra {
			va, vb := float64(ra[i]), float64(rb[i])
			sa += va
			sb += vb
			saa += va * va
			sbb += vb * vb
			sab += va * vb
		}
	}
	n := float64(w * h)
	ma, mb := sa/n, sb/n
	va, vb := saa/n-ma*ma, sbb/n-mb*mb
	cov := sab/n - ma*mb
	return (2*ma*mb + c1) * (2*cov + c2) / ((ma*ma + mb*mb + c1) * (va + vb + c2))
}

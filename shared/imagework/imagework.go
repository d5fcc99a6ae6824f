// Package imagework is the CPU path of imgpipe: sniff, check limits from the
// header, decode (JPEG, PNG, GIF first frame, WebP), apply EXIF orientation,
// flatten transparency onto white, encode JPEG, strip metadata. It imports
// no cloud client, so it can be benchmarked and fuzzed alone.
package imagework

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // decoders register themselves with image.Decode
	"image/jpeg"
	_ "image/png"
	"net/http"

	"github.com/disintegration/imaging"
	_ "golang.org/x/image/webp"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// Limits bound what an image may cost to decode.
type Limits struct {
	MaxPixels    int64 // width × height
	MaxDimension int   // either side
}

// DefaultLimits allow a 50 MP photograph; documented in README.
var DefaultLimits = Limits{MaxPixels: 50_000_000, MaxDimension: 20_000}

// Result is a compressed image.
type Result struct {
	JPEG      []byte
	Format    string // input format: jpeg, png, gif, webp
	Width     int    // output, after orientation
	Height    int
	KeptInput bool // the input JPEG (metadata stripped) was smaller than our encoding
}

// Reason codes of permanent failures.
const (
	ReasonNotAnImage    = "not_an_image"
	ReasonUnsupported   = "unsupported_format"
	ReasonTooManyPixels = "too_many_pixels"
	ReasonTooLarge      = "too_large_dimension"
	ReasonCorrupt       = "corrupt_image"
)

// Sniff names the format from the bytes, not from any Content-Type.
func Sniff(b []byte) (string, error) {
	switch ct := http.DetectContentType(b); ct {
	case "image/jpeg":
		return "jpeg", nil
	case "image/png":
		return "png", nil
	case "image/gif":
		return "gif", nil
	case "image/webp":
		return "webp", nil
	case "image/bmp", "image/x-icon", "image/avif", "image/tiff":
		return "", fault.New(fault.Permanent, ReasonUnsupported, "%s images are not supported (JPEG, PNG, GIF, WebP are)", ct)
	default:
		return "", fault.New(fault.Permanent, ReasonNotAnImage, "the content is not an image (it looks like %s)", ct)
	}
}

// CheckHeader reads only the header and refuses images over the limits.
func CheckHeader(b []byte, lim Limits) (image.Config, string, error) {
	format, err := Sniff(b)
	if err != nil {
		return image.Config{}, "", err
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return image.Config{}, format, fault.Wrap(fault.Permanent, ReasonCorrupt, err, "cannot read the %s header", format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, format, fault.New(fault.Permanent, ReasonCorrupt, "the %s header gives %d×%d pixels", format, cfg.Width, cfg.Height)
	}
	if cfg.Width > lim.MaxDimension || cfg.Height > lim.MaxDimension {
		return cfg, format, fault.New(fault.Permanent, ReasonTooLarge, "%d×%d pixels: a side exceeds %d", cfg.Width, cfg.Height, lim.MaxDimension)
	}
	if int64(cfg.Width)*int64(cfg.Height) > lim.MaxPixels {
		return cfg, format, fault.New(fault.Permanent, ReasonTooManyPixels, "%d×%d = %d pixels exceeds %d", cfg.Width, cfg.Height, int64(cfg.Width)*int64(cfg.Height), lim.MaxPixels)
	}
	return cfg, format, nil
}

// Compress turns any supported image into an upright, metadata-free JPEG at
// quality q. When the input is a JPEG that needs no rotation and our output
// is not smaller, the input (metadata stripped, losslessly) is kept.
func Compress(in []byte, q int, lim Limits) (Result, error) {
	_, format, err := CheckHeader(in, lim)
	if err != nil {
		return Result{}, err
	}
	img, err := imaging.Decode(bytes.NewReader(in), imaging.AutoOrientation(true))
	if err != nil {
		return Result{}, fault.Wrap(fault.Permanent, ReasonCorrupt, err, "cannot decode the %s image", format)
	}
	rgba := opaqueRGBA(img)
	var buf bytes.Buffer
	buf.Grow(len(in) / 2)
	if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: q}); err != nil {
		return Result{}, fmt.Errorf("jpeg.Encode: %w", err)
	}
	res := Result{JPEG: buf.Bytes(), Format: format, Width: rgba.Rect.Dx(), Height: rgba.Rect.Dy()}
	if format == "jpeg" && buf.Len() >= len(in) && exifOrientation(in) <= 1 {
		if stripped, err := StripJPEGMetadata(in); err == nil && len(stripped) <= buf.Len() {
			res.JPEG, res.KeptInput = stripped, true
		}
	}
	return res, nil
}

// opaqueRGBA returns img as an opaque *image.RGBA (transparent pixels
// composited onto white), the form image/jpeg encodes without per-pixel
// interface calls.
func opaqueRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	if n, ok := img.(*image.NRGBA); ok && n.Opaque() {
		// With every alpha 255, NRGBA and RGBA bytes are the same.
		return &image.RGBA{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect}
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, &image.Uniform{C: color.White}, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Over)
	return dst
}

// Package imagework is the CPU path of imgpipe: sniff, check limits from the
// header; JPEGs are recompressed in the DCT domain (package jpegdct) when it
// can; everything else, and the JPEGs it refuses, is decoded (JPEG, PNG, GIF
// first frame, WebP), turned upright by EXIF orientation, flattened onto
// white and encoded; metadata is stripped either way. It imports
// no cloud client, so it can be benchmarked and fuzzed alone.
package imagework

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // decoders register themselves with image.Decode
	_ "image/png"
	"net/http"

	"github.com/disintegration/imaging"
	_ "golang.org/x/image/webp"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/jpegdct"
)

// Limits bound what an image may cost to decode.
type Limits struct {
	MaxPixels    int64 // width × height
	MaxDimension int   // either side
}

// DefaultLimits are batch.DefaultImageLimits.
var DefaultLimits = Limits{MaxPixels: batch.DefaultImageLimits.MaxPixels, MaxDimension: batch.DefaultImageLimits.MaxDimension}

// Result is a compressed image.
type Result struct {
	JPEG      []byte
	Format    string // input format: jpeg, png, gif, webp
	Width     int    // output, after orientation
	Height    int
	KeptInput bool // the input JPEG (metadata stripped) was smaller than our encoding
	// Path is "dct" when the JPEG was recompressed in the DCT domain,
	// "pixel" when it was decoded to pixels; Fallback says why a JPEG took
	// the pixel path (jpegdct's reason).
	Path     string
	Fallback string
}

// Reason codes of permanent failures, as batch defines them.
const (
	ReasonNotAnImage    = batch.ReasonNotAnImage
	ReasonUnsupported   = batch.ReasonUnsupportedFormat
	ReasonTooManyPixels = batch.ReasonTooManyPixels
	ReasonTooLarge      = batch.ReasonTooLargeDimension
	ReasonCorrupt       = batch.ReasonCorruptImage
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
	res, _, err := compress(in, q, lim, nil)
	return res, err
}

// fitTarget asks compress for a JPEG's scaled planes too
// (jpegdct.RecompressFit): luma and chroma at least these sizes.
type fitTarget struct{ luma, chroma image.Point }

// compress is Compress; with fit, a JPEG recompressed in the DCT domain
// also gives its scaled planes, from the same decode (nil otherwise).
func compress(in []byte, q int, lim Limits, fit *fitTarget) (Result, []jpegdct.Plane, error) {
	cfg, format, err := CheckHeader(in, lim)
	if err != nil {
		return Result{}, nil, err
	}
	var res Result
	var planes []jpegdct.Plane
	if format == "jpeg" {
		opts := jpegdct.Options{Quality: q, Limits: jpegdct.Limits{MaxPixels: lim.MaxPixels}}
		var out []byte
		if fit != nil {
			out, planes, err = jpegdct.RecompressFit(in, opts, fit.luma, fit.chroma)
		} else {
			out, err = jpegdct.Recompress(in, opts)
		}
		if err == nil {
			res = Result{JPEG: out, Format: format, Width: cfg.Width, Height: cfg.Height, Path: "dct"}
		} else {
			// Unsupported or malformed for the fast path: the pixel path
			// decides (image/jpeg may still read it, or name the damage).
			res.Fallback = err.Error()
			var u *jpegdct.Unsupported
			if errors.As(err, &u) {
				res.Fallback = u.Reason
			}
		}
	}
	if res.JPEG == nil {
		fallback := res.Fallback
		if res, err = pixelPath(in, format, q); err != nil {
			return Result{}, nil, err
		}
		res.Fallback = fallback
	}
	// Keep the input when, without its metadata, it is no larger (the
	// metadata alone can decide it, so compare after stripping).
	if format == "jpeg" && exifOrientation(in) <= 1 {
		if stripped, err := StripJPEGMetadata(in); err == nil && len(stripped) <= len(res.JPEG) {
			res.JPEG, res.KeptInput = stripped, true
		}
	}
	return res, planes, nil
}

// pixelPath decodes to pixels (upright, transparency on white) and encodes.
func pixelPath(in []byte, format string, q int) (Result, error) {
	img, err := decodeUpright(in, format)
	if err != nil {
		return Result{}, err
	}
	b := img.Bounds()
	return Result{JPEG: encodeOnWhite(img, q), Format: format, Width: b.Dx(), Height: b.Dy(), Path: "pixel"}, nil
}

// decodeUpright decodes in whole, turned upright by its EXIF orientation.
func decodeUpright(in []byte, format string) (image.Image, error) {
	img, err := imaging.Decode(bytes.NewReader(in), imaging.AutoOrientation(true))
	if err != nil {
		return nil, fault.Wrap(fault.Permanent, ReasonCorrupt, err, "cannot decode the %s image", format)
	}
	return img, nil
}

// encodeOnWhite encodes img at quality q, transparency on white. The
// decoders' usual forms are encoded as they are; others are flattened to a
// copy first.
func encodeOnWhite(img image.Image, q int) []byte {
	switch m := img.(type) {
	case *image.NRGBA:
		return jpegdct.EncodeNRGBA(m, q)
	case *image.RGBA:
		if m.Opaque() {
			return jpegdct.EncodeRGBA(m, q)
		}
	}
	return jpegdct.EncodeRGBA(opaqueRGBA(img), q)
}

// opaqueRGBA returns img as an opaque *image.RGBA (transparent pixels
// composited onto white), the form jpegdct.EncodeRGBA reads directly.
func opaqueRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	if n, ok := img.(*image.NRGBA); ok && n.Opaque() {
		// With every alpha 255, NRGBA and RGBA bytes are the same.
		return &image.RGBA{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect}
	}
	if r, ok := img.(*image.RGBA); ok && r.Opaque() {
		return r
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, &image.Uniform{C: color.White}, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Over)
	return dst
}

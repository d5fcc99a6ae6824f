package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// Sizing is how a request's outputs are sized: the main output fit inside
// MaxWidth × MaxHeight (0 leaves a side free), and up to MaxSizes extra
// outputs, each fit inside its own box. Nothing is ever enlarged and the
// aspect ratio is always kept. The zero Sizing leaves every image at its
// own size.
type Sizing struct {
	MaxWidth  int    `json:"maxWidth,omitempty" firestore:"maxWidth,omitempty"`
	MaxHeight int    `json:"maxHeight,omitempty" firestore:"maxHeight,omitempty"`
	Sizes     []Size `json:"sizes,omitempty" firestore:"sizes,omitempty"`
}

// Size is an extra output: Name (which names its object and report
// column) and the box it fits inside; 0 leaves a side free, not both.
type Size struct {
	Name   string `json:"name" firestore:"name"`
	Width  int    `json:"width,omitempty" firestore:"width,omitempty"`
	Height int    `json:"height,omitempty" firestore:"height,omitempty"`
}

const (
	// MaxSizes is the most extra outputs a request may ask for.
	MaxSizes = 5
	// MaxSide is the largest width or height an option may name: the
	// largest side an input may have (DefaultImageLimits.MaxDimension).
	MaxSide = 20_000
	// maxSizeName is the longest size name.
	maxSizeName = 32
)

// OutputPixelCap is how many pixels the outputs of one image may add up to
// at most, whatever the image: twice the largest image decoded. One image
// with its main output and an extra one at its own size, or the main
// output at its own size and several smaller ones, fit; compressImage's
// memory (terraform/functions.tf) is sized for the worst of them
// (BenchmarkWorstAcceptedSizing in shared/imagework measures it).
func OutputPixelCap(lim ImageLimits) int64 { return 2 * lim.MaxPixels }

// OutputPixels is the most pixels the outputs of one image can add up to
// under s, whatever the image within lim: the main output and each extra
// one at the largest its box allows. Nothing is enlarged, so no output is
// larger than the largest image decoded (lim.MaxPixels), and a side left
// free can be as long as the longest side decoded (lim.MaxDimension).
func (s Sizing) OutputPixels(lim ImageLimits) int64 {
	side := func(n int) int64 {
		if n <= 0 || n > lim.MaxDimension {
			return int64(lim.MaxDimension)
		}
		return int64(n)
	}
	box := func(w, h int) int64 { return min(side(w)*side(h), lim.MaxPixels) }
	n := box(s.MaxWidth, s.MaxHeight)
	for _, sz := range s.Sizes {
		n += box(sz.Width, sz.Height)
	}
	return n
}

// CheckPixels refuses a sizing whose outputs could add up to more than
// OutputPixelCap, saying why.
func (s Sizing) CheckPixels(lim ImageLimits) error {
	n, limit := s.OutputPixels(lim), OutputPixelCap(lim)
	if n <= limit {
		return nil
	}
	return fmt.Errorf("sizes: the outputs of one image could add up to %d pixels, more than the cap of %d "+
		"(twice the largest image, %d pixels): an image may be up to %d pixels on a side and is never enlarged, "+
		"so each box's largest output is counted, a side left free as long as %d; give both a width and a height, "+
		"smaller boxes or fewer sizes", n, limit, lim.MaxPixels, lim.MaxDimension, lim.MaxDimension)
}

// IsZero reports whether s resizes nothing.
func (s Sizing) IsZero() bool { return s.MaxWidth == 0 && s.MaxHeight == 0 && len(s.Sizes) == 0 }

// String is the form ParseSizes reads: "thumb:200,medium:800x800,tall:x600".
func (s Size) String() string {
	switch {
	case s.Height == 0:
		return fmt.Sprintf("%s:%d", s.Name, s.Width)
	case s.Width == 0:
		return fmt.Sprintf("%s:x%d", s.Name, s.Height)
	}
	return fmt.Sprintf("%s:%dx%d", s.Name, s.Width, s.Height)
}

// Describe says in a line how s sizes outputs, as the CLI and the status
// page show it: "main fit in 1600×any; thumb 200×any, medium 800×800".
func (s Sizing) Describe() string {
	side := func(n int) string {
		if n == 0 {
			return "any"
		}
		return strconv.Itoa(n)
	}
	main := "main at its own size"
	if s.MaxWidth > 0 || s.MaxHeight > 0 {
		main = "main fit in " + side(s.MaxWidth) + "×" + side(s.MaxHeight)
	}
	var extra []string
	for _, sz := range s.Sizes {
		extra = append(extra, sz.Name+" "+side(sz.Width)+"×"+side(sz.Height))
	}
	if len(extra) == 0 {
		return main
	}
	return main + "; " + strings.Join(extra, ", ")
}

// SizeObjectName is the GCS name of an image's extra output called name.
func SizeObjectName(requestID string, ref ImageRef, name string) string {
	return "requests/" + requestID + "/" + ref.ID() + "-" + name + ".jpg"
}

// ParseSizing reads the sizing options of a CSV upload, as query or form
// fields: maxWidth and maxHeight (whole numbers; empty for none) and sizes
// (ParseSizes). Every problem is reported, each naming its field; a value
// longer than its bound (OptionBound) is not read.
func ParseSizing(maxWidth, maxHeight, sizes string) (Sizing, []string) {
	var s Sizing
	var probs []string
	side := func(option, v string) int {
		err := checkLength(option, len(v))
		if err == nil {
			var n int
			if n, err = parseSide(v); err == nil {
				return n
			}
			err = fmt.Errorf("%s: %w", option, err)
		}
		probs = append(probs, err.Error())
		return 0
	}
	s.MaxWidth, s.MaxHeight = side(OptMaxWidth, maxWidth), side(OptMaxHeight, maxHeight)
	var sp []string
	s.Sizes, sp = ParseSizes(sizes)
	return s, append(probs, sp...)
}

// SizingFromJSON reads the sizing options of a JSON upload: maxWidth and
// maxHeight as numbers (or numeric strings), sizes as an array of
// {"name","width","height"} objects or as a string ParseSizes reads.
func SizingFromJSON(maxWidth, maxHeight, sizes json.RawMessage) (Sizing, []string) {
	var s Sizing
	var probs []string
	side := func(option string, raw json.RawMessage) int {
		err := checkLength(option, len(raw))
		if err == nil {
			var n int
			if n, err = parseSide(jsonScalar(raw)); err == nil {
				return n
			}
			err = fmt.Errorf("%s: %w", option, err)
		}
		probs = append(probs, err.Error())
		return 0
	}
	s.MaxWidth, s.MaxHeight = side(OptMaxWidth, maxWidth), side(OptMaxHeight, maxHeight)
	raw := bytes.TrimSpace(sizes)
	switch {
	case checkLength(OptSizes, len(sizes)) != nil:
		probs = append(probs, checkLength(OptSizes, len(sizes)).Error())
	case len(raw) == 0 || string(raw) == "null":
	case raw[0] == '"':
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			probs = append(probs, "sizes: "+err.Error())
			break
		}
		var sp []string
		s.Sizes, sp = ParseSizes(str)
		probs = append(probs, sp...)
	case raw[0] == '[':
		var sp []string
		s.Sizes, sp = parseSizesJSON(raw)
		probs = append(probs, sp...)
	default:
		probs = append(probs, fmt.Sprintf(`sizes: want an array of {"name", "width", "height"} objects, got %s`, clip(string(raw), 60)))
	}
	return s, probs
}

// ParseSizes reads extra output sizes: empty for none; a JSON array of
// {"name","width","height"} objects; or the short form, comma-separated
// name:WIDTH, name:WIDTHxHEIGHT or name:xHEIGHT entries, as in
// "thumb:200,medium:800x800". A value longer than its bound (OptionBound)
// is refused unread.
func ParseSizes(s string) ([]Size, []string) {
	if err := checkLength(OptSizes, len(s)); err != nil {
		return nil, []string{err.Error()}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if s[0] == '[' {
		return parseSizesJSON([]byte(s))
	}
	entries := strings.Split(s, ",")
	if len(entries) > MaxSizes {
		return nil, []string{fmt.Sprintf("sizes: %d sizes, more than %d", len(entries), MaxSizes)}
	}
	var sizes []Size
	var probs []string
	for i, entry := range entries {
		entry = strings.TrimSpace(entry)
		name, box, ok := strings.Cut(entry, ":")
		if !ok {
			probs = append(probs, fmt.Sprintf("sizes: entry %d %q: want name:WIDTH, name:WIDTHxHEIGHT or name:xHEIGHT", i+1, clip(entry, 60)))
			continue
		}
		w, h, _ := strings.Cut(strings.ToLower(strings.TrimSpace(box)), "x")
		sz := Size{Name: strings.TrimSpace(name)}
		var errW, errH error
		if sz.Width, errW = parseSide(w); errW != nil {
			probs = append(probs, fmt.Sprintf("sizes: entry %d %q: width %v", i+1, clip(entry, 60), errW))
		}
		if sz.Height, errH = parseSide(h); errH != nil {
			probs = append(probs, fmt.Sprintf("sizes: entry %d %q: height %v", i+1, clip(entry, 60), errH))
		}
		if errW == nil && errH == nil {
			sizes = append(sizes, sz)
		}
	}
	return sizes, append(probs, checkSizes(sizes)...)
}

func parseSizesJSON(raw []byte) ([]Size, []string) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, []string{"sizes: " + jsonProblem(err)}
	}
	if len(items) > MaxSizes {
		return nil, []string{fmt.Sprintf("sizes: %d sizes, more than %d", len(items), MaxSizes)}
	}
	var sizes []Size
	var probs []string
	for i, item := range items {
		var f struct {
			Name   string          `json:"name"`
			Width  json.RawMessage `json:"width"`
			Height json.RawMessage `json:"height"`
		}
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			probs = append(probs, fmt.Sprintf(`sizes[%d]: want {"name", "width", "height"}: %s`, i, jsonProblem(err)))
			continue
		}
		sz := Size{Name: strings.TrimSpace(f.Name)}
		var errW, errH error
		if sz.Width, errW = parseSide(jsonScalar(f.Width)); errW != nil {
			probs = append(probs, fmt.Sprintf("sizes[%d].width: %v", i, errW))
		}
		if sz.Height, errH = parseSide(jsonScalar(f.Height)); errH != nil {
			probs = append(probs, fmt.Sprintf("sizes[%d].height: %v", i, errH))
		}
		if errW == nil && errH == nil {
			sizes = append(sizes, sz)
		}
	}
	return sizes, append(probs, checkSizes(sizes)...)
}

// checkSizes checks what no single field shows: names, boxes, how many.
func checkSizes(sizes []Size) []string {
	var probs []string
	seen := map[string]int{}
	for i, s := range sizes {
		if err := checkSizeName(s.Name); err != nil {
			probs = append(probs, fmt.Sprintf("sizes[%d].name: %v", i, err))
		} else if j, dup := seen[strings.ToLower(s.Name)]; dup {
			probs = append(probs, fmt.Sprintf("sizes[%d].name: %q is also the name of sizes[%d] (names must differ, in any case)", i, s.Name, j))
		} else {
			seen[strings.ToLower(s.Name)] = i
		}
		if s.Width == 0 && s.Height == 0 {
			probs = append(probs, fmt.Sprintf("sizes[%d] %q: give a width, a height or both", i, s.Name))
		}
	}
	return probs
}

// checkSizeName accepts 1 to 32 ASCII letters, digits, '_' and '-',
// starting with a letter: a name that is safe in an object name, a file
// name and a report header.
func checkSizeName(n string) error {
	if n == "" {
		return fmt.Errorf("is empty")
	}
	if len(n) > maxSizeName {
		return fmt.Errorf("%q is longer than %d characters", clip(n, 40), maxSizeName)
	}
	for i, c := range n {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !letter {
			return fmt.Errorf("%q must start with a letter", n)
		}
		if !letter && !(c >= '0' && c <= '9') && c != '_' && c != '-' {
			return fmt.Errorf("%q may hold only letters, digits, '_' and '-'", n)
		}
	}
	return nil
}

// parseSide reads a width or height: "" (and JSON null) is 0, no limit.
func parseSide(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxSide {
		return 0, fmt.Errorf("%q is not a whole number from 1 to %d (leave it out for no limit)", clip(s, 40), MaxSide)
	}
	return n, nil
}

// jsonScalar is a JSON number or string as text ("" when absent).
func jsonScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// jsonProblem is a JSON decoding error without Go's type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s must not be a JSON %s", te.Field, te.Value)
		}
		return fmt.Sprintf("a JSON %s is not allowed here", te.Value)
	}
	return err.Error()
}

// clip shortens s to at most n bytes, whole characters, for an error
// message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// SizingError is the 400 for sizing problems.
func SizingError(probs []string) error {
	if len(probs) == 0 {
		return nil
	}
	return &fault.Error{Kind: fault.Invalid, Message: "invalid sizing options", Details: probs}
}

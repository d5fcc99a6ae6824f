package batch

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// Limits bound what one upload may hold.
type Limits struct {
	MaxBytes        int64 // request body
	MaxRows         int   // products
	MaxURLsPerRow   int
	MaxImages       int // URLs in the whole request
	MaxURLLength    int
	MaxFieldLength  int // serial number and product name
	MaxProblemsShow int // validation problems listed in one answer
	// Image bounds each image the request's sizing is applied to: the
	// sizing is refused when its outputs could pass OutputPixelCap.
	// The zero value means DefaultImageLimits.
	Image ImageLimits
}

// DefaultLimits bound an upload: the defaults of shared/config's variables
// and of functions/API.md. MaxBytes stays below the 32 MiB Cloud Run
// accepts in one request.
var DefaultLimits = Limits{
	MaxBytes:        30 << 20,
	MaxRows:         100_000,
	MaxURLsPerRow:   20,
	MaxImages:       200_000,
	MaxURLLength:    2048,
	MaxFieldLength:  512,
	MaxProblemsShow: 50,
}

// ImageLimits bound one image.
type ImageLimits struct {
	MaxBytes     int64 // fetched
	MaxPixels    int64 // width × height decoded
	MaxDimension int   // either side decoded
}

// ImageLimits is lim.Image, or DefaultImageLimits when it is not set.
func (lim Limits) ImageLimits() ImageLimits {
	if lim.Image == (ImageLimits{}) {
		return DefaultImageLimits
	}
	return lim.Image
}

// MemoryPerImage is what compressImage's memory rule (terraform/functions.tf)
// gives each image in flight: 8 bytes a pixel at MaxPixels, and its input
// and output (2 × MaxBytes). It covers the worst sizing OutputPixelCap
// lets through (BenchmarkWorstAcceptedSizing in shared/imagework).
func (lim ImageLimits) MemoryPerImage() int64 { return 8*lim.MaxPixels + 2*lim.MaxBytes }

// DefaultImageLimits allow a 50 MP photograph.
var DefaultImageLimits = ImageLimits{MaxBytes: 25 << 20, MaxPixels: 50_000_000, MaxDimension: 20_000}

// Column names as users see them.
const (
	ColSerial = "Serial Number"
	ColName   = "Product Name"
	ColURLs   = "Input Image URLs"
)

// problems collects validation problems, capped, counting the rest.
type problems struct {
	max     int
	list    []string
	dropped int
}

// full reports whether the next problem will only be counted.
func (p *problems) full() bool { return len(p.list) >= p.max }

func (p *problems) add(format string, args ...any) {
	if p.full() {
		p.dropped++
		return
	}
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	details := p.list
	if p.dropped > 0 {
		details = append(details, fmt.Sprintf("… and %d more problems", p.dropped))
	}
	n := len(p.list) + p.dropped
	msg := "1 problem in the upload"
	if n > 1 {
		msg = fmt.Sprintf("%d problems in the upload", n)
	}
	return &fault.Error{Kind: fault.Invalid, Message: msg, Details: details}
}

// stripBOM drops a leading UTF-8 byte order mark.
func stripBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	return br
}

// ParseCSV reads a CSV upload as a stream: a header naming the columns
// Serial Number, Product Name and Input Image URLs (any order, any case,
// spaces ignored; other columns ignored), then one product a row with its
// URLs comma-separated in one cell. Blank lines are skipped; a BOM and CRLF
// line ends are accepted. Every problem is reported, by line and column.
func ParseCSV(r io.Reader, lim Limits) ([]Product, error) {
	var products []Product
	err := ParseCSVTo(r, lim, func(p Product) error {
		products = append(products, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return products, nil
}

// ParseCSVTo is ParseCSV handing each valid product to add as soon as its
// row is read, so no more than a row is held. After the first problem it
// stops handing products over (the upload will be refused) but reads on
// to report every problem. An error from add ends the parse with it.
func ParseCSVTo(r io.Reader, lim Limits, add func(Product) error) error {
	cr := csv.NewReader(stripBOM(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return fault.New(fault.Invalid, "", "the CSV is empty: expected a header row with %s, %s, %s", ColSerial, ColName, ColURLs)
	}
	if err != nil {
		return csvError(err)
	}
	cols := map[string]int{normalizeHeader(ColSerial): -1, normalizeHeader(ColName): -1, normalizeHeader(ColURLs): -1}
	seen := map[string]bool{}
	var probs = problems{max: lim.MaxProblemsShow}
	for i, h := range header {
		k := normalizeHeader(h)
		if _, known := cols[k]; !known {
			continue
		}
		if seen[k] {
			probs.add("line 1, column %d: column %q appears twice in the header", i+1, strings.TrimSpace(h))
			continue
		}
		seen[k] = true
		cols[k] = i
	}
	var missing []string
	for _, c := range []string{ColSerial, ColName, ColURLs} {
		if cols[normalizeHeader(c)] < 0 {
			missing = append(missing, strconv.Quote(c))
		}
	}
	if len(missing) > 0 {
		probs.add("line 1: the header lacks the column %s (found: %s)", strings.Join(missing, ", "), quoteAll(header))
	}
	if err := probs.err(); err != nil {
		return err
	}
	iSerial, iName, iURLs := cols[normalizeHeader(ColSerial)], cols[normalizeHeader(ColName)], cols[normalizeHeader(ColURLs)]

	v := newValidator(lim, &probs, "line %d")
	rows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if allBlank(rec) {
			continue
		}
		if len(rec) > len(header) {
			probs.add("line %d: %d fields, but the header has %d", line, len(rec), len(header))
			continue
		}
		field := func(i int) string {
			if i < len(rec) {
				return rec[i]
			}
			return ""
		}
		if rows >= lim.MaxRows {
			return fault.New(fault.TooLarge, "", "line %d: more than %d product rows (the limit per request)", line, lim.MaxRows)
		}
		p, ok := v.product(line, field(iSerial), field(iName), splitURLs(field(iURLs)))
		if ok {
			rows++
			if len(probs.list)+probs.dropped == 0 {
				if err := add(p); err != nil {
					return err
				}
			}
		}
		if v.images > lim.MaxImages {
			return fault.New(fault.TooLarge, "", "line %d: more than %d image URLs in the request (the limit)", line, lim.MaxImages)
		}
	}
	if err := probs.err(); err != nil {
		return err
	}
	if rows == 0 {
		return fault.New(fault.Invalid, "", "the CSV has a header but no product rows")
	}
	return nil
}

func csvError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fault.New(fault.TooLarge, "", "the upload is larger than %d bytes (the limit)", mbe.Limit)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fault.New(fault.Invalid, "", "line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
	}
	return fault.New(fault.Invalid, "", "reading the CSV: %v", err)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(strings.TrimSpace(s))
	}
	return strings.Join(q, ", ")
}

func allBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// splitURLs splits a cell of comma-separated URLs. A comma inside a URL must
// be percent-encoded (%2C).
func splitURLs(cell string) []string {
	var out []string
	for _, u := range strings.Split(cell, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// jsonProduct is one element of a JSON upload's "products".
type jsonProduct struct {
	SerialNumber json.RawMessage `json:"serialNumber"`
	ProductName  string          `json:"productName"`
	InputURLs    []string        `json:"inputUrls"`
	InputURLs2   []string        `json:"inputImageUrls"`
}

// jsonOptions are the members of a JSON upload other than "products".
type jsonOptions struct {
	WebhookURL string
	Quality    json.RawMessage
	MaxWidth   json.RawMessage
	MaxHeight  json.RawMessage
	Sizes      json.RawMessage
}

// maxProductBytes bounds one element of a JSON upload's "products" as
// written, with the spaces before it: every field at its limit (both URL
// members full), every byte written as a \u escape (6 bytes), and 64 KiB
// for names, punctuation and spaces.
func (lim Limits) maxProductBytes() int {
	return 6*(2*lim.MaxFieldLength+2*lim.MaxURLsPerRow*(lim.MaxURLLength+3)) + 64<<10
}

// ParseJSON reads {"products":[{"serialNumber","productName","inputUrls":[…]}],
// "webhookUrl","quality","maxWidth","maxHeight","sizes"}, members in any
// order, names in any case. serialNumber may be a string or a number; the
// sizing options are SizingFromJSON's. It reads as a stream: every member
// but "products" is refused as soon as it passes its bound (OptionBound),
// each product as soon as it passes maxProductBytes, and the products are
// decoded and checked one at a time, so that the upload is refused at the
// first product past MaxRows or MaxImages, before more of it is read.
func ParseJSON(r io.Reader, lim Limits) (Submission, error) {
	dec := json.NewDecoder(&boundedRuns{r: &boundedMembers{r: r}, bound: lim.maxProductBytes()})
	dec.DisallowUnknownFields()
	var (
		opts  jsonOptions
		probs problems
		v     *validator
		sub   Submission
		rows  int
	)
	// products reads the value of "products": null or an array. A second
	// "products" replaces the first, as when decoding into a field.
	products := func() error {
		probs = problems{max: lim.MaxProblemsShow}
		v = newValidator(lim, &probs, "products[%d]")
		sub.Products, rows = nil, 0
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok == nil {
			return nil
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return fmt.Errorf(`"products" must be an array of products, not %s`, describeToken(tok))
		}
		var jp jsonProduct // one for all, so that a product allocates only what it holds
		for i := 0; dec.More(); i++ {
			if i >= lim.MaxRows {
				return fault.New(fault.TooLarge, "", "products[%d]: more than %d products (the limit per request)", i, lim.MaxRows)
			}
			jp = jsonProduct{}
			if err := dec.Decode(&jp); err != nil {
				var run *RunTooLong
				if errors.As(err, &run) {
					return fault.New(fault.TooLarge, "", "products[%d]: longer than %d bytes (the limit of one product)", i, run.Bound)
				}
				return fmt.Errorf("products[%d]: %w", i, err)
			}
			rows++
			serial, err := serialString(jp.SerialNumber)
			if err != nil {
				probs.add("products[%d]: serialNumber %v", i, err)
				continue
			}
			urls := jp.InputURLs
			if len(urls) == 0 {
				urls = jp.InputURLs2
			}
			if p, ok := v.product(i, serial, jp.ProductName, urls); ok {
				sub.Products = append(sub.Products, p)
			}
			if v.images > lim.MaxImages {
				return fault.New(fault.TooLarge, "", "products[%d]: more than %d image URLs in the request (the limit)", i, lim.MaxImages)
			}
		}
		_, err = dec.Token() // the closing ]
		return err
	}
	member := func(key string) error {
		var dst any
		switch {
		case strings.EqualFold(key, "products"):
			return products()
		case strings.EqualFold(key, "webhookUrl"):
			dst = &opts.WebhookURL
		case strings.EqualFold(key, "quality"):
			dst = &opts.Quality
		case strings.EqualFold(key, "maxWidth"):
			dst = &opts.MaxWidth
		case strings.EqualFold(key, "maxHeight"):
			dst = &opts.MaxHeight
		case strings.EqualFold(key, "sizes"):
			dst = &opts.Sizes
		default:
			// Read on to the value's end (its bound is boundedMembers'),
			// so that a long unknown member is refused as too long.
			var skipped json.RawMessage
			if err := dec.Decode(&skipped); err != nil {
				return err
			}
			return fmt.Errorf("json: unknown field %q", key)
		}
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}
	walk := func() error {
		tok, err := dec.Token()
		if err != nil || tok == nil { // null: an upload without products
			return err
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return fmt.Errorf("the body must be a JSON object, not %s", describeToken(tok))
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			if err := member(tok.(string)); err != nil {
				return err
			}
		}
		_, err = dec.Token() // the closing }
		return err
	}
	if err := walk(); err != nil {
		return Submission{}, jsonError(dec, err)
	}
	if dec.More() {
		return Submission{}, fault.New(fault.Invalid, "", "invalid JSON: more than one value in the body")
	}
	if rows == 0 {
		return Submission{}, fault.New(fault.Invalid, "", `"products" is missing or empty`)
	}
	q, err := ParseQuality(strings.Trim(string(opts.Quality), `"`))
	if err != nil {
		probs.add("quality: %v", err)
	}
	sub.Quality = q
	if err := CheckWebhookURL(opts.WebhookURL); err != nil {
		probs.add("webhookUrl: %v", err)
	}
	sub.WebhookURL = opts.WebhookURL
	var sizingProblems []string
	sub.Sizing, sizingProblems = SizingFromJSON(opts.MaxWidth, opts.MaxHeight, opts.Sizes)
	if len(sizingProblems) == 0 {
		if err := sub.Sizing.CheckPixels(lim.ImageLimits()); err != nil {
			sizingProblems = []string{err.Error()}
		}
	}
	for _, p := range sizingProblems {
		probs.add("%s", p)
	}
	if err := probs.err(); err != nil {
		return Submission{}, err
	}
	return sub, nil
}

// jsonError is the fault for an error dec met reading a JSON upload.
func jsonError(dec *json.Decoder, err error) error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe
	}
	var long *OptionTooLong
	if errors.As(err, &long) {
		return long.Fault()
	}
	var run *RunTooLong
	if errors.As(err, &run) {
		return fault.New(fault.TooLarge, "", "invalid JSON at byte %d: %v (the limit of one product)", dec.InputOffset()+1, run)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fault.New(fault.TooLarge, "", "the upload is larger than %d bytes (the limit)", mbe.Limit)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fault.New(fault.Invalid, "", "invalid JSON at byte %d: %v", syntaxErrorAt(dec), se)
	}
	return fault.New(fault.Invalid, "", "invalid JSON: %v", err)
}

// syntaxErrorAt is where, counting from 1, the syntax error dec just met
// is. A SyntaxError's Offset counts only the bytes the decoder scanned as
// values, not the delimiters its Token read, so it is found again by
// scanning what dec holds from the piece it failed on.
func syntaxErrorAt(dec *json.Decoder) int64 {
	var raw json.RawMessage
	var se *json.SyntaxError
	if err := json.NewDecoder(dec.Buffered()).Decode(&raw); errors.As(err, &se) {
		return dec.InputOffset() + se.Offset
	}
	return dec.InputOffset() + 1 // the delimiter dec stopped at
}

// describeToken names a JSON token's kind for a message.
func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}

func serialString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("must be a string or a number, got %s", raw)
}

// ParseQuality reads a JPEG quality 1..100; empty means DefaultQuality.
func ParseQuality(s string) (int, error) {
	if len(s) > OptionBound(OptQuality) {
		return 0, fmt.Errorf("longer than %d bytes (the limit of this option)", OptionBound(OptQuality))
	}
	if s == "" || s == "null" {
		return DefaultQuality, nil
	}
	q, err := strconv.Atoi(s)
	if err != nil || q < 1 || q > 100 {
		return 0, fmt.Errorf("%q is not a whole number from 1 to 100", s)
	}
	return q, nil
}

// CheckWebhookURL accepts "" (no webhook) or an absolute http(s) URL.
func CheckWebhookURL(s string) error {
	if s == "" {
		return nil
	}
	return checkURL(s, 2048)
}

// validator checks products one by one, remembering serial numbers.
type validator struct {
	lim   Limits
	probs *problems
	// serials maps each serial number (a copy: a CSV field shares its
	// row's memory) to where it was first seen.
	serials map[string]int
	at      string // formats a position: "line %d", "products[%d]"
	images  int
}

func newValidator(lim Limits, p *problems, at string) *validator {
	return &validator{lim: lim, probs: p, serials: map[string]int{}, at: at}
}

// product validates the product at position pos (a line or an index).
func (v *validator) product(pos int, serial, name string, urls []string) (Product, bool) {
	ok := true
	bad := func(col, format string, args ...any) {
		ok = false
		if v.probs.full() { // formatted for nothing: an upload of many bad rows allocates per row
			v.probs.dropped++
			return
		}
		v.probs.add("%s, column %q: %s", fmt.Sprintf(v.at, pos), col, fmt.Sprintf(format, args...))
	}
	serial, name = strings.TrimSpace(serial), strings.TrimSpace(name)
	switch {
	case serial == "":
		bad(ColSerial, "is empty")
	case len(serial) > v.lim.MaxFieldLength:
		bad(ColSerial, "is longer than %d bytes", v.lim.MaxFieldLength)
	case !utf8.ValidString(serial):
		bad(ColSerial, "is not valid UTF-8")
	default:
		if first, dup := v.serials[serial]; dup {
			bad(ColSerial, "%q is a duplicate of %s", serial, fmt.Sprintf(v.at, first))
		} else {
			v.serials[strings.Clone(serial)] = pos
		}
	}
	switch {
	case name == "":
		bad(ColName, "is empty")
	case len(name) > v.lim.MaxFieldLength:
		bad(ColName, "is longer than %d bytes", v.lim.MaxFieldLength)
	case !utf8.ValidString(name):
		bad(ColName, "is not valid UTF-8")
	}
	switch {
	case len(urls) == 0:
		bad(ColURLs, "has no URL")
	case len(urls) > v.lim.MaxURLsPerRow:
		bad(ColURLs, "has %d URLs, more than %d", len(urls), v.lim.MaxURLsPerRow)
	}
	for i, u := range urls {
		if err := checkURL(u, v.lim.MaxURLLength); err != nil {
			bad(ColURLs, "URL %d %v", i+1, err)
		}
	}
	v.images += len(urls)
	return Product{SerialNumber: serial, ProductName: name, InputURLs: urls}, ok
}

func checkURL(s string, maxLen int) error {
	if len(s) > maxLen {
		return fmt.Errorf("is longer than %d characters", maxLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a valid URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http or https URL", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q contains credentials; they are not allowed", redactUser(u))
	}
	return nil
}

func redactUser(u *url.URL) string {
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

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
// and of functions/README.md. MaxBytes stays below the 32 MiB Cloud Run
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

func (p *problems) add(format string, args ...any) {
	if len(p.list) >= p.max {
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

// jsonUpload is the JSON form of an upload.
type jsonUpload struct {
	Products []struct {
		SerialNumber json.RawMessage `json:"serialNumber"`
		ProductName  string          `json:"productName"`
		InputURLs    []string        `json:"inputUrls"`
		InputURLs2   []string        `json:"inputImageUrls"`
	} `json:"products"`
	WebhookURL string          `json:"webhookUrl"`
	Quality    json.RawMessage `json:"quality"`
	MaxWidth   json.RawMessage `json:"maxWidth"`
	MaxHeight  json.RawMessage `json:"maxHeight"`
	Sizes      json.RawMessage `json:"sizes"`
}

// ParseJSON reads {"products":[{"serialNumber","productName","inputUrls":[…]}],
// "webhookUrl","quality","maxWidth","maxHeight","sizes"}. serialNumber may
// be a string or a number; the sizing options are SizingFromJSON's. Every
// member but "products" is refused as soon as it passes its bound
// (OptionBound), before more of it is read.
func ParseJSON(r io.Reader, lim Limits) (Submission, error) {
	dec := json.NewDecoder(&boundedMembers{r: r})
	dec.DisallowUnknownFields()
	var in jsonUpload
	if err := dec.Decode(&in); err != nil {
		var long *OptionTooLong
		if errors.As(err, &long) {
			return Submission{}, long.Fault()
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Submission{}, fault.New(fault.TooLarge, "", "the upload is larger than %d bytes (the limit)", mbe.Limit)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Submission{}, fault.New(fault.Invalid, "", "invalid JSON at byte %d: %v", se.Offset, err)
		}
		return Submission{}, fault.New(fault.Invalid, "", "invalid JSON: %v", err)
	}
	if dec.More() {
		return Submission{}, fault.New(fault.Invalid, "", "invalid JSON: more than one value in the body")
	}
	if len(in.Products) == 0 {
		return Submission{}, fault.New(fault.Invalid, "", `"products" is missing or empty`)
	}
	if len(in.Products) > lim.MaxRows {
		return Submission{}, fault.New(fault.TooLarge, "", "%d products: more than %d (the limit per request)", len(in.Products), lim.MaxRows)
	}
	probs := problems{max: lim.MaxProblemsShow}
	v := newValidator(lim, &probs, "products[%d]")
	sub := Submission{Products: make([]Product, 0, len(in.Products))}
	for i, jp := range in.Products {
		where := fmt.Sprintf("products[%d]", i)
		serial, err := serialString(jp.SerialNumber)
		if err != nil {
			probs.add("%s: serialNumber %v", where, err)
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
			return Submission{}, fault.New(fault.TooLarge, "", "%s: more than %d image URLs in the request (the limit)", where, lim.MaxImages)
		}
	}
	q, err := ParseQuality(strings.Trim(string(in.Quality), `"`))
	if err != nil {
		probs.add("quality: %v", err)
	}
	sub.Quality = q
	if err := CheckWebhookURL(in.WebhookURL); err != nil {
		probs.add("webhookUrl: %v", err)
	}
	sub.WebhookURL = in.WebhookURL
	var sizingProblems []string
	sub.Sizing, sizingProblems = SizingFromJSON(in.MaxWidth, in.MaxHeight, in.Sizes)
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
	where := fmt.Sprintf(v.at, pos)
	ok := true
	bad := func(col, format string, args ...any) {
		v.probs.add("%s, column %q: %s", where, col, fmt.Sprintf(format, args...))
		ok = false
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

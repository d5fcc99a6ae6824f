package batch

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// text renders an error as a user sees it: the message, then each detail.
func text(err error) string {
	var fe *fault.Error
	if !errors.As(err, &fe) {
		return "NOT A fault.Error: " + err.Error()
	}
	return strings.Join(append([]string{string(fe.Kind) + ": " + fe.Message}, fe.Details...), " | ")
}

func TestParseCSV(t *testing.T) {
	small := DefaultLimits
	small.MaxRows, small.MaxURLsPerRow, small.MaxURLLength, small.MaxImages, small.MaxProblemsShow = 2, 2, 40, 3, 3
	tests := []struct {
		name    string
		in      string
		lim     *Limits
		want    []Product
		wantErr string
	}{
		{
			name: "seed example",
			in: "Serial Number,Product Name,Input Image URLs\n" +
				"1,SKU1,\"https://a.example/1.jpg, https://a.example/2.jpg\"\n" +
				"2,SKU2,https://a.example/3.jpg\n",
			want: []Product{
				{"1", "SKU1", []string{"https://a.example/1.jpg", "https://a.example/2.jpg"}},
				{"2", "SKU2", []string{"https://a.example/3.jpg"}},
			},
		},
		{
			name: "BOM, CRLF, blank lines, spaces",
			in:   "\ufeffSerial Number,Product Name,Input Image URLs\r\n\r\n 7 , Chair ,\" http://x.example/a.png ,http://x.example/b.png \"\r\n\r\n",
			want: []Product{{"7", "Chair", []string{"http://x.example/a.png", "http://x.example/b.png"}}},
		},
		{
			name: "header any order and case, extra columns ignored",
			in:   "input_image_urls,NOTES,serialnumber,PRODUCT NAME\nhttps://a.example/1.jpg,ignored,S1,Lamp\n",
			want: []Product{{"S1", "Lamp", []string{"https://a.example/1.jpg"}}},
		},
		{
			name:    "missing trailing fields are empty",
			in:      "Serial Number,Product Name,Input Image URLs\nS1,Lamp\n",
			wantErr: `invalid: 1 problem in the upload | line 2, column "Input Image URLs": has no URL`,
		},
		{name: "empty file", in: "", wantErr: "invalid: the CSV is empty: expected a header row with Serial Number, Product Name, Input Image URLs"},
		{name: "only a BOM", in: "\ufeff", wantErr: "invalid: the CSV is empty: expected a header row with Serial Number, Product Name, Input Image URLs"},
		{name: "header only", in: "Serial Number,Product Name,Input Image URLs\r\n", wantErr: "invalid: the CSV has a header but no product rows"},
		{
			name:    "missing column",
			in:      "Serial Number,Name,URLs\n1,a,http://x.example/\n",
			wantErr: `invalid: 1 problem in the upload | line 1: the header lacks the column "Product Name", "Input Image URLs" (found: "Serial Number", "Name", "URLs")`,
		},
		{
			name:    "duplicate column",
			in:      "Serial Number,Product Name,Input Image URLs,serial number\n1,a,http://x.example/,2\n",
			wantErr: `invalid: 1 problem in the upload | line 1, column 4: column "serial number" appears twice in the header`,
		},
		{
			name:    "extra fields in a row",
			in:      "Serial Number,Product Name,Input Image URLs\n1,a,http://x.example/1.jpg,http://x.example/2.jpg\n",
			wantErr: `invalid: 1 problem in the upload | line 2: 4 fields, but the header has 3`,
		},
		{
			name: "every problem by line and column",
			in: "Serial Number,Product Name,Input Image URLs\n" +
				"1,,ftp://x.example/a.jpg\n" +
				"1,B,\"http://x.example/a.jpg,javascript:alert(1)\"\n" +
				",C,http:///nohost\n",
			wantErr: `invalid: 6 problems in the upload | ` +
				`line 2, column "Product Name": is empty | ` +
				`line 2, column "Input Image URLs": URL 1 "ftp://x.example/a.jpg" is not an http or https URL | ` +
				`line 3, column "Serial Number": "1" is a duplicate of line 2 | ` +
				`line 3, column "Input Image URLs": URL 2 "javascript:alert(1)" is not an http or https URL | ` +
				`line 4, column "Serial Number": is empty | ` +
				`line 4, column "Input Image URLs": URL 1 "http:///nohost" has no host`,
		},
		{
			name:    "problems are capped",
			lim:     &small,
			in:      "Serial Number,Product Name,Input Image URLs\n,,x\n",
			wantErr: `invalid: 3 problems in the upload | line 2, column "Serial Number": is empty | line 2, column "Product Name": is empty | line 2, column "Input Image URLs": URL 1 "x" is not an http or https URL`,
		},
		{
			name:    "problems beyond the cap are counted",
			lim:     &small,
			in:      "Serial Number,Product Name,Input Image URLs\n,,x\n,,x\n",
			wantErr: `invalid: 6 problems in the upload | line 2, column "Serial Number": is empty | line 2, column "Product Name": is empty | line 2, column "Input Image URLs": URL 1 "x" is not an http or https URL | … and 3 more problems`,
		},
		{
			name:    "too many rows",
			lim:     &small,
			in:      "Serial Number,Product Name,Input Image URLs\n1,a,http://x.example/1\n2,b,http://x.example/2\n3,c,http://x.example/3\n",
			wantErr: `too_large: line 4: more than 2 product rows (the limit per request)`,
		},
		{
			name:    "too many URLs in a row",
			lim:     &small,
			in:      "Serial Number,Product Name,Input Image URLs\n1,a,\"http://x.example/1,http://x.example/2,http://x.example/3\"\n",
			wantErr: `invalid: 1 problem in the upload | line 2, column "Input Image URLs": has 3 URLs, more than 2`,
		},
		{
			name:    "URL too long",
			lim:     &small,
			in:      "Serial Number,Product Name,Input Image URLs\n1,a,http://x.example/" + strings.Repeat("a", 40) + "\n",
			wantErr: `invalid: 1 problem in the upload | line 2, column "Input Image URLs": URL 1 is longer than 40 characters`,
		},
		{
			name:    "too many images in the request",
			lim:     &small,
			in:      "Serial Number,Product Name,Input Image URLs\n1,a,\"http://x.example/1,http://x.example/2\"\n2,b,\"http://x.example/3,http://x.example/4\"\n",
			wantErr: `too_large: line 3: more than 3 image URLs in the request (the limit)`,
		},
		{
			name:    "credentials in a URL",
			in:      "Serial Number,Product Name,Input Image URLs\n1,a,http://user:secret@x.example/1.jpg\n",
			wantErr: `invalid: 1 problem in the upload | line 2, column "Input Image URLs": URL 1 "http://REDACTED@x.example/1.jpg" contains credentials; they are not allowed`,
		},
		{
			name:    "broken quoting",
			in:      "Serial Number,Product Name,Input Image URLs\n1,a,\"http://x.example/1\n",
			wantErr: `invalid: line 2, column 25: extraneous or missing " in quoted-field`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := DefaultLimits
			if tt.lim != nil {
				lim = *tt.lim
			}
			got, err := ParseCSV(strings.NewReader(tt.in), lim)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				if text(err) != tt.wantErr {
					t.Errorf("error\n got: %s\nwant: %s", text(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %s", text(err))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseCSVBodyLimit(t *testing.T) {
	body := "Serial Number,Product Name,Input Image URLs\n" + strings.Repeat("1,a,http://x.example/1\n", 100)
	rec := httptest.NewRecorder()
	r := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(body)), 200)
	_, err := ParseCSV(r, DefaultLimits)
	if got, want := text(err), "too_large: the upload is larger than 200 bytes (the limit)"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Submission
		wantErr string
	}{
		{
			name: "seed example with a numeric serial",
			in:   `{"products":[{"serialNumber":1,"productName":"Example Product","inputUrls":["https://example.com/image1.jpg"]}],"webhookUrl":"https://hooks.example/x"}`,
			want: Submission{Products: []Product{{"1", "Example Product", []string{"https://example.com/image1.jpg"}}}, WebhookURL: "https://hooks.example/x", Quality: 50},
		},
		{
			name: "quality and inputImageUrls",
			in:   `{"products":[{"serialNumber":"A","productName":"B","inputImageUrls":["http://x.example/1"]}],"quality":80}`,
			want: Submission{Products: []Product{{"A", "B", []string{"http://x.example/1"}}}, Quality: 80},
		},
		{name: "no products", in: `{"products":[]}`, wantErr: `invalid: "products" is missing or empty`},
		{name: "syntax", in: `{"products":[}`, wantErr: `invalid: invalid JSON at byte 14: invalid character '}' looking for beginning of value`},
		{name: "unknown field", in: `{"items":[]}`, wantErr: `invalid: invalid JSON: json: unknown field "items"`},
		{
			name:    "bad fields",
			in:      `{"products":[{"serialNumber":true,"productName":"x","inputUrls":["http://x.example/"]},{"serialNumber":"2","productName":"","inputUrls":["file:///etc/passwd"]}],"quality":0,"webhookUrl":"nope"}`,
			wantErr: `invalid: 5 problems in the upload | products[0]: serialNumber must be a string or a number, got true | products[1], column "Product Name": is empty | products[1], column "Input Image URLs": URL 1 "file:///etc/passwd" is not an http or https URL | quality: "0" is not a whole number from 1 to 100 | webhookUrl: "nope" is not an http or https URL`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJSON(strings.NewReader(tt.in), DefaultLimits)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				if text(err) != tt.wantErr {
					t.Errorf("error\n got: %s\nwant: %s", text(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %s", text(err))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// ParseJSON reads the products one at a time, refusing the upload at the
// first product past a limit, with the members in any order.
func TestParseJSONStream(t *testing.T) {
	good := func(serial string) string {
		return `{"serialNumber":"` + serial + `","productName":"P","inputUrls":["https://h.example/` + serial + `"]}`
	}
	two := DefaultLimits
	two.MaxRows, two.MaxImages = 2, 3
	pastBound := `{"products":[{"serialNumber":"a","productName":"b"` + strings.Repeat(" ", DefaultLimits.maxProductBytes()) + `}]}`
	tests := []struct {
		name, in, wantErr string
		lim               *Limits
		wantSerials       []string
	}{
		{name: "options before and after products", in: `{"quality":70,"products":[` + good("a") + `],"webhookUrl":"https://hooks.example/x"}`, wantSerials: []string{"a"}},
		{name: "a second products replaces the first", in: `{"products":[` + good("a") + `,{}],"PRODUCTS":[` + good("a") + `]}`, wantSerials: []string{"a"}},
		{name: "null products", in: `{"products":null}`, wantErr: `invalid: "products" is missing or empty`},
		{name: "products not an array", in: `{"products":"a"}`, wantErr: `invalid: invalid JSON: "products" must be an array of products, not a string`},
		{name: "body not an object", in: `[1]`, wantErr: `invalid: invalid JSON: the body must be a JSON object, not an array`},
		{name: "rows past the limit", lim: &two, in: `{"products":[` + good("a") + `,` + good("b") + `,{},{}]}`, wantErr: `too_large: products[2]: more than 2 products (the limit per request)`},
		{name: "images past the limit", lim: &two, in: `{"products":[` + good("a") + `,{"inputUrls":["","",""]}]}`, wantErr: `too_large: products[1]: more than 3 image URLs in the request (the limit)`},
		{name: "syntax error in the second product", in: `{"products":[` + good("a") + `, {"serialNumber":tru}]}`, wantErr: `invalid: invalid JSON at byte 109: invalid character '}' in literal true (expecting 'e')`},
		{name: "unknown member of a product", in: `{"products":[` + good("a") + `,{"colour":1}]}`, wantErr: `invalid: invalid JSON: products[1]: json: unknown field "colour"`},
		{name: "product past its bound", in: pastBound, wantErr: fmt.Sprintf(`too_large: products[0]: longer than %d bytes (the limit of one product)`, DefaultLimits.maxProductBytes())},
		{name: "spaces past the bound", in: `{` + strings.Repeat(" ", DefaultLimits.maxProductBytes()+1) + `"products":[]}`, wantErr: fmt.Sprintf(`too_large: invalid JSON at byte 2: more than %d bytes without a separator (the limit of one product)`, DefaultLimits.maxProductBytes())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := DefaultLimits
			if tt.lim != nil {
				lim = *tt.lim
			}
			got, err := ParseJSON(strings.NewReader(tt.in), lim)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				if text(err) != tt.wantErr {
					t.Fatalf("error\n got: %.300v\nwant: %s", text(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %s", text(err))
			}
			var serials []string
			for _, p := range got.Products {
				serials = append(serials, p.SerialNumber)
			}
			if !reflect.DeepEqual(serials, tt.wantSerials) {
				t.Errorf("products %q, want %q", serials, tt.wantSerials)
			}
		})
	}
}

// A product with every field at its limit, every byte written as a \u
// escape and indented, is within the bound of one product.
func TestParseJSONLargestProductAccepted(t *testing.T) {
	lim := DefaultLimits
	escaped := func(s string) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			fmt.Fprintf(&b, `\u%04x`, c)
		}
		return `"` + b.String() + `"`
	}
	url := "https://h.example/" + strings.Repeat("a", lim.MaxURLLength-len("https://h.example/"))
	var urls []string
	for range lim.MaxURLsPerRow {
		urls = append(urls, "\n      "+escaped(url))
	}
	field := escaped(strings.Repeat("s", lim.MaxFieldLength))
	product := "{\n    \"serialNumber\": " + field + ",\n    \"productName\": " + field +
		",\n    \"inputUrls\": [" + strings.Join(urls, ",") + "\n    ],\n    \"inputImageUrls\": [" + strings.Join(urls, ",") + "\n    ]\n  }"
	sub, err := ParseJSON(strings.NewReader("{\n  \"products\": [\n  "+product+"\n  ]\n}"), lim)
	if err != nil {
		t.Fatalf("a %d-byte product: %.300v", len(product), err)
	}
	if len(sub.Products) != 1 || len(sub.Products[0].InputURLs) != lim.MaxURLsPerRow || sub.Products[0].InputURLs[0] != url {
		t.Errorf("got %.300v", sub.Products)
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		c    Counts
		want Status
	}{
		{Counts{Total: 3}, Pending},
		{Counts{Total: 3, Processed: 1}, Processing},
		{Counts{Total: 3, Failed: 1}, Processing},
		{Counts{Total: 3, Processed: 2, Failed: 1}, Completed},
		{Counts{Total: 3, Failed: 3}, Failed},
	}
	for _, tt := range tests {
		if got := StatusOf(tt.c); got != tt.want {
			t.Errorf("StatusOf(%+v) = %s, want %s", tt.c, got, tt.want)
		}
	}
}

func TestImageID(t *testing.T) {
	r := ImageRef{Product: 12, URL: 3}
	got, err := ParseImageID(r.ID())
	if err != nil || got != r {
		t.Errorf("round trip %v → %q → %v, %v", r, r.ID(), got, err)
	}
	for _, bad := range []string{"", "1", "1-", "a-1", "1-2-3", "01-2"} {
		if _, err := ParseImageID(bad); err == nil {
			t.Errorf("ParseImageID(%q) accepted", bad)
		}
	}
}

// Every reason code is said in words.
func TestEveryReasonHasWords(t *testing.T) {
	for _, code := range Reasons {
		if code == ReasonHTTPPrefix+"NNN" {
			code = "http_500"
		}
		if txt := ReasonText(code); strings.Contains(txt, "("+code+")") || !strings.HasSuffix(txt, ".") {
			t.Errorf("%s has no words: %q", code, txt)
		}
	}
}

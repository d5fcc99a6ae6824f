package functions

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

const optionsCSV = "Serial Number,Product Name,Input Image URLs\n1,A,https://example.com/a.jpg\n"

// optionRequests are uploads of sizes as value in every form the upload
// takes it: query, form field, JSON array and JSON short string (value is
// then the array's or the string's contents).
func optionRequests(t *testing.T, short, array string) map[string]*http.Request {
	t.Helper()
	req := func(ctype, query string, body []byte) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/api/upload", bytes.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", ctype)
		return r
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	if err := mw.WriteField("sizes", short); err != nil {
		t.Fatal(err)
	}
	fw, _ := mw.CreateFormFile("csv", "p.csv")
	fw.Write([]byte(optionsCSV))
	mw.Close()
	product := `{"products":[{"serialNumber":1,"productName":"A","inputUrls":["https://example.com/a.jpg"]}],`
	return map[string]*http.Request{
		"query":       req("text/csv", "sizes="+short, []byte(optionsCSV)),
		"form field":  req(mw.FormDataContentType(), "", mp.Bytes()),
		"JSON array":  req("application/json", "", []byte(product+`"sizes":[`+array+`]}`)),
		"JSON string": req("application/json", "", []byte(product+`"sizes":"`+short+`"}`)),
	}
}

// allocatedReading reads an upload's submission and answers the bytes the
// process allocated meanwhile.
func allocatedReading(r *http.Request, lim batch.Limits) (uint64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := readSubmission(r, lim, func(batch.Product) error { return nil })
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, err
}

// A 30 MiB sizes value is refused with a 400 that names the option and
// its bound, in every form, while the process allocates less than 16 MiB
// (TotalAlloc: every byte allocated, collected or not) reading it.
func TestHugeSizesRefusedUnread(t *testing.T) {
	const huge = 30 << 20
	short := strings.Repeat("thumb:200,", huge/10)
	array := strings.Repeat(`{"name":"t","width":1},`, huge/23) + `{"name":"t","width":1}`
	lim := batch.DefaultLimits
	lim.MaxBytes = 64 << 20 // the body cap is not what refuses them
	for form, r := range optionRequests(t, short, array) {
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, lim.MaxBytes)
		allocated, err := allocatedReading(r, lim)
		t.Logf("%s: %d KiB allocated, %v", form, allocated>>10, err)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Invalid || len(fe.Details) != 1 ||
			!strings.Contains(fe.Details[0], "sizes: longer than 2048 bytes") {
			t.Errorf("%s: %v, want a 400 saying sizes is longer than 2048 bytes", form, err)
		}
		if allocated >= 16<<20 {
			t.Errorf("%s: %d MiB allocated reading a 30 MiB sizes value, want less than 16", form, allocated>>20)
		}
	}
}

// A 30 MiB JSON body of empty products, or of one product with a 30 MiB
// inputUrls, is refused with a 4xx while the process allocates less than
// 16 MiB reading it: the products are read and checked one at a time.
func TestHugeJSONProductsRefusedUnread(t *testing.T) {
	const huge = 30 << 20
	for name, body := range map[string]string{
		"empty products": `{"products":[` + strings.Repeat(`{},`, huge/3) + `{}]}`,
		"URLs in one product": `{"products":[{"serialNumber":"1","productName":"p","inputUrls":[` +
			strings.Repeat(`"",`, huge/3) + `""]}]}`,
	} {
		lim := batch.DefaultLimits
		lim.MaxBytes = 64 << 20 // the body cap is not what refuses them
		r := httptest.NewRequest(http.MethodPost, "/api/upload", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, lim.MaxBytes)
		allocated, err := allocatedReading(r, lim)
		t.Logf("%s: %d KiB allocated, %.300v", name, allocated>>10, err)
		if st := fault.HTTPStatus(err); err == nil || st < 400 || st > 499 {
			t.Errorf("%s: %.300v (status %d), want a 4xx", name, err, st)
		}
		if allocated >= 16<<20 {
			t.Errorf("%s: %d MiB allocated reading a 30 MiB body, want less than 16", name, allocated>>20)
		}
	}
}

// A value just past its bound is refused, never cut to the bound and
// read: a form field whose first 4 KiB would be a valid sizes value.
func TestOptionPastItsBoundRefused(t *testing.T) {
	short := "thumb:200" + strings.Repeat(" ", 5000)
	array := `{"name":"thumb","width":200}` + strings.Repeat(" ", 5000)
	for form, r := range optionRequests(t, short, array) {
		_, err := readSubmission(r, batch.DefaultLimits, func(batch.Product) error { return nil })
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Invalid || len(fe.Details) != 1 ||
			!strings.Contains(fe.Details[0], "sizes: longer than 2048 bytes") {
			t.Errorf("%s: %v, want a 400 saying sizes is longer than 2048 bytes", form, err)
		}
	}
	// Just within the bound, every form reads it.
	pad := strings.Repeat(" ", 2000)
	for form, r := range optionRequests(t, "thumb:200"+pad, `{"name":"thumb","width":200}`+pad) {
		sub, err := readSubmission(r, batch.DefaultLimits, func(batch.Product) error { return nil })
		if err != nil || len(sub.Sizing.Sizes) != 1 || sub.Sizing.Sizes[0] != (batch.Size{Name: "thumb", Width: 200}) {
			t.Errorf("%s: %+v, %v; want thumb 200 wide", form, sub.Sizing, err)
		}
	}
}

// Every option has its bound, in every form: a query value, a form field
// and a JSON member one byte past it are refused, naming it.
func TestEveryOptionBounded(t *testing.T) {
	product := `{"products":[{"serialNumber":1,"productName":"A","inputUrls":["https://example.com/a.jpg"]}],`
	for _, opt := range []string{batch.OptWebhookURL, batch.OptQuality, batch.OptMaxWidth, batch.OptMaxHeight, batch.OptSizes} {
		long := strings.Repeat("9", batch.OptionBound(opt)+1)
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		fw, _ := mw.CreateFormFile("csv", "p.csv")
		fw.Write([]byte(optionsCSV))
		mw.WriteField(opt, long)
		mw.Close()
		for form, r := range map[string]*http.Request{
			"query":            httptest.NewRequest(http.MethodPost, "/api/upload?"+opt+"="+long, strings.NewReader(optionsCSV)),
			"query, %-encoded": httptest.NewRequest(http.MethodPost, "/api/upload?"+opt+"="+strings.Repeat("%39", len(long)), strings.NewReader(optionsCSV)),
			"form field":       httptest.NewRequest(http.MethodPost, "/api/upload", &mp),
			"JSON":             httptest.NewRequest(http.MethodPost, "/api/upload", strings.NewReader(product+`"`+opt+`":`+long+`}`)),
		} {
			r.Header.Set("Content-Type", map[string]string{"query": "text/csv", "query, %-encoded": "text/csv", "form field": mw.FormDataContentType(), "JSON": "application/json"}[form])
			_, err := readSubmission(r, batch.DefaultLimits, func(batch.Product) error { return nil })
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Invalid || !strings.Contains(strings.Join(fe.Details, "\n"), opt+": ") ||
				!strings.Contains(strings.Join(fe.Details, "\n"), "longer than") {
				t.Errorf("%s %s of %d bytes: %v, want a 400 naming it as too long", form, opt, len(long), err)
			}
		}
	}
}

// A sizing whose outputs could pass the pixel cap is refused in every
// form, saying why; one at the cap is accepted.
func TestPixelCapInEveryForm(t *testing.T) {
	for form, r := range optionRequests(t, "a:10000,b:10000", `{"name":"a","width":10000},{"name":"b","width":10000}`) {
		_, err := readSubmission(r, batch.DefaultLimits, func(batch.Product) error { return nil })
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Invalid || !strings.Contains(strings.Join(fe.Details, "\n"),
			"sizes: the outputs of one image could add up to 150000000 pixels, more than the cap of 100000000") {
			t.Errorf("%s: %v, want a 400 saying the outputs pass the pixel cap", form, err)
		}
	}
	for form, r := range optionRequests(t, "a:10000", `{"name":"a","width":10000}`) {
		if sub, err := readSubmission(r, batch.DefaultLimits, func(batch.Product) error { return nil }); err != nil || len(sub.Sizing.Sizes) != 1 {
			t.Errorf("%s: %+v, %v; want a sizing at the cap accepted", form, sub.Sizing, err)
		}
	}
}

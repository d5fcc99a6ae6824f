package functions

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// FuzzUpload drives the upload handler's decoding (content types, multipart,
// CSV, JSON, options, body cap): no panic, every refusal is a 4xx with a
// message, and an accepted sizing keeps every bound, the pixel cap too.
// The seeds give sizes in every form: query and form field, each in the
// short form and as JSON, and a JSON body's array and short string.
func FuzzUpload(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "csv", "*.csv"))
	for _, name := range append(files, filepath.Join("..", "testdata", "sample.csv")) {
		b, _ := os.ReadFile(name)
		f.Add("text/csv", "quality=70", b)
		f.Add("text/csv", "maxWidth=1600&maxHeight=x&sizes=thumb:200,medium:800x800", b)
		f.Add("text/csv", "sizes=%5B%7B%22name%22%3A%22t%22%2C%22width%22%3A200%7D%5D&maxHeight=900", b)
		f.Add("text/csv", "sizes=a:10000,b:x10000", b)
		for _, sizes := range []string{`[{"name":"thumb","width":200}]`, "thumb:200x200,big:10000"} {
			var mp bytes.Buffer
			mw := multipart.NewWriter(&mp)
			mw.WriteField("quality", "40")
			fw, _ := mw.CreateFormFile("csv", "x.csv")
			fw.Write(b)
			mw.WriteField("webhookUrl", "https://hooks.example/x")
			mw.WriteField("sizes", sizes)
			mw.WriteField("maxHeight", "900")
			mw.Close()
			f.Add(mw.FormDataContentType(), "", mp.Bytes())
		}
	}
	js, _ := os.ReadFile(filepath.Join("..", "testdata", "upload.json"))
	f.Add("application/json", "", js)
	f.Add("application/json", "", []byte(`{"products":[{"serialNumber":1,"productName":"a","inputUrls":["http://h/x"]}],"maxWidth":"1600","sizes":[{"name":"t","width":2}]}`))
	f.Add("application/json", "", []byte(`{"products":[{"serialNumber":"a","productName":"b","inputUrls":["https://h/x"]}],"SIZES":"t:200x200,u:x10000","maxHeight":null}`))
	f.Add("application/json", "", []byte(`{"\u0073izes":[{"name":"t","width":10000},{"name":"u","height":10000}],"products":[{"serialNumber":"a","productName":"b","inputUrls":["https://h/x"]}]}`))
	f.Add("application/json; charset=utf-8", "", []byte(`{"products":[{"serialNumber":true}]}`))
	f.Add("application/json", "", []byte(`{"products":[`+strings.Repeat(`{},`, 200)+`{}]}`))
	f.Add("application/json", "", []byte(`{"products":[{"serialNumber":"1","productName":"p","inputUrls":[`+strings.Repeat(`"",`, 1000)+`""]}]}`))
	f.Add("multipart/form-data; boundary=x", "", []byte("--x\r\nContent-Disposition: form-data; name=\"csv\"\r\n\r\na,b\r\n--x--"))
	lim := batch.DefaultLimits
	lim.MaxBytes, lim.MaxRows, lim.MaxImages = 4096, 50, 100
	f.Fuzz(func(t *testing.T, ctype, query string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/api/upload", bytes.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", ctype)
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, lim.MaxBytes)
		var streamed []batch.Product
		sub, err := readSubmission(r, lim, func(p batch.Product) error {
			streamed = append(streamed, p)
			return nil
		})
		if err == nil {
			if len(sub.Products)+len(streamed) == 0 || len(sub.Products) > 0 && len(streamed) > 0 || sub.Quality < 1 || sub.Quality > 100 || batch.CheckWebhookURL(sub.WebhookURL) != nil {
				t.Fatalf("accepted %+v", sub)
			}
			z := sub.Sizing
			if z.MaxWidth < 0 || z.MaxWidth > batch.MaxSide || z.MaxHeight < 0 || z.MaxHeight > batch.MaxSide || len(z.Sizes) > batch.MaxSizes ||
				z.OutputPixels(lim.ImageLimits()) > batch.OutputPixelCap(lim.ImageLimits()) {
				t.Fatalf("accepted sizing %+v", z)
			}
			for _, sz := range z.Sizes {
				if sz.Name == "" || sz.Width+sz.Height == 0 {
					t.Fatalf("accepted size %+v", sz)
				}
			}
			return
		}
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Message == "" {
			t.Fatalf("error without a message: %v", err)
		}
		if st := fault.HTTPStatus(err); st < 400 || st > 499 {
			t.Fatalf("refusal maps to %d: %v", st, err)
		}
	})
}

package functions

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// FuzzUpload drives the upload handler's decoding (content types, multipart,
// CSV, JSON, options, body cap): no panic, and every refusal is a 4xx with a
// message.
func FuzzUpload(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "csv", "*.csv"))
	for _, name := range append(files, filepath.Join("..", "testdata", "sample.csv")) {
		b, _ := os.ReadFile(name)
		f.Add("text/csv", "quality=70", b)
		f.Add("text/csv", "maxWidth=1600&maxHeight=x&sizes=thumb:200,medium:800x800", b)
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		mw.WriteField("quality", "40")
		fw, _ := mw.CreateFormFile("csv", "x.csv")
		fw.Write(b)
		mw.WriteField("webhookUrl", "https://hooks.example/x")
		mw.WriteField("sizes", `[{"name":"thumb","width":200}]`)
		mw.WriteField("maxHeight", "900")
		mw.Close()
		f.Add(mw.FormDataContentType(), "", mp.Bytes())
	}
	js, _ := os.ReadFile(filepath.Join("..", "testdata", "upload.json"))
	f.Add("application/json", "", js)
	f.Add("application/json", "", []byte(`{"products":[{"serialNumber":1,"productName":"a","inputUrls":["http://h/x"]}],"maxWidth":"1600","sizes":[{"name":"t","width":2}]}`))
	f.Add("application/json; charset=utf-8", "", []byte(`{"products":[{"serialNumber":true}]}`))
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
			if z.MaxWidth < 0 || z.MaxWidth > batch.MaxSide || z.MaxHeight < 0 || z.MaxHeight > batch.MaxSide || len(z.Sizes) > batch.MaxSizes {
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

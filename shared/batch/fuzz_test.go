package batch

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// FuzzParseCSV: whatever the bytes, no panic; an error is a 4xx with a
// message; an accepted upload holds only valid, unique products.
func FuzzParseCSV(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "csv", "*.csv"))
	files = append(files, filepath.Join("..", "..", "testdata", "sample.csv"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := DefaultLimits
	lim.MaxRows, lim.MaxURLsPerRow, lim.MaxImages = 50, 5, 100
	f.Fuzz(func(t *testing.T, b []byte) {
		products, err := ParseCSV(bytes.NewReader(b), lim)
		if err != nil {
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Message == "" {
				t.Fatalf("error without a message: %v", err)
			}
			if st := fault.HTTPStatus(err); st < 400 || st > 499 {
				t.Fatalf("error maps to %d, want 4xx: %v", st, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range products {
			if p.SerialNumber == "" || p.ProductName == "" || len(p.InputURLs) == 0 || seen[p.SerialNumber] {
				t.Fatalf("accepted an invalid product %+v", p)
			}
			seen[p.SerialNumber] = true
			for _, u := range p.InputURLs {
				pu, err := url.Parse(u)
				if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Hostname() == "" {
					t.Fatalf("accepted URL %q", u)
				}
			}
		}
	})
}

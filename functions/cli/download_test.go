package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// listDir is the names of the files in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// download reads every page of products and saves each output, the main
// one as SERIAL-N.jpg and each extra size as SERIAL-N-NAME.jpg.
func TestDownloadReadsEveryPage(t *testing.T) {
	api := newFakeAPI(t, 2)
	api.states = []wire.Status{{RequestID: "r1", Status: batch.Completed, TotalImages: 6, ProcessedImages: 6}}
	for _, serial := range []string{"a", "b", "c", "d", "e"} {
		api.products = append(api.products, wire.Product{SerialNumber: serial, OutputImageURLs: []string{api.link(serial + "1")}})
	}
	api.products[4].OutputImageURLs = append(api.products[4].OutputImageURLs, api.link("e2"))
	api.products[4].Outputs = []wire.ImageOutputs{{Index: 1, Sizes: map[string]wire.Size{"thumb": {URL: api.link("e2t")}, "big": {URL: api.link("e2b")}}}}
	dir := filepath.Join(t.TempDir(), "out")
	code, out, errs := run(t, api.vars(), nil, "", "download", "r1", "-d", dir)
	if code != cli.ExitOK || errs != "" {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	want := []string{"a-1.jpg", "b-1.jpg", "c-1.jpg", "d-1.jpg", "e-1.jpg", "e-2-big.jpg", "e-2-thumb.jpg", "e-2.jpg"}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "e-2-thumb.jpg")); string(b) != "output e2t" {
		t.Errorf("e-2-thumb.jpg holds %q", b)
	}
	if line := "8 outputs (74 B) in " + dir + "; 0 of 6 images have none"; !strings.Contains(out, line) {
		t.Errorf("stdout lacks %q:\n%s", line, out)
	}
	var offsets []string
	for _, c := range api.sent("/api/status/") {
		offsets = append(offsets, c.Query["offset"])
	}
	if strings.Join(offsets, ",") != "0,2,4" {
		t.Errorf("pages read at offsets %q, want 0,2,4", offsets)
	}
}

// Images without an output (failed, or not done yet) make exit 2, and
// are counted.
func TestDownloadMissingOutputs(t *testing.T) {
	api := newFakeAPI(t, 10)
	api.states = []wire.Status{{RequestID: "r1", Status: batch.Processing, TotalImages: 3, ProcessedImages: 1}}
	api.products = []wire.Product{{SerialNumber: "a", OutputImageURLs: []string{api.link("a1"), "", ""}}}
	dir := t.TempDir()
	code, out, errs := run(t, api.vars(), nil, "", "download", "r1", "-d", dir)
	if want := "1 outputs (9 B) in " + dir + "; 2 of 3 images have none (failed or not done yet: PROCESSING)\n"; code != cli.ExitFailed || !strings.HasSuffix(out, want) {
		t.Errorf("exit %d, stdout %q, want …%q; stderr %q", code, out, want, errs)
	}
	code, out, _ = run(t, api.vars(), nil, "", "download", "r1", "-d", t.TempDir(), "--json")
	var got struct{ Files, Missing int }
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != cli.ExitFailed || got.Files != 1 || got.Missing != 2 {
		t.Errorf("--json: exit %d, %+v (%v): %s", code, got, err, out)
	}
}

// An output link that no longer answers (a signed link expired) stops the
// download with advice.
func TestDownloadExpiredLink(t *testing.T) {
	api := newFakeAPI(t, 10)
	api.products = []wire.Product{{SerialNumber: "a", OutputImageURLs: []string{api.srv.URL + "/expired"}}}
	code, _, errs := run(t, api.vars(), nil, "", "download", "r1", "-d", t.TempDir())
	if code != cli.ExitError || !strings.Contains(errs, "404 Not Found (a signed link expires: run download again for fresh ones)") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/wire"
)

const sampleCSV = "Serial Number,Product Name,Input Image URLs\nA,Mug,https://example.com/a.jpg\n"

// writeFile writes content to name in a fresh folder and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// uploadForm decodes an upload as the API would: the options by name,
// each as the JSON value it stands for, and the catalogue itself.
func uploadForm(t *testing.T, c apiCall) (map[string]any, string) {
	t.Helper()
	ct, params, err := mime.ParseMediaType(c.ContentType)
	if err != nil {
		t.Fatalf("Content-Type %q: %v", c.ContentType, err)
	}
	opts := map[string]any{}
	switch ct {
	case "application/json":
		var doc map[string]any
		if err := json.Unmarshal(c.Body, &doc); err != nil {
			t.Fatalf("JSON body: %v", err)
		}
		products, _ := json.Marshal(doc["products"])
		delete(doc, "products")
		return doc, string(products)
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(c.Body), params["boundary"])
		file := ""
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return opts, file
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			if p.FormName() == "csv" {
				file = p.FileName() + ":" + string(b)
				continue
			}
			var v any
			if p.FormName() == "webhookUrl" || json.Unmarshal(b, &v) != nil {
				v = string(b)
			}
			opts[p.FormName()] = v
		}
	}
	t.Fatalf("Content-Type %q", ct)
	return nil, ""
}

// The options reach the API under the same names with the same values
// whether the catalogue is a CSV (form fields) or JSON (members of the
// document, which keeps its products).
func TestUploadOptionsInBothForms(t *testing.T) {
	api := newFakeAPI(t, 10)
	csv := writeFile(t, "shop.csv", sampleCSV)
	doc := writeFile(t, "shop.json", `{"products":[{"serialNumber":"A","productName":"Mug","inputImageUrls":["https://example.com/a.jpg"]}]}`)
	flags := []string{"--quality", "70", "--webhook", "https://hooks.example/x?a=1", "--max-width", "1600", "--max-height", "900",
		"--sizes", "thumb:200,medium:800x800"}
	want := map[string]any{"quality": 70.0, "webhookUrl": "https://hooks.example/x?a=1", "maxWidth": 1600.0, "maxHeight": 900.0,
		"sizes": []any{map[string]any{"name": "thumb", "width": 200.0}, map[string]any{"name": "medium", "width": 800.0, "height": 800.0}}}
	for _, file := range []string{csv, doc} {
		if code, out, errs := run(t, api.vars(), nil, "", append([]string{"upload", file}, flags...)...); code != cli.ExitOK {
			t.Fatalf("upload %s: exit %d %s %s", file, code, out, errs)
		}
	}
	calls := api.sent("/api/upload")
	if len(calls) != 2 {
		t.Fatalf("%d uploads sent", len(calls))
	}
	csvOpts, csvFile := uploadForm(t, calls[0])
	jsonOpts, products := uploadForm(t, calls[1])
	if !reflect.DeepEqual(csvOpts, want) || !reflect.DeepEqual(jsonOpts, want) {
		t.Errorf("options\n CSV  %v\n JSON %v\n want %v", csvOpts, jsonOpts, want)
	}
	if csvFile != "shop.csv:"+sampleCSV {
		t.Errorf("the CSV part: %q", csvFile)
	}
	if products != `[{"inputImageUrls":["https://example.com/a.jpg"],"productName":"Mug","serialNumber":"A"}]` {
		t.Errorf("the JSON products: %s", products)
	}
	// Without flags, no option is sent: the server's defaults apply.
	for _, file := range []string{csv, doc} {
		if code, _, errs := run(t, api.vars(), nil, "", "upload", file); code != cli.ExitOK {
			t.Fatalf("upload %s: exit %d %s", file, code, errs)
		}
	}
	calls = api.sent("/api/upload")
	for _, c := range calls[2:] {
		if opts, _ := uploadForm(t, c); len(opts) != 0 {
			t.Errorf("options sent without flags: %v", opts)
		}
	}
}

// Bad flags and unreadable files are refused before anything is sent.
func TestUploadRefusedLocally(t *testing.T) {
	api := newFakeAPI(t, 10)
	csv := writeFile(t, "p.csv", sampleCSV)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{csv, "--quality", "101"}, "--quality 101: want 1 to 100"},
		{[]string{csv, "--quality", "-3"}, "--quality -3: want 1 to 100"},
		{[]string{csv, "--sizes", "thumb:0"}, "the sizing flags: "},
		{[]string{csv, "--max-width", "wide"}, "(--max-width, --max-height, --sizes)"},
		{[]string{filepath.Join(t.TempDir(), "missing.csv")}, "reading "},
		{[]string{writeFile(t, "broken.json", `{"products": [`)}, "is not valid JSON"},
	}
	for _, tc := range cases {
		code, out, errs := run(t, api.vars(), nil, "", append([]string{"upload"}, tc.args...)...)
		if code != cli.ExitError || !strings.Contains(errs, tc.want) {
			t.Errorf("upload %q: exit %d, stderr %q, want %q (stdout %q)", tc.args, code, errs, tc.want, out)
		}
	}
	if calls := api.sent("/"); len(calls) != 0 {
		t.Errorf("sent: %+v", calls)
	}
}

// Without --wait, upload prints the request and how to follow it, or the
// API's answer with --json, and exits 0.
func TestUploadAnswer(t *testing.T) {
	api := newFakeAPI(t, 10)
	api.states = []wire.Status{{RequestID: "r1", Status: batch.Pending, TotalImages: 3}}
	csv := writeFile(t, "p.csv", sampleCSV)
	code, out, errs := run(t, api.vars(), nil, "", "upload", csv)
	want := "request r1 accepted: 3 images\n  status: imgpipe status r1\n  view:   " + api.srv.URL + "/api/view/r1?t=tok\n"
	if code != cli.ExitOK || out != want || errs != "" {
		t.Errorf("exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, want, errs)
	}
	code, out, _ = run(t, api.vars(), nil, "", "upload", csv, "--json")
	var u wire.Upload
	if err := json.Unmarshal([]byte(out), &u); err != nil || code != cli.ExitOK || u.RequestID != "r1" || u.ReportURL != api.srv.URL+"/api/report/r1" {
		t.Errorf("--json: exit %d, %v: %s", code, err, out)
	}
	if calls := api.sent("/api/status/"); len(calls) != 0 {
		t.Errorf("status read without --wait: %+v", calls)
	}
}

// upload --wait polls with one product a read until the request
// finishes, prints progress lines into a pipe (the first and the last at
// least), then reads every page of
// products to count the failures by reason; failures make exit 2.
func TestUploadWaitCountsFailuresOnEveryPage(t *testing.T) {
	api := newFakeAPI(t, 2)
	running := wire.Status{RequestID: "r1", Status: batch.Processing, TotalImages: 6, ProcessedImages: 1}
	final := wire.Status{RequestID: "r1", Status: batch.Completed, TotalImages: 6, ProcessedImages: 3, FailedImages: 3,
		InputBytes: 4096, OutputBytes: 1024, SavedBytes: 3072, SavedPercent: 75}
	api.states = []wire.Status{{RequestID: "r1", Status: batch.Pending, TotalImages: 6}, running, final}
	failed := func(reasons ...string) wire.Product {
		p := wire.Product{SerialNumber: "s"}
		for i, r := range reasons {
			p.Errors = append(p.Errors, wire.ImageError{Index: i, Reason: r})
		}
		return p
	}
	// Pages of two: the failures sit on the first, third and fifth product.
	api.products = []wire.Product{failed("http_404"), {}, failed("too_large"), {}, failed("http_404"), {}}
	csv := writeFile(t, "p.csv", sampleCSV)
	code, out, errs := run(t, api.vars(), nil, "", "upload", csv, "--wait")
	for _, want := range []string{
		"request r1 accepted: 6 images\n",
		"progress: 0/6 (0 processed, 0 failed)", // the first read; the next lines are 2 s apart
		"progress: 6/6 (3 processed, 3 failed)",
		"COMPLETED: 3 of 6 images compressed, 3 failed\nbytes: 4.0 KiB → 1.0 KiB, saved 3.0 KiB (75.0 %)\n",
		"failed images by reason:\n  http_404             2\n  too_large            1\n",
		"report: imgpipe report r1 -o report.csv  (" + api.srv.URL + "/api/report/r1)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if code != cli.ExitFailed || errs != "" {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	reads := api.sent("/api/status/")
	var polls, offsets []string
	for _, c := range reads {
		if c.Query["limit"] == "1" {
			polls = append(polls, c.Query["offset"])
		} else {
			offsets = append(offsets, c.Query["offset"])
		}
	}
	if len(polls) != 3 || strings.Join(offsets, ",") != "0,2,4" {
		t.Errorf("status reads: %d polls, pages at offsets %q; want 3 polls and 0,2,4", len(polls), offsets)
	}

	api.reads, api.calls = 0, nil
	code, out, _ = run(t, api.vars(), nil, "", "upload", csv, "--wait", "--json")
	var summary struct {
		Status           batch.Status
		FailedImages     int
		FailuresByReason map[string]int
		ReportURL        string
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil || code != cli.ExitFailed {
		t.Fatalf("--json: exit %d, %v: %s", code, err, out)
	}
	if summary.Status != batch.Completed || summary.FailedImages != 3 || !reflect.DeepEqual(summary.FailuresByReason, map[string]int{"http_404": 2, "too_large": 1}) {
		t.Errorf("--json summary: %+v", summary)
	}
}

// A request that finishes with every image done exits 0 without reading
// its products.
func TestUploadWaitAllDone(t *testing.T) {
	api := newFakeAPI(t, 2)
	api.states = []wire.Status{{RequestID: "r1", Status: batch.Completed, TotalImages: 2, ProcessedImages: 2}}
	api.products = []wire.Product{{}, {}, {}}
	code, out, errs := run(t, api.vars(), nil, "", "upload", writeFile(t, "p.csv", sampleCSV), "--wait")
	if code != cli.ExitOK || !strings.Contains(out, "COMPLETED: 2 of 2 images compressed, 0 failed") {
		t.Errorf("exit %d: %s %s", code, out, errs)
	}
	if reads := api.sent("/api/status/"); len(reads) != 1 {
		t.Errorf("%d status reads, want 1", len(reads))
	}
}

// An upload answer without a request ID is not the imgpipe API's.
func TestUploadAnswerNotTheAPIs(t *testing.T) {
	srv := errorAPI(t, 202, `{"ok":true}`, nil)
	vars := map[string]string{"IMGPIPE_URL": srv.URL, "IMGPIPE_API_KEY": keySentinel}
	code, _, errs := run(t, vars, nil, "", "upload", writeFile(t, "p.csv", sampleCSV))
	if code != cli.ExitError || !strings.Contains(errs, "the server's answer to the upload is not what imgpipe expects") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

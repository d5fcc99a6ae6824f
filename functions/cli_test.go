package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/shared/config"
	"github.com/imgpipe/imgpipe/shared/webhook"
)

// runCLI runs the imgpipe command in-process against the test stack, its
// API calls through the same contract check as every test's, stdout not a
// terminal. It returns the exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	vars := map[string]string{"IMGPIPE_URL": apiURL, "IMGPIPE_API_KEY": apiKey}
	for k, v := range env {
		vars[k] = v
	}
	code := cli.Run(context.Background(), args, cli.Env{
		Getenv: func(k string) string { return vars[k] }, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Poll: 200 * time.Millisecond, Client: &http.Client{Timeout: 30 * time.Second},
	})
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// upload --wait shows plain progress lines when stdout is no terminal,
// ends with the bytes saved and the failures by reason, and exits 2 when
// an image failed; status, report and download agree.
func TestCLIUploadWaitAndFollowUps(t *testing.T) {
	t.Parallel()
	needStack(t)
	q := fmt.Sprint(time.Now().UnixNano())
	csv := writeFile(t, "products.csv", "Serial Number,Product Name,Input Image URLs\n"+
		"C1,Mug,\""+imageURL+"/images/coffee.jpg?cli="+q+","+imageURL+"/images/chelsea.png?cli="+q+"\"\n"+
		"C2,Poster,"+imageURL+"/images/rocket-progressive.jpg?cli="+q+"\n"+
		"C3,Gone,"+imageURL+"/images/missing.jpg?cli="+q+"\n")
	code, out, errs := runCLI(t, nil, "", "upload", csv, "--wait", "--quality", "60")
	if code != cli.ExitFailed {
		t.Fatalf("exit %d, want 2 (one image failed)\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"progress: ", "4/4 (3 processed, 1 failed)", "COMPLETED: 3 of 4 images compressed, 1 failed", "bytes: ", "saved", "failed images by reason:", "http_404", "report: imgpipe report "} {
		if !strings.Contains(out, want) {
			t.Errorf("upload --wait output lacks %q:\n%s", want, out)
		}
	}
	id := strings.Fields(strings.TrimPrefix(out, "request "))[0]

	code, out, _ = runCLI(t, nil, "", "status", id, "--json")
	var s struct {
		Status                        string
		ProcessedImages, FailedImages int
		InputBytes, OutputBytes       int64
	}
	if err := json.Unmarshal([]byte(out), &s); code != cli.ExitFailed || err != nil || s.ProcessedImages != 3 || s.InputBytes <= s.OutputBytes {
		t.Errorf("status --json: exit %d, %+v, %v:\n%s", code, s, err, out)
	}
	report := filepath.Join(t.TempDir(), "report.csv")
	if code, _, errs := runCLI(t, nil, "", "report", id, "-o", report); code != cli.ExitOK {
		t.Errorf("report: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(report); !strings.HasPrefix(string(b), "Serial Number,Product Name,Input Image URLs,Output Image URLs") || strings.Count(string(b), "\n") != 4 {
		t.Errorf("report file:\n%s", b)
	}
	dir := filepath.Join(t.TempDir(), "out")
	code, out, errs = runCLI(t, nil, "", "download", id, "-d", dir)
	files, _ := os.ReadDir(dir)
	if code != cli.ExitFailed || len(files) != 3 || !strings.Contains(out, "3 outputs") {
		t.Errorf("download: exit %d, %d files: %s %s", code, len(files), out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "C1-2.jpg")); err != nil {
		t.Errorf("download names outputs SERIAL-N.jpg: %v", err)
	}
}

// A request whose images all compress exits 0; --json prints one object.
func TestCLIUploadAllDoneJSON(t *testing.T) {
	t.Parallel()
	needStack(t)
	body := fmt.Sprintf(`{"products":[{"serialNumber":7,"productName":"Cup","inputImageUrls":["%s/images/coffee.jpg?clijson=%d"]}]}`, imageURL, time.Now().UnixNano())
	code, out, errs := runCLI(t, nil, "", "upload", writeFile(t, "p.json", body), "--wait", "--json")
	var sum struct {
		Status       string  `json:"status"`
		SavedPercent float64 `json:"savedPercent"`
		ReportURL    string  `json:"reportUrl"`
	}
	if err := json.Unmarshal([]byte(out), &sum); code != cli.ExitOK || err != nil || sum.Status != "COMPLETED" || sum.SavedPercent <= 0 || sum.ReportURL == "" {
		t.Errorf("exit %d, %+v, %v\nstdout: %s\nstderr: %s", code, sum, err, out, errs)
	}
}

// Errors say what went wrong and what to do next, and exit 1.
func TestCLIErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	needStack(t)
	good := writeFile(t, "good.csv", "Serial Number,Product Name,Input Image URLs\nE1,Mug,"+imageURL+"/images/coffee.jpg\n")
	bad := writeFile(t, "bad.csv", "Serial Number,Product Name,Input Image URLs\nE1,Mug,"+imageURL+"/images/coffee.jpg\nE2,Cup,ftp://example.com/cup.jpg\n")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"wrong key", map[string]string{"IMGPIPE_API_KEY": "imgpipe_wrong"}, []string{"upload", good}, []string{"refused the API key", "IMGPIPE_API_KEY"}},
		{"no key", map[string]string{"IMGPIPE_API_KEY": ""}, []string{"status", "x"}, []string{"no API key", "IMGPIPE_API_KEY"}},
		{"unreachable", map[string]string{"IMGPIPE_URL": "http://127.0.0.1:1"}, []string{"upload", good}, []string{"cannot reach http://127.0.0.1:1", "IMGPIPE_URL"}},
		{"bad CSV", nil, []string{"upload", bad}, []string{"refused the upload (400)", `line 3, column "Input Image URLs"`, "fix the file"}},
		{"missing file", nil, []string{"upload", "/nonexistent/products.csv"}, []string{"reading /nonexistent/products.csv"}},
		{"unknown request", nil, []string{"status", "nosuchrequest"}, []string{"not found (404)", "check the request ID"}},
	}
	for _, tc := range cases {
		code, out, errs := runCLI(t, tc.env, "", tc.args...)
		if code != cli.ExitError {
			t.Errorf("%s: exit %d, want 1 (stdout %q)", tc.name, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, errs)
			}
		}
	}
}

// verify-webhook accepts a captured delivery signed with the secret and
// refuses a tampered one or a wrong secret.
func TestCLIVerifyWebhook(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event":"request.completed","requestId":"r1","status":"COMPLETED","totalImages":1,"processedImages":1,"failedImages":0,"completedAt":"2026-12-01T10:00:00Z","statusUrl":"https://x/api/status/r1","reportUrl":"https://x/api/report/r1","products":[]}`)
	signer, err := webhook.NewSigner([]string{config.DevWebhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	h, err := signer.Headers("msg_r1", time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	var capture bytes.Buffer
	capture.WriteString("POST /hooks HTTP/1.1\r\nHost: receiver.example\r\nContent-Type: application/json\r\n")
	for k, v := range h {
		fmt.Fprintf(&capture, "%s: %s\r\n", k, v[0])
	}
	capture.WriteString("\r\n")
	capture.Write(body)
	code, out, errs := runCLI(t, nil, capture.String(), "verify-webhook", "--secret", config.DevWebhookSecret)
	if code != cli.ExitOK || !strings.Contains(out, "valid: delivery msg_r1, request.completed for request r1") {
		t.Errorf("a genuine delivery: exit %d %q %q", code, out, errs)
	}
	tampered := strings.Replace(capture.String(), `"failedImages":0`, `"failedImages":9`, 1)
	if code, _, errs := runCLI(t, nil, tampered, "verify-webhook", "--secret", config.DevWebhookSecret); code != cli.ExitError || !strings.Contains(errs, "does not verify") {
		t.Errorf("a tampered delivery: exit %d %q", code, errs)
	}
	other := "whsec_" + "b3RoZXItc2VjcmV0LW9mLWF0LWxlYXN0LTI0LWJ5dGVz"
	if code, _, _ := runCLI(t, nil, capture.String(), "verify-webhook", "--secret", other); code != cli.ExitError {
		t.Errorf("a wrong secret: exit %d, want 1", code)
	}
}

// The built command exits with the code it reports (1 on a refused key),
// and prints progress lines, not a bar, into a pipe.
func TestCLIBinaryExitCodes(t *testing.T) {
	t.Parallel()
	needStack(t)
	bin := filepath.Join(t.TempDir(), "imgpipe")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/imgpipe").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	good := writeFile(t, "good.csv", fmt.Sprintf("Serial Number,Product Name,Input Image URLs\nB1,Mug,%s/images/coffee.jpg?bin=%d\n", imageURL, time.Now().UnixNano()))
	run := func(key string, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "IMGPIPE_URL="+apiURL, "IMGPIPE_API_KEY="+key)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run("imgpipe_wrong", "upload", good); code != 1 || !strings.Contains(out, "refused the API key") {
		t.Errorf("wrong key: exit %d: %s", code, out)
	}
	if code, out := run(apiKey, "upload", good, "--wait"); code != 0 || !strings.Contains(out, "progress: 1/1") || strings.Contains(out, "\r") {
		t.Errorf("upload --wait into a pipe: exit %d:\n%q", code, out)
	}
}

// upload --max-width and --sizes size the outputs; status says how, and
// download saves every size beside the main output; a bad size is refused
// before anything is sent.
func TestCLISizes(t *testing.T) {
	t.Parallel()
	needStack(t)
	q := fmt.Sprint(time.Now().UnixNano())
	csv := writeFile(t, "products.csv", "Serial Number,Product Name,Input Image URLs\n"+
		"S1,Mug,\""+imageURL+"/images/coffee.jpg?clisizes="+q+","+imageURL+"/images/chelsea.png?clisizes="+q+"\"\n")
	code, out, errs := runCLI(t, nil, "", "upload", csv, "--wait", "--max-width", "300", "--sizes", "thumb:100,box:x50")
	if code != cli.ExitOK || !strings.Contains(out, "sizes: main fit in 300×any; thumb 100×any, box any×50") {
		t.Fatalf("upload: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	id := strings.Fields(strings.TrimPrefix(out, "request "))[0]
	if code, out, _ := runCLI(t, nil, "", "status", id); code != cli.ExitOK || !strings.Contains(out, "sizes: main fit in 300×any; thumb 100×any, box any×50") {
		t.Errorf("status: exit %d: %s", code, out)
	}
	dir := filepath.Join(t.TempDir(), "out")
	code, out, errs = runCLI(t, nil, "", "download", id, "-d", dir)
	if code != cli.ExitOK || !strings.Contains(out, "6 outputs") {
		t.Fatalf("download: exit %d: %s %s", code, out, errs)
	}
	// coffee.jpg is 600×400, chelsea.png 320×213.
	for name, want := range map[string][2]int{"S1-1.jpg": {300, 200}, "S1-1-thumb.jpg": {100, 67}, "S1-1-box.jpg": {75, 50},
		"S1-2.jpg": {300, 200}, "S1-2-thumb.jpg": {100, 67}, "S1-2-box.jpg": {75, 50}} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("download: %v", err)
			continue
		}
		cfg, err := jpeg.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != want[0] || cfg.Height != want[1] {
			t.Errorf("%s: %d×%d (%v), want %d×%d", name, cfg.Width, cfg.Height, err, want[0], want[1])
		}
	}
	if code, _, errs := runCLI(t, nil, "", "upload", csv, "--sizes", "thumb:0"); code != cli.ExitError || !strings.Contains(errs, `width "0" is not a whole number`) {
		t.Errorf("a bad size: exit %d: %s", code, errs)
	}
}

package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/functions/cli"
)

// report copies the CSV as the server sent it, to stdout or to -o FILE
// (then saying where, on stderr).
func TestReport(t *testing.T) {
	api := newFakeAPI(t, 10)
	api.report = strings.Repeat("Serial Number,Product Name,Input Image URLs,Output Image URLs\n", 40)
	code, out, errs := run(t, api.vars(), nil, "", "report", "r1")
	if code != cli.ExitOK || out != api.report || errs != "" {
		t.Errorf("to stdout: exit %d, %d bytes, stderr %q", code, len(out), errs)
	}
	file := filepath.Join(t.TempDir(), "report.csv")
	code, out, errs = run(t, api.vars(), nil, "", "report", "r1", "-o", file)
	if b, _ := os.ReadFile(file); code != cli.ExitOK || string(b) != api.report || out != "" {
		t.Errorf("to a file: exit %d, %d bytes written, stdout %q", code, len(b), out)
	}
	if want := "report of r1: 2.4 KiB written to " + file + "\n"; errs != want {
		t.Errorf("stderr %q, want %q", errs, want)
	}
	code, _, errs = run(t, api.vars(), nil, "", "report", "nosuch")
	if code != cli.ExitError || !strings.Contains(errs, "not found (404)") {
		t.Errorf("unknown request: exit %d %s", code, errs)
	}
	code, _, errs = run(t, api.vars(), nil, "", "report", "r1", "-o", filepath.Join(t.TempDir(), "no", "such", "dir.csv"))
	if code != cli.ExitError || !strings.Contains(errs, "creating ") {
		t.Errorf("unwritable file: exit %d %s", code, errs)
	}
}

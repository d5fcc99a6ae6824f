package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// On a terminal, upload --wait and download draw a bar instead of
// printing progress lines.
func TestBarsOnATerminal(t *testing.T) {
	api := newFakeAPI(t, 10)
	api.states = []wire.Status{{RequestID: "r1", Status: batch.Processing, TotalImages: 2},
		{RequestID: "r1", Status: batch.Completed, TotalImages: 2, ProcessedImages: 2}}
	api.products = []wire.Product{{SerialNumber: "a", OutputImageURLs: []string{api.link("a1"), api.link("a2")}}}
	for _, tc := range []struct {
		args      []string
		bar, line string
	}{
		{[]string{"upload", writeFile(t, "p.csv", sampleCSV), "--wait"}, "compressing", "progress: "},
		{[]string{"download", "r1", "-d", t.TempDir()}, "downloading", "downloaded "},
	} {
		var out, errs bytes.Buffer
		vars := api.vars()
		code := cli.Run(context.Background(), tc.args, cli.Env{Getenv: func(k string) string { return vars[k] },
			Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errs, Terminal: true, Poll: 10 * time.Millisecond,
			Client: &http.Client{Timeout: 10 * time.Second}})
		if code != cli.ExitOK || !strings.Contains(out.String(), tc.bar) || !strings.Contains(out.String(), "2/2") || strings.Contains(out.String(), tc.line) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", tc.args[0], code, out.String(), errs.String())
		}
	}
}

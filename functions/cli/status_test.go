package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// status exits 2 only for a finished request with failed images; a
// request still running exits 0 whatever has failed so far.
func TestStatusExitCodes(t *testing.T) {
	cases := []struct {
		status batch.Status
		failed int
		want   int
	}{
		{batch.Pending, 0, cli.ExitOK},
		{batch.Processing, 2, cli.ExitOK},
		{batch.Completed, 0, cli.ExitOK},
		{batch.Completed, 2, cli.ExitFailed},
		{batch.Failed, 5, cli.ExitFailed},
	}
	for _, tc := range cases {
		api := newFakeAPI(t, 10)
		api.states = []wire.Status{{RequestID: "r1", Status: tc.status, TotalImages: 5, ProcessedImages: 5 - tc.failed, FailedImages: tc.failed}}
		for _, json := range []bool{false, true} {
			args := []string{"status", "r1"}
			if json {
				args = append(args, "--json")
			}
			if code, out, errs := run(t, api.vars(), nil, "", args...); code != tc.want {
				t.Errorf("%s with %d failed, json %v: exit %d, want %d\n%s%s", tc.status, tc.failed, json, code, tc.want, out, errs)
			}
		}
	}
}

// status prints one line of counts and bytes (and the sizes, when the
// request has any), reading one product at most; --json passes the
// server's answer through unchanged.
func TestStatusOutput(t *testing.T) {
	api := newFakeAPI(t, 10)
	api.states = []wire.Status{{RequestID: "r1", Status: batch.Processing, TotalImages: 4, ProcessedImages: 2, FailedImages: 1,
		InputBytes: 3 << 20, OutputBytes: 1 << 20, SavedBytes: 2 << 20, SavedPercent: 66.7,
		Sizing: &batch.Sizing{MaxWidth: 1600, Sizes: []batch.Size{{Name: "thumb", Width: 200}}}}}
	api.products = []wire.Product{{SerialNumber: "a"}, {SerialNumber: "b"}}
	code, out, errs := run(t, api.vars(), nil, "", "status", "r1")
	want := "r1 PROCESSING: 2 of 4 images compressed, 1 failed; 3.0 MiB → 1.0 MiB (saved 66.7 %)\nsizes: "
	if code != cli.ExitOK || !strings.HasPrefix(out, want) || !strings.Contains(out, "thumb") || errs != "" {
		t.Errorf("exit %d\nstdout %q\nwant   %q…\nstderr %q", code, out, want, errs)
	}
	if calls := api.sent("/api/status/"); len(calls) != 1 || calls[0].Query["limit"] != "1" {
		t.Errorf("status read %+v, want one read with limit=1", calls)
	}
	code, out, _ = run(t, api.vars(), nil, "", "status", "r1", "--json")
	var s wire.Status
	if err := json.Unmarshal([]byte(out), &s); err != nil || code != cli.ExitOK || s.InputBytes != 3<<20 || len(s.Products) != 1 {
		t.Errorf("--json: exit %d, %v: %s", code, err, out)
	}
}

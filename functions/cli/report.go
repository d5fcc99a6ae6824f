package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/imgpipe/imgpipe/shared/wire"
)

// report copies the request's CSV report, as the API sends it, to
// standard output or to the file out.
func (c *command) report(ctx context.Context, args []string, out string) (int, error) {
	if len(args) != 1 {
		return ExitError, errors.New("report takes a request ID: imgpipe report ID [-o report.csv]")
	}
	if err := c.needServer(); err != nil {
		return ExitError, err
	}
	resp, err := c.call(ctx, http.MethodGet, "/api/report/"+url.PathEscape(args[0]), "", nil)
	if err != nil {
		return ExitError, err
	}
	defer resp.Body.Close()
	w := c.env.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return ExitError, fmt.Errorf("creating %s: %w", out, err)
		}
		defer f.Close()
		w = f
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return ExitError, fmt.Errorf("reading the report: %w", err)
	}
	if out != "" && !c.json {
		fmt.Fprintf(c.env.Stderr, "report of %s: %s written to %s\n", args[0], wire.FormatBytes(n), out)
	}
	return ExitOK, nil
}

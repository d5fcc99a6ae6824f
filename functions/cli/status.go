package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// status prints the request's counts, or with --json the API's answer as
// it came; exit 2 once it finished with failed images.
func (c *command) status(ctx context.Context, args []string) (int, error) {
	if len(args) != 1 {
		return ExitError, errors.New("status takes a request ID: imgpipe status ID")
	}
	if err := c.needServer(); err != nil {
		return ExitError, err
	}
	resp, err := c.call(ctx, http.MethodGet, countsPath(args[0]), "", nil)
	if err != nil {
		return ExitError, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return ExitError, fmt.Errorf("reading the status: %w", err)
	}
	var s wire.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return ExitError, fmt.Errorf("the server's answer is not an imgpipe status (%v): is --url the imgpipe API?", err)
	}
	code := ExitOK
	if finished(s) {
		code = failedCode(s.FailedImages)
	}
	if c.json {
		_, _ = c.env.Stdout.Write(raw)
		return code, nil
	}
	c.out("%s %s: %d of %d images compressed, %d failed", s.RequestID, s.Status, s.ProcessedImages, s.TotalImages, s.FailedImages)
	if s.InputBytes > 0 {
		c.out("; %s → %s (saved %.1f %%)", wire.FormatBytes(s.InputBytes), wire.FormatBytes(s.OutputBytes), s.SavedPercent)
	}
	c.out("\n")
	c.sizes(s)
	return code, nil
}

// sizes prints the request's sizing options, when it has any.
func (c *command) sizes(s wire.Status) {
	if s.Sizing != nil {
		c.out("sizes: %s\n", s.Sizing.Describe())
	}
}

func finished(s wire.Status) bool { return s.Status == batch.Completed || s.Status == batch.Failed }

// countsPath is the status of request id with one product at most: its
// counts, for the price of a small answer.
func countsPath(id string) string { return "/api/status/" + url.PathEscape(id) + "?limit=1" }

// eachPage reads every page of request id's status, passing each answer
// to fn in order, and stops at the first error.
func (c *command) eachPage(ctx context.Context, id string, fn func(wire.Status) error) error {
	offset := 0
	for {
		var s wire.Status
		if err := c.getJSON(ctx, fmt.Sprintf("/api/status/%s?offset=%d", url.PathEscape(id), offset), &s); err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
		if s.Page.NextOffset == nil {
			return nil
		}
		if *s.Page.NextOffset <= offset {
			return pagesDoNotAdvance(offset, *s.Page.NextOffset)
		}
		offset = *s.Page.NextOffset
	}
}

// pagesDoNotAdvance refuses a status page whose next offset is not past
// its own: reading on would never end.
func pagesDoNotAdvance(offset, next int) error {
	return fmt.Errorf("the server's status pages do not advance (offset %d, then %d): is --url the imgpipe API?", offset, next)
}
